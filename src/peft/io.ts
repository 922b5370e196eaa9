/**
 * Adapter folders in Hugging Face PEFT's format: adapter_config.json + adapter_model.safetensors
 * with PEFT's tensor names, so PEFT and vLLM users can take Plum's adapters and Plum loads theirs.
 * Last-layers and full runs save a whole model folder instead.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type NamedTensor, readSafetensors, writeSafetensors } from '../model/safetensors.js';
import { saveModelFolder } from '../model/weights.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { PlumError, fail } from '../util/errors.js';
import { EMBED_MODULE, isAllLinear, loraModules, loraParamName, loraParts, savedTensors } from './lora.js';
import { prefixFromPeft, prefixToPeft } from './prefix.js';
import { restoreAdapter } from './registry.js';
import { SOFT_PROMPT_PARAM } from './soft-prompt.js';
import type { BaseModel, MethodConfig, PeftAdapter } from './types.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
const LORA_PREFIX = 'base_model.model.';

const PeftConfigSchema = z
  .object({
    peft_type: z.enum(['PROMPT_TUNING', 'P_TUNING', 'PREFIX_TUNING', 'LORA']),
    task_type: z.string().nullish(),
    base_model_name_or_path: z.string().nullish(),
    num_virtual_tokens: z.number().int().positive().optional(),
    token_dim: z.number().int().positive().nullish(),
    prompt_tuning_init: z.string().nullish(),
    prompt_tuning_init_text: z.string().nullish(),
    prefix_projection: z.boolean().nullish(),
    r: z.number().int().positive().optional(),
    lora_alpha: z.number().positive().optional(),
    lora_dropout: z.number().min(0).lt(1).optional(),
    target_modules: z.union([z.array(z.string()), z.string()]).nullish(),
    layers_to_transform: z.union([z.array(z.number().int()), z.number().int()]).nullish(),
    use_rslora: z.boolean().nullish(),
    use_dora: z.boolean().nullish(),
    bias: z.string().nullish(),
    fan_in_fan_out: z.boolean().nullish(),
    rank_pattern: z.record(z.string(), z.number().int().positive()).nullish(),
    alpha_pattern: z.record(z.string(), z.number().positive()).nullish(),
    exclude_modules: z.union([z.array(z.string()), z.string()]).nullish(),
    lora_bias: z.boolean().nullish(),
    layers_pattern: z.union([z.array(z.string()), z.string()]).nullish(),
    modules_to_save: z.array(z.string()).nullish(),
    ensure_weight_tying: z.boolean().nullish(),
  })
  .passthrough();

/** adapter_config.json (PEFT fields) for an adapter. */
export function peftConfigJson(a: PeftAdapter, base: BaseModel, baseModelPath: string): Record<string, unknown> {
  const c = a.config;
  const common = { task_type: 'CAUSAL_LM', base_model_name_or_path: baseModelPath, inference_mode: true, revision: null };
  const { numLayers: L, hiddenSize: C, numHeads: H, numKvHeads: Hkv, headDim: Dh } = base.cfg;
  if (c.kind === 'soft-prompt') {
    const init = { random: 'RANDOM', vocab: 'SAMPLE_VOCAB', text: 'TEXT' }[c.init];
    return {
      ...common,
      peft_type: 'PROMPT_TUNING',
      num_virtual_tokens: c.virtualTokens,
      token_dim: C,
      num_transformer_submodules: 1,
      num_attention_heads: H,
      num_layers: L,
      prompt_tuning_init: init,
      prompt_tuning_init_text: c.initText ?? null,
      tokenizer_name_or_path: c.init === 'text' ? baseModelPath : null,
    };
  }
  if (c.kind === 'prefix') {
    // PEFT (GQA, see its _prepare_prompt_learning_config): token_dim = Hkv * head_dim, heads = Hkv.
    return { ...common, peft_type: 'PREFIX_TUNING', num_virtual_tokens: c.virtualTokens, token_dim: Hkv * Dh, num_attention_heads: Hkv, num_layers: L, encoder_hidden_size: Hkv * Dh, prefix_projection: false };
  }
  if (c.kind === 'lora') {
    return {
      ...common,
      peft_type: 'LORA',
      r: c.r,
      lora_alpha: c.alpha,
      lora_dropout: c.dropout,
      // "all-linear" is saved as the modules it selected, as PEFT does
      target_modules: isAllLinear(c.targetModules) ? [...new Set(loraModules(base.cfg, c).map((m) => m.name.split('.').pop()!))].sort() : c.targetModules,
      exclude_modules: c.excludeModules ?? null,
      layers_to_transform: c.layers ?? null,
      layers_pattern: null,
      use_rslora: c.rslora,
      bias: 'none',
      fan_in_fan_out: false,
      init_lora_weights: true,
      modules_to_save: c.modulesToSave ?? null,
      // written only when set: PEFT releases before the field would refuse an unknown key
      ...(c.ensureWeightTying ? { ensure_weight_tying: true } : {}),
      use_dora: c.dora === true,
      lora_bias: c.loraBias === true,
      rank_pattern: c.rankPattern ?? {},
      alpha_pattern: c.alphaPattern ?? {},
    };
  }
  throw new Error(`${c.kind} saves a model folder, not an adapter`);
}

