import type { Command } from 'commander';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { runDemo } from '../../micro/demo.js';
import { loadModel } from '../../model/load.js';
import { REPO_ROOT } from '../../testing/shared.js';
import { fail } from '../../util/errors.js';
import { int, parseOptions } from '../options.js';

export const PLUM_MICRO = join(REPO_ROOT, 'models', 'plum-micro');

const schema = z.object({
  model: z.string().default(PLUM_MICRO),
  out: z.string().default('plum-demo'),
  seed: int.default(0),
  method: z.enum(['lora', 'soft-prompt']).default('lora'),
  tokens: int.pipe(z.number().int().min(1)).default(8),
  quick: z.boolean().default(false),
  quiet: z.boolean().default(false),
});

export function register(program: Command): void {
  program
    .command('demo')
    .description('the whole story on plum-micro: measure injection attacks, train a defense (LoRA or a soft prompt; SFT, then DPO from rule votes), measure again')
    .option('--model <dir>', 'an instruction-following model (default: the bundled plum-micro)')
    .option('--out <dir>', 'where to write data, adapters and the report (default plum-demo; replaced)')
    .option('--method <m>', 'lora | soft-prompt (default lora)')
    .option('--tokens <n>', 'with --method soft-prompt: defensive tokens (default 8)')
    .option('--seed <n>', 'seed (default 0)')
    .option('--quick', 'a smaller run (for tests)')
    .option('--quiet', 'no progress bars')
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'demo');
      if (!existsSync(join(o.model, 'config.json'))) fail(`${o.model}: no model folder (plum-micro is built by npm run train:micro)`);
      const m = loadModel(o.model);
      rmSync(o.out, { recursive: true, force: true });
      const t0 = performance.now();
      const { table } = await runDemo(m, {
        out: o.out, seed: o.seed, method: o.method, tokens: o.tokens, quiet: o.quiet,
        sftExamples: o.quick ? 200 : 800, votePrompts: o.quick ? 40 : 200, evalCases: o.quick ? 24 : 80,
        log: (l) => process.stderr.write(`demo: ${l}\n`),
      });
      process.stdout.write(`\n${table}\n\n`);
      process.stderr.write(`demo: done in ${((performance.now() - t0) / 1000).toFixed(0)} s; report and chart in ${join(o.out, 'report')}/ (report.md, report.png)\n`);
    });
}
