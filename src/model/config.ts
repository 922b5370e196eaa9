/**
 * Hugging Face `config.json` -> Plum's normalised model configuration.
 *
 * The Llama family is one decoder; the variants are data (see `families`).
 * Architecture strings appear only here.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { fail } from '../util/errors.js';

/** Architectural switches that distinguish the members of the family. */
export interface FamilyTraits {
  /** q/k/v projections carry a bias (Qwen2). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama with attention_bias=true). */
  oBias: boolean;
  /** per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  /** gate/up/down projections carry a bias (Llama with mlp_bias=true). */
  mlpBias: boolean;
}

const llama: FamilyTraits = { qkvBias: false, oBias: false, qkNorm: false, mlpBias: false };
export const families = {
  llama,
  mistral: { ...llama },
  qwen2: { ...llama, qkvBias: true },
  qwen3: { ...llama, qkNorm: true },
} satisfies Record<string, FamilyTraits>;
export type FamilyName = keyof typeof families;

const architectureToFamily: Record<string, FamilyName> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

/**
 * RoPE scaling, as Hugging Face's `rope_type`s: Llama 3's frequency-dependent scaling, linear
 * position interpolation, dynamic NTK (the base grows with the sequence beyond
 * `max_position_embeddings`) and YaRN (blended frequencies, cos/sin scaled by an attention factor).
 */
export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number }
  | { type: 'yarn'; factor: number; originalMaxPositionEmbeddings: number; betaFast: number; betaSlow: number; attentionFactor: number; truncate: boolean };

/** Per layer: full causal attention or a sliding window (HF `layer_types`). */
export type LayerType = 'full_attention' | 'sliding_attention';

export interface ModelConfig extends FamilyTraits {
  family: FamilyName;
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number; // F
  numLayers: number; // L
  numHeads: number; // H
  numKvHeads: number; // Hkv
  headDim: number; // Dh
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Sliding-window width (null = none): applies to the layers marked 'sliding_attention'. */
  slidingWindow: number | null;
  /** Attention kind of each layer [L]; all 'full_attention' when slidingWindow is null. */
  layerTypes: LayerType[];
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The parsed config.json, kept so that writers can round-trip unknown fields. */
  raw: Record<string, unknown>;
}

const tokenId = z.number().int().nonnegative();
const rawSchema = z
  .object({
    architectures: z.array(z.string()).optional(),
    model_type: z.string().optional(),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullish(),
    head_dim: z.number().int().positive().nullish(),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().nullish(),
    rope_scaling: z.record(z.string(), z.unknown()).nullish(),
    // transformers 5 writes rope_theta and the scaling together as rope_parameters
    rope_parameters: z.record(z.string(), z.unknown()).nullish(),
    partial_rotary_factor: z.number().positive().nullish(),
    max_position_embeddings: z.number().int().positive().default(2048),
    original_max_position_embeddings: z.number().int().positive().nullish(),
    tie_word_embeddings: z.boolean().optional(),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    hidden_act: z.string().default('silu'),
    sliding_window: z.number().int().positive().nullish(),
    use_sliding_window: z.boolean().optional(),
    max_window_layers: z.number().int().nonnegative().nullish(),
    layer_types: z.array(z.string()).nullish(),
    bos_token_id: tokenId.nullish(),
    eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
    pad_token_id: tokenId.nullish(),
  })
  .passthrough();

/** HF's YaRN attention factor: 0.1 * mscale * ln(scale) + 1 (1 when scale <= 1). */
function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/**
 * `rope_scaling` (transformers 4) or `rope_parameters` (transformers 5) -> RopeScaling, with the
 * defaults of HF's `ROPE_INIT_FUNCTIONS`. `maxPos` is config.max_position_embeddings.
 */
