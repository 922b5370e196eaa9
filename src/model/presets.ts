/**
 * Model sizes for `plum init`, and the Hugging Face config.json fields of each architecture.
 * Presets are data: the real hyperparameters of the published checkpoints (SmolLM2-135M,
 * Qwen2.5-0.5B) and a tiny one for tests; `--arch` then selects the family traits.
 */
import { fail } from '../util/errors.js';

export const ARCH_NAMES = ['llama', 'qwen2', 'qwen3'] as const;
export type ArchName = (typeof ARCH_NAMES)[number];
export const PRESET_NAMES = ['tiny', 'micro', 'smollm2-135m', 'qwen2.5-0.5b'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Sizes and hyperparameters, as config.json fields. */
export interface PresetSizes {
  hidden_size: number; // C
  intermediate_size: number; // F
  num_hidden_layers: number; // L
  num_attention_heads: number; // H
  num_key_value_heads: number; // Hkv
  /** Only when it differs from hidden_size / num_attention_heads. */
  head_dim?: number;
  vocab_size: number; // V
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
}

export interface Preset {
  /** The family of the published model (the default for `--arch`). */
  arch: ArchName;
  sizes: PresetSizes;
}

export const presets: Record<PresetName, Preset> = {
  // For tests: vocab 512 = the byte-level tokenizer's 285 ids rounded up to a power of two.
  tiny: {
    arch: 'llama',
    sizes: {
      hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
      vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    },
  },
  // Small enough to pretrain on one CPU core in minutes, with a fitted tokenizer (`plum tokenizer
  // fit`, then `plum init --tokenizer`, which sets vocab_size); 512 holds the default tokenizer.
  micro: {
    arch: 'llama',
    sizes: {
      hidden_size: 192, intermediate_size: 512, num_hidden_layers: 6, num_attention_heads: 6, num_key_value_heads: 2,
      vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    },
  },
  // HuggingFaceTB/SmolLM2-135M
  'smollm2-135m': {
    arch: 'llama',
    sizes: {
      hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
      vocab_size: 49152, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true,
    },
  },
  // Qwen/Qwen2.5-0.5B
  'qwen2.5-0.5b': {
    arch: 'qwen2',
    sizes: {
      hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2,
      vocab_size: 151936, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
    },
  },
};

/** The config.json fields that identify each architecture and switch its traits. */
function archFields(arch: ArchName, s: PresetSizes): Record<string, unknown> {
  const headDim = s.head_dim ?? s.hidden_size / s.num_attention_heads;
  switch (arch) {
    case 'llama':
      return {
        architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, mlp_bias: false, pretraining_tp: 1,
        ...(s.head_dim !== undefined ? { head_dim: s.head_dim } : {}),
      };
    case 'qwen2': // q/k/v biases are implied by the architecture
      return {
        architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', use_sliding_window: false,
        sliding_window: s.max_position_embeddings, max_window_layers: s.num_hidden_layers,
        ...(s.head_dim !== undefined ? { head_dim: s.head_dim } : {}),
      };
    case 'qwen3': // per-head q/k RMSNorm; head_dim is always explicit in Qwen3 configs
      return {
        architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', attention_bias: false, head_dim: headDim,
        use_sliding_window: false, sliding_window: null, max_window_layers: s.num_hidden_layers,
      };
  }
}

export interface SpecialTokenIds {
  bos: number | null;
  /** The first is config.json's eos_token_id; generation stops at any. */
  eos: number[];
  pad: number;
}

/**
 * A complete Hugging Face config.json for `preset` with the traits of `arch` (default: the
 * preset's own). `minVocab` is the tokenizer's size; the vocabulary is never smaller.
 * `overrides` replace preset sizes (`plum init --tokenizer` sets vocab_size).
 */
export function presetConfig(
  preset: PresetName,
  arch: ArchName | undefined,
  tokens: SpecialTokenIds,
  minVocab: number,
  overrides: Partial<PresetSizes> = {},
): Record<string, unknown> {
  const p = presets[preset];
  const s = { ...p.sizes, ...overrides };
  if (s.vocab_size < minVocab) fail(`preset ${preset}: vocab_size ${s.vocab_size} is smaller than the tokenizer's ${minVocab} tokens`);
  return {
    ...archFields(arch ?? p.arch, s),
    attention_dropout: 0.0,
    bos_token_id: tokens.bos,
    eos_token_id: tokens.eos.length === 1 ? tokens.eos[0] : tokens.eos,
    pad_token_id: tokens.pad,
    hidden_act: 'silu',
    hidden_size: s.hidden_size,
    initializer_range: 0.02,
    intermediate_size: s.intermediate_size,
    max_position_embeddings: s.max_position_embeddings,
    num_attention_heads: s.num_attention_heads,
    num_hidden_layers: s.num_hidden_layers,
    num_key_value_heads: s.num_key_value_heads,
    rms_norm_eps: s.rms_norm_eps,
    rope_scaling: null,
    rope_theta: s.rope_theta,
    tie_word_embeddings: s.tie_word_embeddings,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: s.vocab_size,
  };
}
