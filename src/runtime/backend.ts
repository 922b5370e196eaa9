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

export interface Backend {
  compile(outputs: Record<string, Value>, opts?: { name?: string }): Promise<CompiledGraph>;
}

/**
 * Compiled graphs cached per key (a shape bucket); creation happens once per key while the key
 * stays cached. At most `maxEntries` are kept: the least recently used is released (its native
 * memory freed) when a new one is compiled. Each ORT session keeps its own arena sized to its
 * largest run, so an unbounded cache over many (length, label-count) buckets grew a pretraining
 * process to 21 GB; the bound keeps memory flat at the cost of recompiling a rare bucket.
 */
export class GraphCache {
  private readonly cache = new Map<string, Promise<CompiledGraph>>();
  constructor(
    private readonly backend: Backend,
    private readonly maxEntries = 24,
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
    p = this.backend.compile(build(), { name: key });
    this.cache.set(key, p);
    p.catch(() => this.cache.delete(key));
    while (this.cache.size > this.maxEntries) {
      const [oldest, victim] = this.cache.entries().next().value as [string, Promise<CompiledGraph>];
      this.cache.delete(oldest);
      victim.then((c) => c.release?.()).catch(() => {});
    }
    return p;
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
