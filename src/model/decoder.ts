/**
 * The one Llama-family decoder (Llama 2/3, SmolLM2, Mistral, Qwen2/2.5, Qwen3), following the
 * Hugging Face modelling code: pre-norm residual blocks, rotate-half RoPE, GQA, SwiGLU MLP,
 * optional q/k/v(/o) bias and per-head q/k RMSNorm. Variants are flags on ModelConfig.
 *
 * Legend: B batch, T new positions, P past positions, S = P + T, C width, H heads,
 * Hkv key/value heads, Dh head width, F MLP width, V vocabulary.
 */
import { type Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { applyRope, attention, linear, rmsNorm, ropeInputs, silu } from '../graph/nn.js';
import { type ModelConfig, expectedTensorShapes } from './config.js';
import { mixedWindows } from './masks.js';
import { remat } from '../graph/remat.js';

/** Model weights as graph inputs named by their HF names, created on first use. */
export class WeightInputs {
  private readonly made = new Map<string, Value>();
  private readonly replaced = new Map<string, Value>();
  readonly shapes: Map<string, number[]>;
  constructor(
    readonly graph: Graph,
    readonly cfg: ModelConfig,
  ) {
    this.shapes = expectedTensorShapes(cfg);
  }
  /** The weight `name` as the graph uses it: an adapter's replacement (see `replace`), else the base weight. */
  get(name: string): Value {
    return this.replaced.get(name) ?? this.base(name);
  }
  /**
   * From now on `get(name)` is `v`, an adapter's own copy of a base weight (PEFT modules_to_save).
   * `lm_head.weight` may be replaced in a tied model: the head is then untied from the embedding.
   */
  replace(name: string, v: Value): void {
    const shape = name === 'lm_head.weight' ? [this.cfg.vocabSize, this.cfg.hiddenSize] : this.shapes.get(name);
    if (!shape) throw new Error(`decoder: no weight named ${name} to replace`);
    if (v.shape.join() !== shape.join()) throw new Error(`decoder: ${name} is [${shape.join(', ')}]; its replacement is [${v.shape.join(', ')}]`);
    this.replaced.set(name, v);
  }
  isReplaced(name: string): boolean {
    return this.replaced.has(name);
  }
  /** The base model's weight `name`, whatever an adapter replaced. */
  base(name: string): Value {
    let v = this.made.get(name);
    if (!v) {
      const shape = this.shapes.get(name);
      if (!shape) throw new Error(`decoder: no weight named ${name}`);
      v = this.graph.input(name, shape);
      this.made.set(name, v);
    }
    return v;
  }
  has(name: string): boolean {
    return this.shapes.has(name);
  }
  /** The weight inputs created so far (what a run must feed). */
  used(): Map<string, Value> {
    return this.made;
  }
}

/** Where PEFT methods attach. */
export interface DecoderHooks {
  /**
   * Adjust a linear layer's output; `name` is the HF module path (e.g. model.layers.3.self_attn.q_proj).
   * For o_proj and down_proj, `y` already includes the residual stream (x W^T + residual), so
   * the hook must add to y (as LoRA does), not transform it.
   */
  linear?(name: string, x: Value, y: Value): Value;
  /**
   * Layers whose product x W^T the adapter rescales (DoRA): for these, `linear` receives y = x W^T
   * alone, and the bias and the residual stream are added to what it returns.
   */
  rescales?(name: string): boolean;
  /** Adjust the token embeddings `y` [B, T, C] of `ids` [B, T] (the module model.embed_tokens). */
  embedding?(ids: Value, y: Value): Value;
}

export interface KV {
  k: Value; // [B, Hkv, P, Dh]
  v: Value; // [B, Hkv, P, Dh]
}

/**
 * Activation recomputation in training graphs (src/graph/remat.ts):
 * - 'attention': each layer's attention, whose probabilities [B, H, T, S] are otherwise kept
 *   from the forward pass to the backward pass (T^2 per layer);
 * - 'layers': each whole layer (gradient checkpointing): only the layers' inputs are kept, and
 *   the backward pass runs every layer's forward once more;
 * - 'none': everything the backward pass reads is kept.
 * Forward-only graphs are unaffected.
 */
export const RECOMPUTE = ['none', 'attention', 'layers'] as const;
export type Recompute = (typeof RECOMPUTE)[number];
/** Training graphs' default (BENCHMARKS.md finding 45). */
export const DEFAULT_RECOMPUTE: Recompute = 'attention';

export interface DecoderInputs {
  embeds: Value; // [B, T, C]
  cos: Value; // [B, T, Dh]
  sin: Value; // [B, T, Dh]
  bias: Value; // [B, 1, T, S] additive mask: 0 = attend, large negative = masked
  /** The sliding layers' mask when the model mixes sliding and full layers (masks.ts biasFeeds). */
  biasWindow?: Value | null;
  /** Per layer, blocks of earlier keys/values in key order (e.g. [adapter prefix, KV cache]), keys already rotated: [B, Hkv, P_i, Dh]. */
  past?: KV[][] | null;
  /**
   * The mask is causal over the new positions and there are no past blocks (prefill, scoring):
   * attention may then skip most of the masked upper triangle (query blocks; see nn.ts).
   */
  causal?: boolean;
  /** What the backward pass recomputes instead of keeping from the forward pass (see `Recompute`). */
  recompute?: Recompute;
}

/** Query blocks for causal attention over T positions: one per 128 rows, at most 4 (prefill 512: -3%, BENCHMARKS.md proposal 4). */
export const causalBlocks = (T: number): number => Math.max(1, Math.min(4, Math.floor(T / 128)));

/** An adapter's virtual-token embeddings [N, C] placed before every row's embeddings [B, T, C]: [B, N + T, C]. */
export function prependVirtualTokens(embeds: Value, virtual: Value): Value {
  const [B, , C] = embeds.shape as [number, number, number];
  const N = virtual.shape[0]!;
  return op.concat([op.expand(op.reshape(virtual, [1, N, C]), [B, N, C]), embeds], 1);
}

/** One layer's prefix keys/values [Hkv, Pn, Dh], shared by every row: [B, Hkv, Pn, Dh]. */
export function batchPrefix(kv: KV, B: number): KV {
  const shape = [B, ...kv.k.shape];
  return { k: op.expand(op.reshape(kv.k, [1, ...kv.k.shape]), shape), v: op.expand(op.reshape(kv.v, [1, ...kv.v.shape]), shape) };
}

export interface DecoderOutputs {
  hidden: Value; // [B, T, C] after the final norm
  present: KV[]; // per layer, the new positions only: [B, Hkv, T, Dh]
}

/** Token embeddings [B, T, C], through the adapter's `embedding` hook (LoRA on embed_tokens). */
export function embed(w: WeightInputs, ids: Value, hooks: DecoderHooks = {}): Value {
  const y = op.gather(w.get('model.embed_tokens.weight'), ids); // [B, T, C]
  return hooks.embedding ? hooks.embedding(ids, y) : y;
}

/**
 * The output layer's weight [V, C]. A tied model's head is the base embedding unless an adapter
 * replaces the head itself: an adapter's own embedding alone leaves the head as it was, as PEFT's
 * modules_to_save does without ensure_weight_tying.
 */
export function headWeight(w: WeightInputs): Value {
  return w.isReplaced('lm_head.weight') ? w.get('lm_head.weight') : w.base(headWeightName(w.cfg));
}

/** Logits [..., V]; the adapter's `linear` hook sees the output layer as module `lm_head`. */
export function lmHead(w: WeightInputs, hidden: Value, hooks: DecoderHooks = {}): Value {
  return withHeadHook(hooks, hidden, linear(hidden, headWeight(w))); // [..., V]
}

/** The output layer's module name, as adapters' `linear` hooks see it. */
export const HEAD_MODULE = 'lm_head';

/** The output layer's product `y` = hidden W^T (however it was multiplied) through the adapter's hook. */
export function withHeadHook(hooks: DecoderHooks, hidden: Value, y: Value): Value {
  return hooks.linear ? hooks.linear(HEAD_MODULE, hidden, y) : y;
}

/** The base weight the output layer multiplies by: the embedding in a tied model. */
export const headWeightName = (cfg: ModelConfig): string => (cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');

/** The mask of layer l: the sliding one where the model mixes sliding and full layers. */
function layerBias(cfg: ModelConfig, l: number, inp: DecoderInputs): Value {
  if (!mixedWindows(cfg) || cfg.layerTypes[l] !== 'sliding_attention') return inp.bias;
  if (!inp.biasWindow) throw new Error(`decoder: layer ${l} slides and the others do not: the graph needs a bias_window input (masks.ts biasFeeds)`);
  return inp.biasWindow;
}

export function decoder(w: WeightInputs, inp: DecoderInputs, hooks: DecoderHooks = {}): DecoderOutputs {
  const cfg = w.cfg;
  const [B, T] = inp.embeds.shape as [number, number, number];
  const Dh = cfg.headDim;
  const rope = ropeInputs(inp.cos, inp.sin);
  // residual: added in the projection's own Gemm (C input) instead of an Add after it
  const proj = (name: string, x: Value, bias: boolean, residual?: Value): Value => {
    if (hooks.linear && hooks.rescales?.(name)) {
      let y = hooks.linear(name, x, linear(x, w.get(`${name}.weight`))); // [B*T, out]
      if (bias) y = op.add(y, w.get(`${name}.bias`));
      return residual ? op.add(y, residual) : y;
    }
    const y = linear(x, w.get(`${name}.weight`), bias ? w.get(`${name}.bias`) : null, residual);
    return hooks.linear ? hooks.linear(name, x, y) : y;
  };
  const heads = (x: Value, n: number): Value => op.transpose(op.reshape(x, [B, T, n, Dh]), [0, 2, 1, 3]); // [B, n, T, Dh]

  // The residual stream is kept as [B*T, C]: every projection is then a 2-D Gemm with no
  // reshape before or after it (and none in the backward).
  const C = inp.embeds.shape[2]!;
  const present: KV[] = [];
  // one decoder layer: x [B*T, C] -> [B*T, C]
  const layer = (l: number, x: Value): Value => {
    const p = `model.layers.${l}`;
    // --- attention block
    const h = rmsNorm(x, w.get(`${p}.input_layernorm.weight`), cfg.rmsNormEps);
    let q = op.reshape(proj(`${p}.self_attn.q_proj`, h, cfg.qkvBias), [B, T, cfg.numHeads, Dh]);
    let k = op.reshape(proj(`${p}.self_attn.k_proj`, h, cfg.qkvBias), [B, T, cfg.numKvHeads, Dh]);
    const v = heads(proj(`${p}.self_attn.v_proj`, h, cfg.qkvBias), cfg.numKvHeads); // [B, Hkv, T, Dh]
    if (cfg.qkNorm) {
      q = rmsNorm(q, w.get(`${p}.self_attn.q_norm.weight`), cfg.rmsNormEps);
      k = rmsNorm(k, w.get(`${p}.self_attn.k_norm.weight`), cfg.rmsNormEps);
    }
    const qr = applyRope(op.transpose(q, [0, 2, 1, 3]), rope); // [B, H, T, Dh]
    const kr = applyRope(op.transpose(k, [0, 2, 1, 3]), rope); // [B, Hkv, T, Dh]
    present.push({ k: kr, v });
    const past = inp.past?.[l] ?? [];
    // keys/values: [...past blocks; new], never concatenated (no copy of the cache per step)
    const ks = [...past.map((p) => p.k), kr];
    const vs = [...past.map((p) => p.v), v];
    const blocks = inp.causal && past.length === 0 ? causalBlocks(T) : 1;
    const bias = layerBias(cfg, l, inp);
    const attend = (): Value => attention(qr, ks, vs, bias, 1 / Math.sqrt(Dh), { causalBlocks: blocks });
    const a = op.reshape(inp.recompute === 'attention' ? remat(w.graph, attend) : attend(), [B * T, -1]); // [B*T, H*Dh]
    x = proj(`${p}.self_attn.o_proj`, a, cfg.oBias, x);
    // --- MLP block (SwiGLU)
    const m = rmsNorm(x, w.get(`${p}.post_attention_layernorm.weight`), cfg.rmsNormEps);
    const gate = silu(proj(`${p}.mlp.gate_proj`, m, cfg.mlpBias));
    const up = proj(`${p}.mlp.up_proj`, m, cfg.mlpBias);
    return proj(`${p}.mlp.down_proj`, op.mul(gate, up), cfg.mlpBias, x); // [B*T, C]
  };
  let x = op.reshape(inp.embeds, [B * T, C]); // [B*T, C]
  for (let l = 0; l < cfg.numLayers; l++) {
    const input = x;
    x = inp.recompute === 'layers' ? remat(w.graph, () => layer(l, input)) : layer(l, input);
  }
  return { hidden: op.reshape(rmsNorm(x, w.get('model.norm.weight'), cfg.rmsNormEps), [B, T, C]), present };
}
