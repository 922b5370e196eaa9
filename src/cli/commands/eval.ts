import type { Command } from 'commander';
import { z } from 'zod';
import { loadAdapterForModel } from '../adapters.js';
import { loadModel } from '../../model/load.js';
import { DEFAULT_SHARED_DIR, SAFETY_SUITES } from '../../eval/safety/registry.js';
import { type SuiteResult, type Variant, runSuite, writeReport } from '../../eval/safety/run.js';
import { fail } from '../../util/errors.js';
import { int, parseOptions } from '../options.js';

const schema = z.object({
  model: z.string().min(1),
  adapter: z.string().optional(),
  tunedModel: z.string().optional(),
  suites: z.string().optional(),
  limit: int.pipe(z.number().int().min(0)).default(0),
  heldOut: z.boolean().default(true),
  seed: int.default(0),
  shared: z.string().default(DEFAULT_SHARED_DIR),
  out: z.string().default('safety-report'),
  quiet: z.boolean().default(false),
});

export function register(program: Command): void {
  const ev = program.commands.find((c) => c.name() === 'eval') ?? program.command('eval').description('evaluate models');
  ev.command('safety')
    .description('attack success, utility, refusal and over-refusal: base vs tuned, side by side (report.md + report.png)')
    .requiredOption('--model <dir>', 'base model folder')
    .option('--adapter <dir>', 'the tuned variant: the base with this adapter')
    .option('--tuned-model <dir>', 'the tuned variant: another model folder (a last-layers / full run)')
    .option('--suites <list>', `comma-separated suites (default: all): ${Object.keys(SAFETY_SUITES).join(', ')}`)
    .option('--limit <n>', 'cases per group (0 = all)', '0')
    .option('--no-held-out', 'use the training attack templates instead of the held-out ones')
    .option('--seed <n>', 'seed for case sampling', '0')
    .option('--shared <dir>', 'folder with the public datasets (advbench, xstest, bipia)')
    .option('--out <dir>', 'report folder', 'safety-report')
    .option('--quiet', 'no progress bars')
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'eval safety');
      const names = o.suites ? o.suites.split(',').map((s) => s.trim()) : Object.keys(SAFETY_SUITES);
      for (const n of names) if (!SAFETY_SUITES[n]) fail(`eval safety: --suites: unknown suite "${n}" (available: ${Object.keys(SAFETY_SUITES).join(', ')})`);
      if (o.adapter && o.tunedModel) fail('eval safety: give --adapter or --tuned-model, not both');
      const base = loadModel(o.model);
      const variants: Variant[] = [{ name: 'base', model: base, adapter: null }];
      if (o.adapter) variants.push({ name: 'tuned', model: base, adapter: loadAdapterForModel(o.adapter, base) });
      if (o.tunedModel) variants.push({ name: 'tuned', model: loadModel(o.tunedModel), adapter: null });
      const results: SuiteResult[] = [];
      for (const n of names) {
        const suite = SAFETY_SUITES[n]!(o.shared);
        for (const v of variants) results.push(await runSuite(suite, v, { seed: o.seed, limit: o.limit, heldOut: o.heldOut, quiet: o.quiet }));
      }
      const table = writeReport(o.out, results, variants.map((v) => v.name));
      process.stdout.write(table + '\n');
      process.stderr.write(`eval safety: wrote ${o.out}/report.md, report.json, answers.json, report.png\n`);
    });
}
