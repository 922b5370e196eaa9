import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { loadModel } from '../../model/load.js';
import { appendCandidates, readCandidates } from '../../prefs/candidates.js';
import { readPrompts, sampleCandidates } from '../../prefs/sample.js';
import { fail } from '../../util/errors.js';
import { createProgress } from '../../util/progress.js';
import { loadAdapterForModel } from '../adapters.js';
import { int, num, parseOptions } from '../options.js';

const schema = z.object({
  model: z.string().min(1),
  adapter: z.string().optional(),
  prompts: z.string().min(1),
  n: int.pipe(z.number().int().min(1)),
  temperature: num.pipe(z.number().min(0)).default(1),
  topP: num.pipe(z.number().gt(0).max(1)).default(1),
  topK: int.pipe(z.number().int().min(0)).default(0),
  minP: num.pipe(z.number().min(0).max(1)).default(0),
  repetitionPenalty: num.pipe(z.number().gt(0)).default(1),
  seed: int.default(0),
  maxTokens: int.pipe(z.number().int().min(1)).default(128),
  chat: z.boolean().default(false),
  system: z.string().optional(),
  batchSize: int.pipe(z.number().int().min(1)).default(8),
  out: z.string().min(1),
});

export function register(program: Command): void {
  program
    .command('sample')
    .description('sample K candidate completions per prompt to vote on (appends to --out; reruns resume)')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--adapter <dir>', 'PEFT adapter folder to apply')
    .requiredOption('--prompts <file>', 'JSONL of {"prompt"} or {"messages"} (optional "id"), or .txt with one prompt per line')
    .requiredOption('--n <k>', 'candidates per prompt')
    .option('--temperature <t>', 'sampling temperature (0 = greedy: all K the same)', '1')
    .option('--top-p <p>', 'nucleus sampling mass', '1')
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)', '0')
    .option('--min-p <p>', 'keep tokens at least p x as likely as the most likely one (0 = off)', '0')
    .option('--repetition-penalty <x>', "HF's repetition penalty on tokens already in the text (1 = off)", '1')
    .option('--seed <s>', 'random seed (same seed, same candidates)', '0')
    .option('--max-tokens <n>', 'maximum new tokens per candidate', '128')
    .option('--chat', 'apply the model chat template to plain prompts')
    .option('--system <text>', 'system message for chats')
    .option('--batch-size <n>', 'rows (prompt x candidate) per generation batch', '8')
    .requiredOption('--out <file>', 'candidates JSONL (appended to)')
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'sample');
      const prompts = readPrompts(o.prompts);
      if (o.system !== undefined && !o.chat && prompts.some((p) => !p.messages))
        fail('sample: --system needs --chat (plain prompts are sent as text); add --chat or drop --system');
      const done = new Set(
        existsSync(o.out) ? readCandidates(o.out, { repair: true, onRepair: (msg) => process.stderr.write(`plum: ${msg}\n`) }).map((s) => s.promptId) : [],
      );
      const todo = prompts.filter((p) => !done.has(p.id));
      const skipped = prompts.length - todo.length;
      if (!todo.length) {
        process.stdout.write(`${o.out}: all ${prompts.length} prompts already sampled; nothing to do\n`);
        return;
      }
      if (o.temperature === 0 && o.n > 1) process.stderr.write('plum: sample: --temperature 0 is greedy, so the candidates of a prompt will all be the same\n');
      const m = loadModel(o.model);
      const adapter = o.adapter ? loadAdapterForModel(o.adapter, m) : null;
      const meta = {
        model: o.model,
        ...(o.adapter ? { adapter: o.adapter } : {}),
        temperature: o.temperature,
        topP: o.topP,
        topK: o.topK,
        // recorded only when used, so candidates files from before these options compare equal
        ...(o.minP !== 0 ? { minP: o.minP } : {}),
        ...(o.repetitionPenalty !== 1 ? { repetitionPenalty: o.repetitionPenalty } : {}),
        seed: o.seed,
        maxTokens: o.maxTokens,
      };
      const progress = createProgress({ total: todo.length * o.n, label: 'sample', unit: 'cand', rates: { tokens: 'tok' } });
      let sets = 0;
      const opts = { ...o, adapter, meta, onBatch: (rows: number, tokens: number) => progress.tick(rows, { tokens }) };
      for await (const set of sampleCandidates(m, todo, opts)) {
        appendCandidates(o.out, set);
        sets++;
      }
      progress.done();
      process.stdout.write(`${o.out}: wrote ${sets} prompts x ${o.n} candidates${skipped ? ` (${skipped} prompts already there, skipped)` : ''}\n`);
    });
}
