/** Types of allocator.js (plain JavaScript: the entry point runs it before tsx is registered). */
export declare function relaunchWithTunedMalloc(): Promise<boolean>;
