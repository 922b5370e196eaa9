/** A loaded model as the base a PEFT method attaches to. */
import type { LoadedModel } from '../model/load.js';
import type { BaseModel } from './types.js';

export function baseModelOf(m: LoadedModel): BaseModel {
  const { cfg, lm, tokenizer } = m;
  return {
    cfg,
    weights: lm.weights,
    tokenizer,
    async textKV(ids) {
      const { cache } = await lm.prefill([ids]);
      const { numKvHeads: Hkv, headDim: Dh } = cfg;
      const n = ids.length;
      const take = (t: Float32Array): Float32Array => {
        const out = new Float32Array(Hkv * n * Dh);
        for (let h = 0; h < Hkv; h++) out.set(t.subarray(h * cache.capacity * Dh, (h * cache.capacity + n) * Dh), h * n * Dh);
        return out;
      };
      return cache.k.map((k, l) => ({ k: take(k), v: take(cache.v[l]!) }));
    },
  };
}
