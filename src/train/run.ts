/** Running a compiled training graph: feed the batch, the adapter and the base weights. */
import type { PeftAdapter } from '../peft/types.js';
import type { CompiledGraph, HostArray } from '../runtime/backend.js';

export function graphFeeds(
  run: CompiledGraph,
  adapter: PeftAdapter,
  weights: Map<string, Float32Array>,
  batchFeeds: Record<string, HostArray>,
  step: number | null,
): Record<string, HostArray> {
  const feeds: Record<string, HostArray> = { ...batchFeeds, ...adapter.feeds(), ...(step !== null ? (adapter.trainingFeeds?.(step) ?? {}) : {}) };
  for (const name of run.inputNames) {
    if (name in feeds) continue;
    const w = weights.get(name);
    if (!w) throw new Error(`training graph input ${name} has no value`);
    feeds[name] = w;
  }
  return feeds;
}

/** Split grad:<name> outputs into a map by trainable name. */
export function gradsOf(out: Record<string, HostArray>): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const [k, v] of Object.entries(out)) if (k.startsWith('grad:')) m.set(k.slice(5), v as Float32Array);
  return m;
}

/**
 * The sum of squares of every gradient output, from the graph's grad_sumsq (summed here in
 * float64); undefined when the graph has none.
 */
export function gradSumSqOf(out: Record<string, HostArray>): number | undefined {
  const sq = out.grad_sumsq as Float32Array | undefined;
  if (!sq) return undefined;
  let s = 0;
  for (const x of sq) s += x;
  return s;
}
