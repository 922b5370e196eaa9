/** Types of allocator.js (plain JavaScript: the entry point runs it before tsx is registered). */
export declare const TUNED_MALLOC_ENV: { MALLOC_MMAP_MAX_: string; MALLOC_TRIM_THRESHOLD_: string };
export declare function relaunchWithTunedMalloc(): Promise<boolean>;
