/**
 * Row operations on KV caches ([B, Hkv, capacity, Dh] per layer): the scheduler moves rows
 * between a batch's cache, prefix-cache entries and freshly sized caches.
 */
import type { ModelConfig } from '../model/config.js';
import type { KVCache } from '../model/lm.js';

/**
 * Copy the first `n` slots of row `from` of `src` into row `to` of `dst` and set that row's
 * length to `n`. Capacities may differ (dst.capacity >= n); both caches must use one adapter.
 */
export function copyRow(cfg: ModelConfig, src: KVCache, from: number, dst: KVCache, to: number, n = src.len[from]!): void {
  if (n > dst.capacity) throw new Error(`copyRow: ${n} slots into a cache of capacity ${dst.capacity}`);
  const { numKvHeads: Hkv, headDim: Dh } = cfg;
  for (let l = 0; l < cfg.numLayers; l++) {
    for (let h = 0; h < Hkv; h++) {
      const s = (from * Hkv + h) * src.capacity * Dh;
      const d = (to * Hkv + h) * dst.capacity * Dh;
      dst.k[l]!.set(src.k[l]!.subarray(s, s + n * Dh), d);
      dst.v[l]!.set(src.v[l]!.subarray(s, s + n * Dh), d);
    }
  }
  dst.len[to] = n;
}