/** Tensors under PEFT's names. */
function peftTensors(a: PeftAdapter, base: BaseModel): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  const c = a.config;
  if (c.kind === 'soft-prompt') out.set('prompt_embeddings', { dtype: 'F32', shape: a.params[0]!.shape, data: a.params[0]!.data });
  else if (c.kind === 'prefix') {
    const width = base.cfg.numLayers * 2 * base.cfg.numKvHeads * base.cfg.headDim;
    out.set('prompt_embeddings', { dtype: 'F32', shape: [c.virtualTokens, width], data: prefixToPeft(base, a.params, c.virtualTokens) });
  } else if (c.kind === 'lora') {
    for (const p of a.params) {
      const saved = /^save\.(.+)$/.exec(p.name);
      if (saved) {
        // PEFT saves a modules_to_save copy under the module's own name (get_peft_model_state_dict)
        out.set(`${LORA_PREFIX}${saved[1]}`, { dtype: 'F32', shape: p.shape, data: p.data });
        continue;
      }
      const m = /^lora\.(.+)\.(A|B|M|bias)$/.exec(p.name)!;
      // PEFT keeps DoRA's magnitude under its pre-0.12 name, without ".weight" (get_peft_model_state_dict)
      // and an embedding's factors as lora_embedding_A / _B (parameters, not modules: no ".weight")
      const key =
        m[2] === 'M' ? `${LORA_PREFIX}${m[1]}.lora_magnitude_vector`
        : m[2] === 'bias' ? `${LORA_PREFIX}${m[1]}.lora_B.bias`
        : m[1] === EMBED_MODULE ? `${LORA_PREFIX}${m[1]}.lora_embedding_${m[2]}`
        : `${LORA_PREFIX}${m[1]}.lora_${m[2]}.weight`;
      out.set(key, { dtype: 'F32', shape: p.shape, data: p.data });
    }
  }
  return out;
}

/** Copy the files that make a folder a usable model besides its weights. */
function copyModelSidecars(fromDir: string, toDir: string): void {
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json']) {
    if (existsSync(join(fromDir, f))) copyFileSync(join(fromDir, f), join(toDir, f));
  }
}

/**
 * Save an adapter (PEFT format) or, for last-layers / full, a model folder. Files are written
 * atomically; adapter_config.json / config.json last, so a folder that has it is complete.
 */
export function saveAdapter(dir: string, a: PeftAdapter, base: BaseModel, baseModelPath: string): void {
  mkdirSync(dir, { recursive: true });
  if (a.baseTrainable.length > 0) {
    copyModelSidecars(baseModelPath, dir);
    saveModelFolder(dir, base.cfg.raw, base.weights);
    return;
  }
  writeSafetensors(join(dir, ADAPTER_WEIGHTS), peftTensors(a, base), { format: 'pt' });
  writeJsonAtomic(join(dir, ADAPTER_CONFIG), peftConfigJson(a, base, baseModelPath));
}

