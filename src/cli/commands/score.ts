import type { Command } from 'commander';
import { z } from 'zod';
import { loadModel } from '../../model/load.js';
import { fail } from '../../util/errors.js';
import { loadAdapterForModel } from '../adapters.js';
import { idList, parseOptions } from '../options.js';

const schema = z
  .object({
    model: z.string().min(1),
    text: z.string().optional(),
    ids: idList.optional(),
    json: z.boolean().default(false),
    adapter: z.string().optional(),
  })
  .refine((o) => (o.text === undefined) !== (o.ids === undefined), { message: 'give exactly one of --text or --ids', path: ['text'] });

export function register(program: Command): void {
  program
    .command('score')
    .description('log-probability of each token given the ones before it')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--text <text>', 'text to score (tokenized with BOS as the model says)')
    .option('--ids <ids>', 'comma-separated token ids, e.g. 1,403,407')
    .option('--json', 'print JSON')
    .option('--adapter <dir>', 'PEFT adapter folder to apply')
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'score');
      const m = loadModel(o.model);
      const adapter = o.adapter ? loadAdapterForModel(o.adapter, m) : null;
      const tokens = o.ids ?? m.tokenizer.encode(o.text!, { addSpecialTokens: true });
      if (tokens.length < 2) fail('score: need at least two tokens (the first one has no log-probability)');
      const bad = tokens.find((t) => t >= m.cfg.vocabSize);
      if (bad !== undefined) fail(`score: --ids: token id ${bad} is outside the vocabulary (size ${m.cfg.vocabSize})`);
      const [lp] = await m.lm.score([tokens], adapter);
      const sum = lp!.reduce((p, x) => p + x, 0);
      const result = { tokens, logprobs: lp!, sum, mean_nll: -sum / lp!.length };
      if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
      else {
        for (let i = 1; i < tokens.length; i++) {
          const piece = m.tokenizer.idToToken(tokens[i]!) ?? String(tokens[i]);
          process.stdout.write(`${JSON.stringify(piece).padEnd(16)} ${lp![i - 1]!.toFixed(6)}\n`);
        }
        process.stdout.write(`sum ${sum.toFixed(6)}  mean_nll ${result.mean_nll.toFixed(6)}\n`);
      }
    });
}
