/**
 * The runtime layer: compile a set of graph outputs into something that runs.
 * One implementation today (onnxruntime-node, ort.ts); the interface keeps the model and
 * trainers independent of it.
 */
import type { Value } from '../graph/ir.js';

export type HostArray = Float32Array | BigInt64Array | Uint8Array;

export interface CompiledGraph {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Run with the named inputs (zero-copy) and return the named outputs (copied). */
  run(feeds: Record<string, HostArray>): Promise<Record<string, HostArray>>;
  /** Free the session's native memory once runs in flight finish; later runs fail. */
  release?(): Promise<void>;
}

export interface CompileOptions {
  name?: string;
  /**
   * Let the session keep a memory arena (ORT's, default true): its intermediates come from
   * blocks it keeps at its largest run's peak. Without it they come from malloc and go back to
   * it, so sessions that take turns share the memory (see GraphCache's `arena`).
   */
  cpuArena?: boolean;
}

export interface Backend {
  compile(outputs: Record<string, Value>, opts?: CompileOptions): Promise<CompiledGraph>;
}

/**
 * Memory arenas of a GraphCache's sessions: 'always' (each session keeps its own), or
 * 'while-single': the first graph gets one, and once a second key is compiled every graph is
 * compiled without and the first is released (recompiled without it when next used). For
 * training graphs: one shape keeps the arena's compact reuse (full fine-tuning of SmolLM2-135M at
 * 4 x 128: 3.54 GB peak against 3.89 GB from malloc), several share malloc's memory instead of
 * holding the sum of their arenas (4 length buckets: 6.7 GB against 15.3 GB; BENCHMARKS.md
 * finding 40).
 */
export type ArenaPolicy = 'always' | 'while-single';

/**
 * Compiled graphs cached per key (a shape bucket); creation happens once per key while the key
 * stays cached. At most `maxEntries` are kept: the least recently used is released (its native
 * memory freed) when a new one is compiled. Each ORT session keeps its own arena sized to its
 * largest run, so an unbounded cache over many (length, label-count) buckets grew a pretraining
 * process to 21 GB; the bound keeps memory flat at the cost of recompiling a rare bucket.
 */
export class GraphCache {
  /**
   * A cache for graphs of several shapes that run in turn (training steps, scoring passes over
   * length buckets): they share malloc's memory instead of each keeping an arena ('while-single').
   */
  static forShapes(backend: Backend, maxEntries?: number): GraphCache {
    return new GraphCache(backend, maxEntries, 'while-single');
  }

  private readonly cache = new Map<string, Promise<CompiledGraph>>();
  /** With 'while-single': the key compiled with an arena (undefined: none yet; null: arenas are off). */
  private arenaKey: string | null | undefined = undefined;
  constructor(
    private readonly backend: Backend,
    private readonly maxEntries = 24,
    private readonly arena: ArenaPolicy = 'always',
  ) {
    if (!(maxEntries >= 1)) throw new Error(`GraphCache: maxEntries must be at least 1 (got ${maxEntries})`);
  }
  get(key: string, build: () => Record<string, Value>): Promise<CompiledGraph> {
    let p = this.cache.get(key);
    if (p) {
      this.cache.delete(key); // re-insert: Map order is recency order
      this.cache.set(key, p);
      return p;
    }
    if (this.arena === 'while-single') {
      if (this.arenaKey === undefined) this.arenaKey = key;
      else if (this.arenaKey !== null) {
        // a second shape: from now on no graph keeps an arena, and the first one gives its up
        this.evict(this.arenaKey);
        this.arenaKey = null;
      }
    }
    p = this.backend.compile(build(), { name: key, cpuArena: this.arenaKey !== null });
    this.cache.set(key, p);
    p.catch(() => this.cache.delete(key));
    while (this.cache.size > this.maxEntries) this.evict(this.cache.keys().next().value as string);
    return p;
  }
  /** Drops a key and releases its graph (runs in flight finish first). */
  private evict(key: string): void {
    const victim = this.cache.get(key);
    this.cache.delete(key);
    victim?.then((c) => c.release?.()).catch(() => {});
  }
  get size(): number {
    return this.cache.size;
  }
  /** The cached keys, least recently used first. */
  keys(): string[] {
    return [...this.cache.keys()];
  }
  /** Releases every cached graph and empties the cache (e.g. to write their ORT profiles). */
  async releaseAll(): Promise<void> {
    const all = [...this.cache.values()];
    this.cache.clear();
    for (const c of await Promise.allSettled(all)) if (c.status === 'fulfilled') await c.value.release?.();
  }
}