export function isAdapterFolder(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG));
}

/** Read a PEFT adapter folder (written by Plum or by PEFT) for this base model. */
export function loadAdapter(dir: string, base: BaseModel): PeftAdapter {
  const cfgFile = join(dir, ADAPTER_CONFIG);
  if (!existsSync(cfgFile)) fail(`${dir}: no ${ADAPTER_CONFIG} (not a PEFT adapter folder)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    fail(`${cfgFile}: invalid JSON (${(e as Error).message})`);
  }
  const parsed = PeftConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    fail(`${cfgFile}: field "${i.path.join('.')}": ${i.message} (supported peft_type: PROMPT_TUNING, P_TUNING, PREFIX_TUNING, LORA)`);
  }
  const pc = parsed.data;
  const wFile = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(wFile)) {
    const bin = existsSync(join(dir, 'adapter_model.bin'));
    fail(`${wFile}: not found${bin ? ' (adapter_model.bin is a pickle; re-save it with safe_serialization=True)' : ''}`);
  }
  const tensors = readSafetensors(wFile).tensors;
  const need = (v: number | undefined, field: string): number => v ?? fail(`${cfgFile}: field "${field}" is required for ${pc.peft_type}`);
  const C = base.cfg.hiddenSize;
  let config: MethodConfig;
  const params = new Map<string, Float32Array>();
  // P-tuning saves its prompt encoder's output as prompt_embeddings (PEFT's
  // get_prompt_embedding_to_save), which PEFT uses as they are in inference: a soft prompt.
  if (pc.peft_type === 'PROMPT_TUNING' || pc.peft_type === 'P_TUNING') {
    const N = need(pc.num_virtual_tokens, 'num_virtual_tokens');
    if (pc.token_dim && pc.token_dim !== C) fail(`${cfgFile}: token_dim ${pc.token_dim} does not match the model's hidden_size ${C} (adapter for another model?)`);
    const t = tensors.get('prompt_embeddings') ?? fail(`${wFile}: no tensor "prompt_embeddings"`);
    if (t.shape[0]! < N || t.shape[1] !== C) fail(`${wFile}: prompt_embeddings has shape [${t.shape.join(', ')}], expected [${N}, ${C}]`);
    config = { kind: 'soft-prompt', virtualTokens: N, init: 'random' };
    params.set(SOFT_PROMPT_PARAM, t.data.slice(0, N * C));
  } else if (pc.peft_type === 'PREFIX_TUNING') {
    if (pc.prefix_projection) fail(`${cfgFile}: prefix_projection=true is not supported (save the projected prefix instead)`);
    const N = need(pc.num_virtual_tokens, 'num_virtual_tokens');
    const t = tensors.get('prompt_embeddings') ?? fail(`${wFile}: no tensor "prompt_embeddings"`);
    config = { kind: 'prefix', virtualTokens: N, init: 'random' };
    for (const [k, v] of prefixFromPeft(base, t.data, N)) params.set(k, v);
  } else {
    if (pc.bias && pc.bias !== 'none') fail(`${cfgFile}: bias "${pc.bias}" is not supported (only "none")`);
    if (pc.fan_in_fan_out) fail(`${cfgFile}: fan_in_fan_out=true is not supported for Llama-family models`);
    const lp = pc.layers_pattern == null ? [] : Array.isArray(pc.layers_pattern) ? pc.layers_pattern : [pc.layers_pattern];
    if (lp.some((x) => x !== 'layers')) fail(`${cfgFile}: layers_pattern ${JSON.stringify(pc.layers_pattern)} does not name this model's layers (Llama-family layers are model.layers.N: use "layers" or null)`);
    const layers = pc.layers_to_transform == null ? undefined : Array.isArray(pc.layers_to_transform) ? pc.layers_to_transform : [pc.layers_to_transform];
    config = {
      kind: 'lora',
      r: need(pc.r, 'r'),
      alpha: need(pc.lora_alpha, 'lora_alpha'),
      dropout: pc.lora_dropout ?? 0,
      targetModules: pc.target_modules ?? fail(`${cfgFile}: field "target_modules" is required`),
      layers,
      rslora: pc.use_rslora ?? false,
      ...(pc.use_dora ? { dora: true } : {}),
      ...(pc.lora_bias ? { loraBias: true } : {}),
      ...(pc.exclude_modules != null ? { excludeModules: pc.exclude_modules } : {}),
      ...(Object.keys(pc.rank_pattern ?? {}).length ? { rankPattern: pc.rank_pattern! } : {}),
      ...(Object.keys(pc.alpha_pattern ?? {}).length ? { alphaPattern: pc.alpha_pattern! } : {}),
      ...(pc.modules_to_save?.length ? { modulesToSave: pc.modules_to_save } : {}),
      ...(pc.ensure_weight_tying ? { ensureWeightTying: true } : {}),
    };
    const saved = (() => {
      try {
        return savedTensors(base.cfg, config);
      } catch (e) {
        if (e instanceof PlumError) fail(`${cfgFile}: ${e.message}`);
        throw e;
      }
    })();
    // a saved module's tensor by PEFT's key; a shared tied copy may come under the head's name
    const savedKey = new Map<string, string>();
    for (const t of saved) for (const r of t.replaces) savedKey.set(`${LORA_PREFIX}${r}`, t.param);
    for (const [name, t] of tensors) {
      const own = savedKey.get(name.replace(/\.modules_to_save(?:\.[^.]+)?(?=\.(?:weight|bias)$)/, ''));
      if (own) {
        if (!params.has(own) || name.includes('embed_tokens')) params.set(own, t.data);
        continue;
      }
      // DoRA's magnitude: PEFT writes lora_magnitude_vector; other tools add ".weight" (both load)
      const mag = /^(?:base_model\.model\.)?(.+)\.lora_magnitude_vector(?:\.weight)?$/.exec(name);
      if (mag) {
        if (!pc.use_dora) fail(`${wFile}: tensor "${name}" is DoRA's, but ${cfgFile} does not set use_dora: true`);
        params.set(loraParamName(mag[1]!, 'M'), t.data);
        continue;
      }
      const lb = /^(?:base_model\.model\.)?(.+)\.lora_B(?:\.[^.]+)?\.bias$/.exec(name);
      if (lb) {
        if (!pc.lora_bias) fail(`${wFile}: tensor "${name}" is a lora_B bias, but ${cfgFile} does not set lora_bias: true`);
        params.set(loraParamName(lb[1]!, 'bias'), t.data);
        continue;
      }
      const e = /^(?:base_model\.model\.)?(.+)\.lora_embedding_([AB])(?:\.[^.]+)?$/.exec(name);
      if (e) {
        params.set(loraParamName(e[1]!, e[2] as 'A' | 'B'), t.data);
        continue;
      }
      const m = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(name);
      if (!m) fail(`${wFile}: unexpected tensor "${name}" in a LoRA adapter${/\.(weight|bias)$/.test(name) ? ` (a whole module's tensor: is its module missing from ${ADAPTER_CONFIG}'s modules_to_save?)` : ''}`);
      params.set(loraParamName(m[1]!, m[2] as 'A' | 'B'), t.data);
    }
    const lc = config;
    const expected = new Set(loraModules(base.cfg, lc).flatMap((mod) => loraParts(lc, mod).map(([which]) => loraParamName(mod.name, which))));
    for (const t of saved) expected.add(t.param);
    for (const k of params.keys()) if (!expected.has(k)) fail(`${wFile}: tensor for ${k.replace(/^lora\./, '')} does not match a targeted module of this model`);
  }
  try {
    return restoreAdapter(config, base, params);
  } catch (e) {
    if (e instanceof PlumError) fail(`${dir}: ${e.message}`);
    throw e;
  }
}
