/**
 * Test helpers: random in-memory checkpoints of any family member, and a naive float64
 * reference forward pass written straight from the HF modelling code (loops, no graph), used
 * to check the graph decoder on every variant.
 */
import { rng, randn } from '../util/random.js';
import { type ModelConfig, expectedTensorShapes, parseConfig } from './config.js';
import { ropeParameters } from './rope.js';

export function tinyConfig(overrides: Record<string, unknown> = {}): ModelConfig {
  return parseConfig({
    architectures: ['LlamaForCausalLM'],
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 128,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    ...overrides,
  });
}

export function randomWeights(cfg: ModelConfig, seed = 1, scale = 0.3): Map<string, Float32Array> {
  const r = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensorShapes(cfg)) {
    const n = shape.reduce((p, d) => p * d, 1);
    const isNorm = name.endsWith('norm.weight');
    out.set(name, isNorm ? randn(n, r, 0.1).map((v) => 1 + v) : randn(n, r, scale));
  }
  return out;
}

type W = Map<string, Float32Array>;

function rms(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const s = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * s * w[i]!);
}

function lin(x: Float64Array, w: Float32Array, out: number, bias?: Float32Array): Float64Array {
  const inF = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = bias ? bias[o]! : 0;
    for (let i = 0; i < inF; i++) s += w[o * inF + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** Rotate-half RoPE; cos and sin carry HF's attention scaling (YaRN), so q.k scales by its square. */
function rope(x: Float64Array, pos: number, inv: Float64Array, scale: number): Float64Array {
  const half = x.length / 2;
  const y = new Float64Array(x.length);
  for (let i = 0; i < half; i++) {
    const a = pos * inv[i]!;
    const c = scale * Math.cos(a);
    const s = scale * Math.sin(a);
    y[i] = x[i]! * c - x[i + half]! * s;
    y[i + half] = x[i + half]! * c + x[i]! * s;
  }
  return y;
}

/**
 * Naive reference: logits [T][V] for one sequence (positions 0..T-1, causal; the sliding window
 * on the layers that config.json marks, every weight's bias where the config has one).
 */
export function referenceLogits(cfg: ModelConfig, w: W, ids: number[]): Float64Array[] {
  const { hiddenSize: C, numHeads: H, numKvHeads: Hkv, headDim: Dh, intermediateSize: F, vocabSize: V } = cfg;
  const { inv, attentionScaling } = ropeParameters(cfg, ids.length); // a pass over T positions
  const emb = w.get('model.embed_tokens.weight')!;
  let xs = ids.map((id) => Float64Array.from(emb.subarray(id * C, (id + 1) * C)));
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const g = (n: string): Float32Array | undefined => w.get(p + n);
    const ks: Float64Array[][] = [];
    const vs: Float64Array[][] = [];
    const qs: Float64Array[][] = [];
    xs.forEach((x, t) => {
      const h = rms(x, g('input_layernorm.weight')!, cfg.rmsNormEps);
      const q = lin(h, g('self_attn.q_proj.weight')!, H * Dh, g('self_attn.q_proj.bias'));
      const k = lin(h, g('self_attn.k_proj.weight')!, Hkv * Dh, g('self_attn.k_proj.bias'));
      const v = lin(h, g('self_attn.v_proj.weight')!, Hkv * Dh, g('self_attn.v_proj.bias'));
      const head = (a: Float64Array, i: number, norm?: Float32Array): Float64Array => {
        let s: Float64Array = a.slice(i * Dh, (i + 1) * Dh);
        if (norm) s = rms(s, norm, cfg.rmsNormEps);
        return s;
      };
      qs.push(Array.from({ length: H }, (_, i) => rope(head(q, i, g('self_attn.q_norm.weight')), t, inv, attentionScaling)));
      ks.push(Array.from({ length: Hkv }, (_, i) => rope(head(k, i, g('self_attn.k_norm.weight')), t, inv, attentionScaling)));
      vs.push(Array.from({ length: Hkv }, (_, i) => head(v, i)));
    });
    xs = xs.map((x, t) => {
      const a = new Float64Array(H * Dh);
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / (H / Hkv));
        const slides = cfg.slidingWindow !== null && cfg.layerTypes[l] === 'sliding_attention';
        const lo = slides ? Math.max(0, t - cfg.slidingWindow! + 1) : 0;
        const sc: number[] = [];
        for (let s = lo; s <= t; s++) {
          let d = 0;
          for (let i = 0; i < Dh; i++) d += qs[t]![h]![i]! * ks[s]![kvh]![i]!;
          sc.push(d / Math.sqrt(Dh));
        }
        const m = Math.max(...sc);
        const e = sc.map((v) => Math.exp(v - m));
        const z = e.reduce((p, v) => p + v, 0);
        for (let s = lo; s <= t; s++) for (let i = 0; i < Dh; i++) a[h * Dh + i]! += (e[s - lo]! / z) * vs[s]![kvh]![i]!;
      }
      const o = lin(a, g('self_attn.o_proj.weight')!, C, g('self_attn.o_proj.bias'));
      const x1 = x.map((v, i) => v + o[i]!);
      const m = rms(x1, g('post_attention_layernorm.weight')!, cfg.rmsNormEps);
      const gate = lin(m, g('mlp.gate_proj.weight')!, F, g('mlp.gate_proj.bias'));
      const up = lin(m, g('mlp.up_proj.weight')!, F, g('mlp.up_proj.bias'));
      const act = gate.map((v, i) => (v / (1 + Math.exp(-v))) * up[i]!);
      const d = lin(act, g('mlp.down_proj.weight')!, C, g('mlp.down_proj.bias'));
      return x1.map((v, i) => v + d[i]!);
    });
  }
  const head = cfg.tieWordEmbeddings ? emb : w.get('lm_head.weight')!;
  return xs.map((x) => lin(rms(x, w.get('model.norm.weight')!, cfg.rmsNormEps), head, V));
}
