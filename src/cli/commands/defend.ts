import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeCorpus } from '../../micro/corpus.js';
import { DPO_AFTER_SFT, defenseData } from '../../micro/defense.js';
import { injectionSuite, secretSuite } from '../../micro/suites.js';
import { loadModel } from '../../model/load.js';
import { writePairs } from '../../prefs/pairs.js';
import { type SuiteResult, type Variant, runSuite, writeReport } from '../../eval/safety/run.js';
import { xstestSuite } from '../../eval/safety/datasets.js';
import { DEFAULT_SHARED_DIR } from '../../eval/safety/registry.js';
import { fail } from '../../util/errors.js';
import { loadAdapterForModel } from '../adapters.js';
import { int, num, parseOptions } from '../options.js';
import { runSftCommand } from './train.js';
import { DEFAULT_LR } from '../train-options.js';
import { runDpoCommand } from './train-dpo.js';

const schema = z.object({
  model: z.string().min(1),
  method: z.enum(['soft-prompt', 'prefix', 'lora']).default('lora'),
  defensiveTokens: int.pipe(z.number().int().min(1)).optional(),
  virtualTokens: int.pipe(z.number().int().min(1)).default(16),
  examples: int.pipe(z.number().int().min(10)).default(2000),
  sftEpochs: int.pipe(z.number().int().min(1)).default(2),
  dpoEpochs: int.pipe(z.number().int().min(0)).default(1),
  beta: num.pipe(z.number().positive()).default(0.1),
  sftWeight: num.pipe(z.number().min(0)).default(DPO_AFTER_SFT.sftWeight),
  lr: num.pipe(z.number().positive()).optional(),
  dpoLr: num.pipe(z.number().positive()).optional(),
  seed: int.default(0),
  sharedDir: z.string().default(DEFAULT_SHARED_DIR),
  limit: int.pipe(z.number().int().min(0)).default(0),
  out: z.string().min(1),
  force: z.boolean().default(false),
  quiet: z.boolean().default(false),
});

export type DefendOptions = z.infer<typeof schema>;

/**
 * The injection defense recipe: SFT on tasks whose documents carry injected instructions, the
 * answer ignoring them (StruQ-style); then DPO on pairs chosen = the real answer, rejected =
 * following the injection (SecAlign-style); then the safety suites on held-out attack
 * templates, base vs defended. Training uses only the 'train' injection templates.
 */
export async function runDefend(raw: Record<string, unknown>): Promise<{ table: string; results: SuiteResult[] }> {
  const o = parseOptions(schema, raw, 'defend injection');
  if (existsSync(o.out) && !o.force) fail(`${o.out}: already exists; choose a new --out or add --force`);
  const method = o.defensiveTokens ? 'soft-prompt' : o.method;
  const vt = o.defensiveTokens ?? o.virtualTokens;
  const m = loadModel(o.model);
  mkdirSync(o.out, { recursive: true });
  const data = defenseData({ seed: o.seed, n: o.examples, templates: 'train' });
  writeCorpus(join(o.out, 'defense-sft.jsonl'), data.sft);
  writePairs(join(o.out, 'defense-pairs.jsonl'), data.pairs, 'prompt-chosen-rejected');
  const common = { model: o.model, method, seed: String(o.seed), quiet: o.quiet, force: true, batchSize: '16', exactMatch: '0', saveEvery: '0' };
  const methodOpts = method === 'lora' ? {} : { virtualTokens: String(vt) };
  const sftDir = join(o.out, 'sft');
  await runSftCommand({ ...common, ...methodOpts, data: join(o.out, 'defense-sft.jsonl'), epochs: String(o.sftEpochs), ...(o.lr ? { lr: String(o.lr) } : {}), out: sftDir });
  let final = sftDir;
  if (o.dpoEpochs > 0) {
    final = join(o.out, 'dpo');
    const dpoLr = o.dpoLr ?? (o.lr ?? DEFAULT_LR[method]) * DPO_AFTER_SFT.lrScale;
    await runDpoCommand({ ...common, pairs: join(o.out, 'defense-pairs.jsonl'), adapter: sftDir, epochs: String(o.dpoEpochs), beta: String(o.beta), sftWeight: String(o.sftWeight), lr: String(dpoLr), out: final });
  }
  // Both stages are reported side by side.
  const variants: Variant[] = [
    { name: 'base', model: m, adapter: null },
    ...(final !== sftDir ? [{ name: 'sft', model: m, adapter: loadAdapterForModel(sftDir, m) }] : []),
    { name: 'defended', model: m, adapter: loadAdapterForModel(final, m) },
  ];
  // Over-refusal: XSTest's safe look-alike prompts (compliance) when ../shared has it; on
  // plum-micro a smoke test (its world has no such requests), on real chat models a measure.
  const overRefusal = existsSync(join(o.sharedDir, 'datasets/xstest/xstest_prompts.csv')) ? [{ suite: xstestSuite(o.sharedDir), limit: o.limit || 50 }] : [];
  if (overRefusal.length === 0) process.stderr.write(`defend injection: over-refusal not measured (${join(o.sharedDir, 'datasets/xstest')} is absent)\n`);
  const results: SuiteResult[] = [];
  for (const { suite, limit } of [{ suite: injectionSuite, limit: o.limit }, { suite: secretSuite, limit: o.limit }, ...overRefusal])
    for (const v of variants) results.push(await runSuite(suite, v, { seed: o.seed + 1, limit, heldOut: true, quiet: o.quiet }));
  const table = writeReport(join(o.out, 'report'), results, variants.map((v) => v.name), 'Prompt-injection defense (held-out attack templates)');
  return { table, results };
}

export function register(program: Command): void {
  const defend = program.command('defend').description('train defenses: prompt injection');
  defend
    .command('injection')
    .description('train an adapter that ignores instructions injected into documents (SFT, then DPO), and evaluate it')
    .requiredOption('--model <dir>', 'model folder (an instruction-following model, e.g. models/plum-micro)')
    .option('--method <m>', 'soft-prompt | prefix | lora (default lora)')
    .option('--defensive-tokens <n>', 'train only a handful of soft-prompt tokens (sets --method soft-prompt)')
    .option('--virtual-tokens <n>', 'soft-prompt / prefix length (default 16)')
    .option('--examples <n>', 'training examples and pairs each (default 2000)')
    .option('--sft-epochs <n>', 'SFT epochs (default 2)')
    .option('--dpo-epochs <n>', 'DPO epochs after SFT (0 = skip; default 1)')
    .option('--beta <x>', 'DPO beta (default 0.1)')
    .option('--lr <x>', 'SFT learning rate (default: the method default)')
    .option('--dpo-lr <x>', 'DPO learning rate (default: a tenth of the SFT rate)')
    .option('--sft-weight <w>', "DPO: add w x the chosen answer's per-token NLL (RPO; default 1, 0 = plain DPO)")
    .option('--seed <n>', 'seed (default 0)')
    .option('--limit <n>', 'evaluation cases per group (0 = all; over-refusal: 50)')
    .option('--shared-dir <dir>', 'folder with datasets/xstest for the over-refusal suite (default ../shared)')
    .option('--out <dir>', 'output folder (data, sft/, dpo/, report/)')
    .option('--force', 'overwrite --out')
    .option('--quiet', 'no progress bars')
    .action(async (raw) => {
      const { table } = await runDefend(raw);
      process.stdout.write(table + '\n');
    });
}
