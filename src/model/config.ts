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
}

const llama: FamilyTraits = { qkvBias: false, oBias: false, qkNorm: false };
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

/** Llama 3 style frequency-dependent RoPE scaling, or linear position interpolation. */
export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number };

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
  /** Mistral-style sliding-window attention (null = full causal attention). */
  slidingWindow: number | null;
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
    rope_theta: z.number().positive().default(10000),
    rope_scaling: z.record(z.string(), z.unknown()).nullish(),
    max_position_embeddings: z.number().int().positive().default(2048),
    tie_word_embeddings: z.boolean().optional(),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    hidden_act: z.string().default('silu'),
    sliding_window: z.number().int().positive().nullish(),
    use_sliding_window: z.boolean().optional(),
    bos_token_id: tokenId.nullish(),
    eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
    pad_token_id: tokenId.nullish(),
  })
  .passthrough();

function parseRopeScaling(raw: Record<string, unknown> | null | undefined, file: string): RopeScaling | null {
  if (!raw) return null;
  const type = String(raw.rope_type ?? raw.type ?? 'default');
  const num = (k: string): number => {
    const v = raw[k];
    if (typeof v !== 'number') fail(`${file}: rope_scaling.${k} must be a number for rope_type "${type}"`);
    return v;
  };
  if (type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: num('factor') };
  if (type === 'llama3') {
    return {
      type: 'llama3',
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor'),
      highFreqFactor: num('high_freq_factor'),
      originalMaxPositionEmbeddings: num('original_max_position_embeddings'),
    };
  }
  return fail(`${file}: rope_scaling type "${type}" is not supported (supported: default, linear, llama3)`);
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
  if (c.mlp_bias) fail(`${file}: mlp_bias=true is not supported`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    fail(`${file}: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim)) fail(`${file}: hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}; set head_dim`);
  if (headDim % 2 !== 0) fail(`${file}: head_dim ${headDim} must be even for RoPE`);
  const traits = { ...families[family] };
  if (c.attention_bias) {
    traits.qkvBias = true;
    traits.oBias = true;
  }
  const useWindow = family === 'mistral' ? true : c.use_sliding_window === true;
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
    ropeTheta: c.rope_theta,
    ropeScaling: parseRopeScaling(c.rope_scaling, file),
    maxPositionEmbeddings: c.max_position_embeddings,
    // HF defaults: Llama/Mistral/Qwen configs default tie_word_embeddings to false.
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    slidingWindow: useWindow ? (c.sliding_window ?? null) : null,
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
  }
  m.set('model.norm.weight', [C]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, C]);
  return m;
}
