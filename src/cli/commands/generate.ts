import type { Command } from 'commander';
import { z } from 'zod';
import { loadGenerationDefaults, encodePrompt, loadModel } from '../../model/load.js';
import { generate } from '../../model/generate.js';
import { decodeContinuation } from '../../model/tokenizer.js';
import { loadAdapterForModel } from '../adapters.js';
import { NO_HEAD_COPY_HELP, int, num, parseOptions } from '../options.js';

const schema = z.object({
  model: z.string().min(1),
  prompt: z.string(),
  maxTokens: int.pipe(z.number().int().min(0)).default(256),
  temperature: num.pipe(z.number().min(0)).optional(),
  topP: num.pipe(z.number().gt(0).max(1)).optional(),
  topK: int.pipe(z.number().int().min(0)).optional(),
  minP: num.pipe(z.number().min(0).max(1)).optional(),
  repetitionPenalty: num.pipe(z.number().gt(0)).optional(),
  seed: int.default(0),
  stop: z.array(z.string()).default([]),
  chat: z.boolean().default(false),
  system: z.string().optional(),
  adapter: z.string().optional(),
  headCopy: z.boolean().default(true),
});

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate a completion and stream it to stdout')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--prompt <text>', 'prompt text ("" = start from BOS)')
    .option('--max-tokens <n>', 'maximum new tokens', '256')
    .option('--temperature <t>', '0 = greedy (default: generation_config.json, else 0)')
    .option('--top-p <p>', 'nucleus sampling mass')
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)')
    .option('--min-p <p>', 'keep tokens at least p x as likely as the most likely one (0 = off)')
    .option('--repetition-penalty <x>', "HF's repetition penalty on tokens already in the text (1 = off; default: generation_config.json)")
    .option('--seed <s>', 'random seed (same seed, same text)', '0')
    .option('--stop <text...>', 'stop strings')
    .option('--chat', 'apply the model chat template')
    .option('--system <text>', 'system message (with --chat)')
    .option('--adapter <dir>', 'PEFT adapter folder to apply')
    .option('--no-head-copy', NO_HEAD_COPY_HELP)
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'generate');
      const m = loadModel(o.model, undefined, { headCopy: o.headCopy });
      const adapter = o.adapter ? loadAdapterForModel(o.adapter, m) : null;
      const defaults = loadGenerationDefaults(o.model);
      const ids = encodePrompt(m.tokenizer, o.prompt, o.chat ? { system: o.system } : undefined);
      const stream = m.tokenizer.createDecodeStream({ skipSpecialTokens: true, context: ids });
      let emitted = '';
      const write = (s: string): void => {
        if (!s) return;
        emitted += s;
        process.stdout.write(s);
      };
      const held: string[] = [];
      const maxStop = Math.max(0, ...o.stop.map((s) => s.length));
      const res = await generate(m.lm, [ids], {
        temperature: o.temperature ?? defaults.temperature ?? 0,
        topP: o.topP ?? defaults.topP ?? 1,
        topK: o.topK ?? defaults.topK ?? 0,
        minP: o.minP ?? defaults.minP ?? 0,
        repetitionPenalty: o.repetitionPenalty ?? defaults.repetitionPenalty ?? 1,
        seed: o.seed,
        maxTokens: o.maxTokens,
        eosIds: m.eosIds,
        stop: o.stop,
        adapter,
        decode: (t) => decodeContinuation(m.tokenizer, ids, t),
        onToken: (_b, id) => {
          // With stop strings, hold back enough text that a stop string is never printed.
          held.push(stream.push(id));
          if (!maxStop) write(held.splice(0).join(''));
        },
      });
      if (maxStop) {
        const text = res[0]!.text ?? '';
        write(text.slice(emitted.length));
      } else {
        write(held.join('') + stream.flush());
      }
      if (process.stdout.isTTY) process.stdout.write('\n');
    });
}
