/**
 * Options of `plum train sft|dpo`, from flags and/or a JSON/YAML config file (flags win).
 * One zod schema validates both; unknown config keys and options that do not apply to the
 * chosen method are errors that name them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { OVERLONG_POLICIES } from '../data/dataset.js';
import { SFT_FORMATS } from '../data/records.js';
import { DEFAULT_RECOMPUTE, RECOMPUTE } from '../model/decoder.js';
import { type MethodConfig, MethodConfigSchema } from '../peft/types.js';
import { fail } from '../util/errors.js';

const coerceNum = z.union([z.number(), z.string().trim().min(1).transform(Number)]).pipe(z.number().finite());
const coerceInt = coerceNum.pipe(z.number().int());
const coerceBool = z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')]);
const list = z.union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))]);
/** Module names, or one regular expression / "all-linear" kept as a string (PEFT's two forms of target_modules). */
const modules = z.union([
  z.array(z.string()),
  z.string().transform((s): string | string[] => (/^all-linear$/i.test(s.trim()) || /[*+?()[\]{}|^$\\]/.test(s) ? s.trim() : s.split(',').map((x) => x.trim()).filter(Boolean))),
]);
/** name=value pairs ("v_proj=4,q_proj=16") or an object of them (config file). */
const pattern = z.preprocess((v, ctx) => {
  if (typeof v !== 'string') return v;
  const out: Record<string, number> = {};
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(.+)=([^=]+)$/.exec(part);
    if (!m || !Number.isFinite(Number(m[2]))) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not name=number (e.g. v_proj=4,q_proj=16)` });
      return z.NEVER;
    }
    out[m[1]!.trim()] = Number(m[2]);
  }
  return out;
}, z.record(z.string(), z.number()));

export const METHODS = ['soft-prompt', 'prefix', 'lora', 'last-layers', 'full'] as const;

/** Default learning rates per method (adapter tensors tolerate much larger steps than weights). */
export const DEFAULT_LR: Record<(typeof METHODS)[number], number> = {
  'soft-prompt': 3e-2,
  prefix: 1e-2,
  lora: 2e-3,
  'last-layers': 3e-4,
  full: 1e-4,
};

export const TrainOptionsSchema = z
  .object({
    config: z.string().optional(),
    model: z.string().min(1),
    out: z.string().min(1),
    method: z.enum(METHODS),
    // method options
    virtualTokens: coerceInt.optional(),
    init: z.string().optional(),
    initText: z.string().optional(),
    r: coerceInt.optional(),
    alpha: coerceNum.optional(),
    dropout: coerceNum.optional(),
    targetModules: modules.optional(),
    excludeModules: modules.optional(),
    layersToTransform: list.pipe(z.array(z.coerce.number<string>().int().min(0))).optional(),
    rslora: coerceBool.optional(),
    useDora: coerceBool.optional(),
    loraBias: coerceBool.optional(),
    modulesToSave: list.optional(),
    ensureWeightTying: coerceBool.optional(),
    rankPattern: pattern.optional(),
    alphaPattern: pattern.optional(),
    layers: coerceInt.optional(),
    // data
    data: z.string().min(1).optional(),
    format: z.enum(SFT_FORMATS).optional(),
    maxLength: coerceInt.pipe(z.number().int().min(2)).optional(),
    overlong: z.enum(OVERLONG_POLICIES).default('error'),
    heldOutFraction: coerceNum.pipe(z.number().gt(0).lt(1)).optional(),
    heldOutFile: z.string().min(1).optional(),
    eos: z.string().min(1).optional(),
    exactMatch: coerceInt.pipe(z.number().int().min(0)).default(64),
    lengthBuckets: coerceBool.default(true),
    pack: coerceBool.default(false),
    packLength: coerceInt.pipe(z.number().int().min(2)).optional(),
    // optimisation
    epochs: coerceInt.pipe(z.number().int().min(1)).default(3),
    maxSteps: coerceInt.pipe(z.number().int().min(1)).optional(),
    batchSize: coerceInt.pipe(z.number().int().min(1)).default(4),
    gradAccum: coerceInt.pipe(z.number().int().min(1)).default(1),
    lr: coerceNum.pipe(z.number().positive()).optional(),
    warmup: coerceNum.pipe(z.number().min(0)).default(0.05),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    weightDecay: coerceNum.pipe(z.number().min(0)).default(0),
    maxGradNorm: coerceNum.pipe(z.number().min(0)).default(1),
    seed: coerceInt.default(0),
    evalEvery: coerceInt.pipe(z.number().int().min(0)).default(0),
    saveEvery: coerceInt.pipe(z.number().int().min(0)).default(50),
    patience: coerceInt.pipe(z.number().int().min(0)).default(0),
    resume: coerceBool.default(false),
    force: coerceBool.default(false),
    quiet: coerceBool.default(false),
    interruptAfter: coerceInt.optional(),
    merge: coerceBool.default(false),
    recompute: z.enum(RECOMPUTE).default(DEFAULT_RECOMPUTE),
  })
  .strict();
export type TrainOptions = z.infer<typeof TrainOptionsSchema>;

const methodOptions: Record<(typeof METHODS)[number], string[]> = {
  'soft-prompt': ['virtualTokens', 'init', 'initText'],
  prefix: ['virtualTokens', 'init', 'initText'],
  lora: ['r', 'alpha', 'dropout', 'targetModules', 'excludeModules', 'layersToTransform', 'rslora', 'useDora', 'loraBias', 'modulesToSave', 'ensureWeightTying', 'rankPattern', 'alphaPattern', 'merge'],
  'last-layers': ['layers'],
  full: [],
};
const ALL_METHOD_OPTIONS = [...new Set(Object.values(methodOptions).flat())];
const flag = (k: string): string => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;

/** Merge a config file (JSON or YAML) under the given flags, validate, and check method options. */
export function resolveTrainOptions(flags: Record<string, unknown>, command: string, extra?: z.ZodRawShape): TrainOptions & Record<string, unknown> {
  let fromFile: Record<string, unknown> = {};
  const cfgPath = flags.config as string | undefined;
  if (cfgPath) {
    if (!existsSync(cfgPath)) fail(`${cfgPath}: config file not found`);
    const text = readFileSync(cfgPath, 'utf8');
    try {
      const parsed = cfgPath.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) fail(`${cfgPath}: must hold an object of options`);
      fromFile = parsed as Record<string, unknown>;
    } catch (e) {
      if ((e as Error).name === 'PlumError') throw e;
      fail(`${cfgPath}: cannot parse (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  const schema = extra ? TrainOptionsSchema.extend(extra).strict() : TrainOptionsSchema;
  const r = schema.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const where = cfgPath && i.path.length && !(String(i.path[0]) in flags && flags[String(i.path[0])] !== undefined) ? `${cfgPath}: ` : '';
    if (i.code === 'unrecognized_keys') fail(`${command}: ${where}unknown option ${(i as { keys: string[] }).keys.map((k) => `"${k}"`).join(', ')}`);
    const key = String(i.path[0] ?? '');
    fail(`${command}: ${where}${key ? flag(key) : 'options'}: ${i.message}`);
  }
  const o = r.data as TrainOptions & Record<string, unknown>;
  for (const k of ALL_METHOD_OPTIONS) {
    if (o[k as keyof TrainOptions] !== undefined && o[k as keyof TrainOptions] !== false && !methodOptions[o.method].includes(k)) {
      const owners = METHODS.filter((m) => methodOptions[m].includes(k));
      fail(`${command}: ${flag(k)} does not apply to --method ${o.method} (it is an option of ${owners.join(', ')})`);
    }
  }
  return o;
}

/** The typed method config from resolved options (validated by the method's own schema). */
export function methodConfigOf(o: TrainOptions, command: string): MethodConfig {
  const raw: Record<string, unknown> = { kind: o.method };
  if (o.method === 'soft-prompt' || o.method === 'prefix') Object.assign(raw, { virtualTokens: o.virtualTokens, init: o.init, initText: o.initText });
  if (o.method === 'lora') {
    Object.assign(raw, { r: o.r, alpha: o.alpha, dropout: o.dropout, targetModules: o.targetModules, excludeModules: o.excludeModules, layers: o.layersToTransform, rslora: o.rslora, dora: o.useDora, loraBias: o.loraBias, modulesToSave: o.modulesToSave, ensureWeightTying: o.ensureWeightTying, rankPattern: o.rankPattern, alphaPattern: o.alphaPattern });
  }
  if (o.method === 'last-layers') Object.assign(raw, { layers: o.layers });
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  const r = MethodConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const key = i.path[0] === 'layers' && o.method === 'lora' ? 'layersToTransform' : String(i.path[0] ?? 'method');
    fail(`${command}: ${flag(key)}: ${i.message}`);
  }
  if ((r.data.kind === 'soft-prompt' || r.data.kind === 'prefix') && r.data.init === 'text' && !r.data.initText) fail(`${command}: --init text needs --init-text "..."`);
  return r.data;
}

export { OVERLONG_POLICIES };
