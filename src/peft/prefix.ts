/**
 * Prefix (KV) tuning: trainable keys and values [Hkv, N, Dh] prepended in every layer; the
 * real tokens take positions N, N+1, ... (as HF with a past of length N).
 * PEFT layout: `prompt_embeddings` [N, L * 2 * Hkv * Dh], index ((l*2 + kv) * Hkv + h) * Dh + d
 * (PEFT's get_prompt view + permute; token_dim = Hkv * Dh for GQA models).
 */
import { randn, rng } from '../util/random.js';
import { fail } from '../util/errors.js';
import type { BaseModel, Method, Param, PeftAdapter, PrefixConfig } from './types.js';

export const prefixParamName = (l: number, kv: 'k' | 'v'): string => `prefix.${l}.${kv}`;

function adapter(config: PrefixConfig, base: BaseModel, params: Param[]): PeftAdapter {
  const N = config.virtualTokens;
  return {
    id: `prefix:${N}`,
    config,
    virtualTokens: 0,
    prefixLength: N,
    params,
    baseTrainable: [],
    attach(g) {
      const prefix = [];
      for (let l = 0; l < base.cfg.numLayers; l++) {
        const k = params[2 * l]!;
        const v = params[2 * l + 1]!;
        prefix.push({ k: g.input(k.name, k.shape), v: g.input(v.name, v.shape) });
      }
      return { prefix };
    },
    feeds: () => Object.fromEntries(params.map((p) => [p.name, p.data])),
  };
}

function makeParams(config: PrefixConfig, base: BaseModel, data: (l: number, kv: 'k' | 'v') => Float32Array): Param[] {
  const { numKvHeads: Hkv, headDim: Dh, numLayers: L } = base.cfg;
  const shape = [Hkv, config.virtualTokens, Dh];
  const out: Param[] = [];
  for (let l = 0; l < L; l++) for (const kv of ['k', 'v'] as const) out.push({ name: prefixParamName(l, kv), shape, data: data(l, kv) });
  return out;
}

/** Plum's per-layer [Hkv, N, Dh] tensors <-> PEFT's `prompt_embeddings` [N, L*2*Hkv*Dh]. */
export function prefixToPeft(base: BaseModel, params: Param[], N: number): Float32Array {
  const { numKvHeads: Hkv, headDim: Dh, numLayers: L } = base.cfg;
  const width = L * 2 * Hkv * Dh;
  const out = new Float32Array(N * width);
  params.forEach((p, i) => {
    const l = Math.floor(i / 2);
    const kv = i % 2;
    for (let h = 0; h < Hkv; h++)
      for (let n = 0; n < N; n++)
        for (let d = 0; d < Dh; d++) out[n * width + ((l * 2 + kv) * Hkv + h) * Dh + d] = p.data[(h * N + n) * Dh + d]!;
  });
  return out;
}

export function prefixFromPeft(base: BaseModel, flat: Float32Array, N: number): Map<string, Float32Array> {
  const { numKvHeads: Hkv, headDim: Dh, numLayers: L } = base.cfg;
  const width = L * 2 * Hkv * Dh;
  if (flat.length !== N * width) fail(`prefix: prompt_embeddings must have shape [${N}, ${width}] (num_layers*2*Hkv*head_dim)`);
  const m = new Map<string, Float32Array>();
  for (let l = 0; l < L; l++)
    for (const [kv, name] of [[0, 'k'], [1, 'v']] as const) {
      const t = new Float32Array(Hkv * N * Dh);
      for (let h = 0; h < Hkv; h++)
        for (let n = 0; n < N; n++)
          for (let d = 0; d < Dh; d++) t[(h * N + n) * Dh + d] = flat[n * width + ((l * 2 + kv) * Hkv + h) * Dh + d]!;
      m.set(prefixParamName(l, name), t);
    }
  return m;
}

export const prefix: Method<PrefixConfig> = {
  kind: 'prefix',
  async create(config, base, seed) {
    const { numKvHeads: Hkv, headDim: Dh } = base.cfg;
    const N = config.virtualTokens;
    if (config.init === 'random') {
      const r = rng(seed);
      return adapter(config, base, makeParams(config, base, () => randn(Hkv * N * Dh, r, 0.5)));
    }
    if (!config.initText) fail('prefix: init "text" needs initText (--init-text "...")');
    if (!base.tokenizer || !base.textKV) fail('prefix: init "text" needs the model tokenizer');
    const ids = base.tokenizer.encode(config.initText, { addSpecialTokens: true });
    if (ids.length < N) fail(`prefix: initText has ${ids.length} tokens; it needs at least --virtual-tokens ${N}`);
    // The real keys/values of the first N tokens: the adapter starts exactly as that text.
    const kv = await base.textKV(ids.slice(0, N));
    return adapter(config, base, makeParams(config, base, (l, which) => kv[l]![which].slice()));
  },
  restore(config, base, tensors) {
    const { numKvHeads: Hkv, headDim: Dh } = base.cfg;
    const n = Hkv * config.virtualTokens * Dh;
    return adapter(
      config,
      base,
      makeParams(config, base, (l, kv) => {
        const t = tensors.get(prefixParamName(l, kv));
        if (!t || t.length !== n) fail(`prefix: missing or misshapen tensor for layer ${l} ${kv}`);
        return t;
      }),
    );
  },
};