function parseRopeScaling(raw: Record<string, unknown> | null | undefined, maxPos: number, topOriginal: number | null, field: string, file: string): RopeScaling | null {
  if (!raw) return null;
  const type = String(raw.rope_type ?? raw.type ?? 'default');
  const num = (k: string): number => {
    const v = raw[k];
    if (typeof v !== 'number') fail(`${file}: ${field}.${k} must be a number for rope_type "${type}"`);
    return v;
  };
  const opt = (k: string): number | null => {
    const v = raw[k];
    if (v == null) return null;
    if (typeof v !== 'number') fail(`${file}: ${field}.${k} must be a number for rope_type "${type}"`);
    return v;
  };
  if (type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: num('factor') };
  if (type === 'dynamic') return { type: 'dynamic', factor: num('factor') };
  // transformers 5 standardisation: the pretraining length from a top-level
  // original_max_position_embeddings (which wins), else the scaling dict's, else max_position_embeddings
  const original = topOriginal ?? opt('original_max_position_embeddings') ?? maxPos;
  if (type === 'llama3') {
    return { type: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'), highFreqFactor: num('high_freq_factor'), originalMaxPositionEmbeddings: original };
  }
  if (type === 'yarn') {
    // transformers 5: the explicit factor wins; without one, the ratio of the context lengths
    const factor = opt('factor') ?? maxPos / original;
    const mscale = opt('mscale');
    const mscaleAllDim = opt('mscale_all_dim');
    const attentionFactor = opt('attention_factor') ?? (mscale && mscaleAllDim ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim) : yarnMscale(factor));
    const truncate = raw.truncate ?? true;
    if (typeof truncate !== 'boolean') fail(`${file}: ${field}.truncate must be true or false`);
    return { type: 'yarn', factor, originalMaxPositionEmbeddings: original, betaFast: opt('beta_fast') || 32, betaSlow: opt('beta_slow') || 1, attentionFactor, truncate };
  }
  return fail(`${file}: ${field} type "${type}" is not supported (supported: default, linear, dynamic, llama3, yarn)`);
}

/** rope_theta and the scaling from either config layout (rope_parameters has priority, as in transformers 5). */
function parseRope(c: z.infer<typeof rawSchema>, file: string): { theta: number; scaling: RopeScaling | null } {
  let params = c.rope_parameters ?? null;
  let field = 'rope_parameters';
  if (params && c.layer_types && Object.keys(params).length > 0 && Object.keys(params).every((k) => c.layer_types!.includes(k))) {
    // one set of parameters per layer type (transformers 5): Plum supports only one shared set
    const sets = Object.values(params).map((v) => JSON.stringify(v));
    if (new Set(sets).size > 1) fail(`${file}: rope_parameters differ between layer types (${Object.keys(params).join(', ')}); one RoPE for all layers is supported`);
    field = `rope_parameters.${Object.keys(params)[0]}`;
    params = Object.values(params)[0] as Record<string, unknown>;
  }
  const thetaRaw = params?.rope_theta ?? c.rope_theta ?? 10000;
  if (typeof thetaRaw !== 'number' || !(thetaRaw > 0)) fail(`${file}: ${params?.rope_theta != null ? field + '.' : ''}rope_theta must be a positive number`);
  const partial = (params?.partial_rotary_factor as number | undefined) ?? c.partial_rotary_factor ?? 1;
  if (partial !== 1) fail(`${file}: partial_rotary_factor ${partial} is not supported (the Llama family rotates whole heads; only 1)`);
  const scaling = params && String(params.rope_type ?? params.type ?? 'default') !== 'default' ? parseRopeScaling(params, c.max_position_embeddings, c.original_max_position_embeddings ?? null, field, file) : parseRopeScaling(c.rope_scaling, c.max_position_embeddings, c.original_max_position_embeddings ?? null, 'rope_scaling', file);
  return { theta: thetaRaw, scaling };
}

/**
 * Which layers use the sliding window, as HF decides. The window: Mistral's `sliding_window`;
 * Qwen2/Qwen3's only with `use_sliding_window: true`; Llama has none. The layers: an explicit
 * `layer_types` list, else every layer (Mistral) or those from `max_window_layers` on (Qwen).
 */
function parseLayerTypes(c: z.infer<typeof rawSchema>, family: FamilyName, file: string): { window: number | null; types: LayerType[] } {
  const L = c.num_hidden_layers;
  const full = (): LayerType[] => Array.from({ length: L }, () => 'full_attention');
  let window: number | null;
  if (family === 'mistral') window = c.sliding_window ?? null;
  else if (family === 'qwen2' || family === 'qwen3') window = c.use_sliding_window === true ? (c.sliding_window ?? null) : null;
  else window = null;
  if (c.layer_types) {
    if (c.layer_types.length !== L) fail(`${file}: layer_types has ${c.layer_types.length} entries for num_hidden_layers ${L}`);
    const types = c.layer_types.map((t, i): LayerType => {
      if (t !== 'full_attention' && t !== 'sliding_attention') fail(`${file}: layer_types[${i}] "${t}" is not supported (full_attention, sliding_attention)`);
      return t;
    });
    // with no window in effect (e.g. Qwen's use_sliding_window: false), HF's sliding layers attend fully
    if (window === null || !types.includes('sliding_attention')) return { window: null, types: full() };
    return { window, types };
  }
  if (window === null) return { window: null, types: full() };
  if (family === 'mistral') return { window, types: Array.from({ length: L }, () => 'sliding_attention') };
  const from = c.max_window_layers ?? 28; // HF's Qwen2Config/Qwen3Config default
  const types = Array.from({ length: L }, (_, i): LayerType => (i >= from ? 'sliding_attention' : 'full_attention'));
  return types.includes('sliding_attention') ? { window, types } : { window: null, types };
}

