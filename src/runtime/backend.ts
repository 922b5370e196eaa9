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
}

export interface Backend {
  compile(outputs: Record<string, Value>, opts?: { name?: string }): Promise<CompiledGraph>;
}

/** Compiled graphs cached per key (a shape bucket); creation happens once per key. */
export class GraphCache {
  private readonly cache = new Map<string, Promise<CompiledGraph>>();
  constructor(private readonly backend: Backend) {}
  get(key: string, build: () => Record<string, Value>): Promise<CompiledGraph> {
    let p = this.cache.get(key);
    if (!p) {
      p = this.backend.compile(build(), { name: key });
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }
  get size(): number {
    return this.cache.size;
  }
}
