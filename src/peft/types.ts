/**
 * PEFT methods: one typed config per method (a discriminated union on `kind`), one interface
 * for what a method produces. Each method lives in its own file; registry.ts maps kinds to
 * implementations explicitly.
 */
import { z } from 'zod';
import type { ModelAdapter } from '../model/adapter.js';
import type { ModelConfig } from '../model/config.js';
import type { PlumTokenizer } from '../model/tokenizer.js';

export const SoftPromptConfigSchema = z.object({
  kind: z.literal('soft-prompt'),
  virtualTokens: z.number().int().min(1).max(4096).default(20),
  /** random: N(0, std of the embedding table); vocab: rows of sampled vocabulary tokens; text: embeddings of initText. */
  init: z.enum(['random', 'vocab', 'text']).default('vocab'),
  initText: z.string().optional(),
});

export const PrefixConfigSchema = z.object({
  kind: z.literal('prefix'),
  virtualTokens: z.number().int().min(1).max(4096).default(20),
  /** random: small normal keys/values; text: the model's real keys/values of initText. */
  init: z.enum(['random', 'text']).default('random'),
  initText: z.string().optional(),
});

export const LORA_DEFAULT_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export const LoraConfigSchema = z.object({
  kind: z.literal('lora'),
  r: z.number().int().min(1).default(8),
  alpha: z.number().positive().default(16),
  dropout: z.number().min(0).lt(1).default(0),
  /** Module names (suffix match, as PEFT), one regular expression (full match), or "all-linear". */
  targetModules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).default(LORA_DEFAULT_TARGETS),
  /** Modules left out even if targeted (PEFT exclude_modules: names by suffix, or a regular expression). */
  excludeModules: z.union([z.array(z.string().min(1)), z.string().min(1)]).optional(),
  /** Only these layer indices (default: all). */
  layers: z.array(z.number().int().min(0)).optional(),
  /** rsLoRA scaling alpha / sqrt(r) instead of alpha / r. */
  rslora: z.boolean().default(false),
  /** Per-module rank and alpha, keyed by PEFT patterns (a name suffix or regex matched at the end of the module path). */
  rankPattern: z.record(z.string().min(1), z.number().int().min(1)).optional(),
  alphaPattern: z.record(z.string().min(1), z.number().positive()).optional(),
  /** DoRA (PEFT use_dora): each targeted row rescaled to a trained magnitude, y = m / ||W + s B A||_row * (W + s B A) x. */
  dora: z.boolean().optional(),
  /** PEFT lora_bias: lora_B has a bias (starting at zero), y += s * (B A x + b). Not with DoRA. */
  loraBias: z.boolean().optional(),
  /** DoRA: let the gradient flow through the row norm too (the exact gradient; PEFT and the paper treat the norm as a constant). */
  doraNormGradient: z.boolean().optional(),
  /**
   * PEFT modules_to_save: modules (by name or `.name` suffix, e.g. lm_head, embed_tokens,
   * model.norm) trained as whole copies beside the LoRA factors. In a tied model lm_head and
   * embed_tokens get copies of their own (the head is untied), unless ensureWeightTying.
   */
  modulesToSave: z.array(z.string().min(1)).min(1).optional(),
  /** PEFT ensure_weight_tying: in a tied model, saved embed_tokens / lm_head are one shared copy. */
  ensureWeightTying: z.boolean().optional(),
});

export const LastLayersConfigSchema = z.object({
  kind: z.literal('last-layers'),
  layers: z.number().int().min(1).default(2),
  /** Also train the final norm (and an untied LM head). */
  includeHead: z.boolean().default(true),
});

export const FullConfigSchema = z.object({ kind: z.literal('full') });

export const MethodConfigSchema = z.discriminatedUnion('kind', [
  SoftPromptConfigSchema,
  PrefixConfigSchema,
  LoraConfigSchema,
  LastLayersConfigSchema,
  FullConfigSchema,
]);
export type MethodConfig = z.infer<typeof MethodConfigSchema>;
export type MethodKind = MethodConfig['kind'];
export type SoftPromptConfig = z.infer<typeof SoftPromptConfigSchema>;
export type PrefixConfig = z.infer<typeof PrefixConfigSchema>;
export type LoraConfig = z.infer<typeof LoraConfigSchema>;
export type LastLayersConfig = z.infer<typeof LastLayersConfigSchema>;
export type FullConfig = z.infer<typeof FullConfigSchema>;

/** A trainable tensor owned by an adapter; `name` is also its graph-input name. */
export interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** What a method hands to trainers and the model. */
export interface PeftAdapter extends ModelAdapter {
  readonly config: MethodConfig;
  /** Tensors the adapter owns (soft prompt, prefix, LoRA A/B). Updated in place by optimizers. */
  readonly params: Param[];
  /** Base-model weights trained in place (last-layers, full); empty for adapter methods. */
  readonly baseTrainable: string[];
}

/** The base model a method attaches to. */
export interface BaseModel {
  cfg: ModelConfig;
  weights: Map<string, Float32Array>;
  tokenizer?: PlumTokenizer;
  /** Keys/values of a text, for prefix initialisation: per layer [Hkv, n, Dh]. */
  textKV?: (ids: number[]) => Promise<{ k: Float32Array; v: Float32Array }[]>;
}

export interface Method<C extends MethodConfig> {
  readonly kind: C['kind'];
  create(config: C, base: BaseModel, seed: number): Promise<PeftAdapter>;
  /** Rebuild from saved tensors (names as `params` uses them). */
  restore(config: C, base: BaseModel, tensors: Map<string, Float32Array>): PeftAdapter;
}