/** Normalise a parsed config.json object. `file` is used in error messages. */
export function parseConfig(json: unknown, file = 'config.json'): ModelConfig {
  const parsed = rawSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    fail(`${file}: field "${issue.path.join('.')}": ${issue.message}`);
  }
  const c = parsed.data;
  const arch = c.architectures?.[0];
  let family: FamilyName | undefined;
  if (arch !== undefined) {
    family = architectureToFamily[arch];
    if (!family) fail(`${file}: architecture "${arch}" is not supported (supported: ${Object.keys(architectureToFamily).join(', ')})`);
  } else if (c.model_type && c.model_type in families) {
    family = c.model_type as FamilyName;
  } else {
    fail(`${file}: no "architectures" field and model_type "${c.model_type ?? ''}" is not supported (supported: ${Object.keys(families).join(', ')})`);
  }
  if (c.hidden_act !== 'silu') fail(`${file}: hidden_act "${c.hidden_act}" is not supported (only "silu")`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    fail(`${file}: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim)) fail(`${file}: hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}; set head_dim`);
  if (headDim % 2 !== 0) fail(`${file}: head_dim ${headDim} must be even for RoPE`);
  const traits = { ...families[family] };
  // attention_bias and mlp_bias are Llama's and Qwen3's switches (mlp_bias only Llama's); HF's
  // Qwen2 and Mistral modules have fixed biases and ignore these fields.
  if (c.attention_bias && (family === 'llama' || family === 'qwen3')) {
    traits.qkvBias = true;
    traits.oBias = true;
  }
  if (c.mlp_bias && family === 'llama') traits.mlpBias = true;
  const rope = parseRope(c, file);
  const layers = parseLayerTypes(c, family, file);
  const eos = c.eos_token_id == null ? [] : Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id];
  return {
    family,
    ...traits,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositionEmbeddings: c.max_position_embeddings,
    // HF defaults: Llama/Mistral/Qwen configs default tie_word_embeddings to false.
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    slidingWindow: layers.window,
    layerTypes: layers.types,
    bosTokenId: c.bos_token_id ?? null,
    eosTokenIds: eos,
    padTokenId: c.pad_token_id ?? null,
    raw: c as Record<string, unknown>,
  };
}

/** Read and normalise `<dir>/config.json`. */
export function loadConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) fail(`${file}: not found (a model folder needs config.json)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: invalid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file);
}

/** HF tensor names and shapes that a config implies (the decoder's parameter table). */
export function expectedTensorShapes(cfg: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
  m.set('model.embed_tokens.weight', [V, C]);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'input_layernorm.weight', [C]);
    m.set(p + 'post_attention_layernorm.weight', [C]);
    m.set(p + 'self_attn.q_proj.weight', [H * Dh, C]);
    m.set(p + 'self_attn.k_proj.weight', [Hkv * Dh, C]);
    m.set(p + 'self_attn.v_proj.weight', [Hkv * Dh, C]);
    m.set(p + 'self_attn.o_proj.weight', [C, H * Dh]);
    if (cfg.qkvBias) {
      m.set(p + 'self_attn.q_proj.bias', [H * Dh]);
      m.set(p + 'self_attn.k_proj.bias', [Hkv * Dh]);
      m.set(p + 'self_attn.v_proj.bias', [Hkv * Dh]);
    }
    if (cfg.oBias) m.set(p + 'self_attn.o_proj.bias', [C]);
    if (cfg.qkNorm) {
      m.set(p + 'self_attn.q_norm.weight', [Dh]);
      m.set(p + 'self_attn.k_norm.weight', [Dh]);
    }
    m.set(p + 'mlp.gate_proj.weight', [F, C]);
    m.set(p + 'mlp.up_proj.weight', [F, C]);
    m.set(p + 'mlp.down_proj.weight', [C, F]);
    if (cfg.mlpBias) {
      m.set(p + 'mlp.gate_proj.bias', [F]);
      m.set(p + 'mlp.up_proj.bias', [F]);
      m.set(p + 'mlp.down_proj.bias', [C]);
    }
  }
  m.set('model.norm.weight', [C]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, C]);
  return m;
}
