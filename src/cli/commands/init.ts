/**
 * `plum init`: write a randomly initialised model folder (config, weights, tokenizer) for
 * tests, benchmarks and trying the pipeline without a download.
 *
 * @example
 * plum init --arch qwen3 --preset tiny --seed 1 --out models/tiny-qwen3
 * plum init --preset micro --tokenizer tok/ --out models/micro
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { fail } from '../../util/errors.js';
import { initModel } from '../../model/init.js';
import { ARCH_NAMES, PRESET_NAMES } from '../../model/presets.js';

const oneOf = (values: readonly string[]) => (iss: { input?: unknown }): string =>
  iss.input === undefined ? `is required (one of ${values.join(', ')})` : `"${String(iss.input)}" is not one of ${values.join(', ')}`;

const initOptions = z.object({
  arch: z.enum(ARCH_NAMES, { error: oneOf(ARCH_NAMES) }).optional(),
  preset: z.enum(PRESET_NAMES, { error: oneOf(PRESET_NAMES) }).default('tiny'),
  seed: z
    .string()
    .default('0')
    .refine((s) => /^\d+$/.test(s) && Number(s) <= 0xffffffff, { error: (iss) => `"${String(iss.input)}" is not an integer from 0 to 4294967295` })
    .transform(Number),
  out: z.string({ error: 'is required (the folder to write the model to)' }).min(1, 'needs a folder path'),
  force: z.boolean().default(false),
  tokenizer: z.string().min(1, 'needs a folder path').optional(),
});

function parseInitOptions(raw: unknown): z.infer<typeof initOptions> {
  const r = initOptions.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    fail(`init: option --${issue.path.join('.')}: ${issue.message}`);
  }
  return r.data;
}

function runInit(raw: unknown): void {
  const opts = parseInitOptions(raw);
  const { config, numParams, files } = initModel(opts);
  process.stdout.write(
    `wrote ${opts.out}: ${files.join(', ')}\n` +
      `  ${config.family} (${opts.preset}): hidden ${config.hiddenSize}, ${config.numLayers} layers, ${config.numHeads} heads (${config.numKvHeads} kv), ` +
      `vocab ${config.vocabSize}; ${numParams} random parameters, seed ${opts.seed}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('init')
    .description('write a randomly initialised model folder (config.json, model.safetensors, byte-level or --tokenizer tokenizer)')
    .option('--arch <arch>', `family traits: ${ARCH_NAMES.join(' | ')} (default: the preset's own)`)
    .option('--preset <name>', `sizes: ${PRESET_NAMES.join(' | ')} (default: tiny)`)
    .option('--seed <n>', 'PRNG seed, 0 to 4294967295; the same seed writes identical files (default: 0)')
    .option('--out <dir>', 'folder to write the model to')
    .option('--force', 'overwrite the model files in an existing --out folder')
    .option('--tokenizer <dir>', "copy this folder's tokenizer.json + tokenizer_config.json (e.g. from `plum tokenizer fit`); vocab_size = its size rounded up to 64")
    .action((opts: unknown) => runInit(opts));
}
