/**
 * `plum serve`: an OpenAI-compatible HTTP API (chat completions, completions, models) for a base
 * model and any number of adapters on it, with continuous batching and a prefix KV cache.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { loadModel } from '../../model/load.js';
import type { PeftAdapter } from '../../peft/types.js';
import { createApp } from '../../serve/app.js';
import { listen } from '../../serve/server.js';
import { fail } from '../../util/errors.js';
import { loadAdapterForModel } from '../adapters.js';
import { NO_HEAD_COPY_HELP, int, parseOptions } from '../options.js';

const adapterSpec = z
  .string()
  .regex(/^[\w.:\/-]+=.+$/, 'must be NAME=DIR (NAME: letters, digits and . _ : / -), e.g. --adapter support=runs/support-lora')
  .transform((s) => {
    const i = s.indexOf('=');
    return { name: s.slice(0, i), dir: s.slice(i + 1) };
  });

const schema = z.object({
  model: z.string().min(1),
  modelId: z.string().regex(/^[\w.:\/-]+$/, 'letters, digits and . _ : / - only').optional(),
  adapter: z.array(adapterSpec).default([]),
  port: int.pipe(z.number().int().min(0).max(65535)).default(8000),
  host: z.string().min(1).default('127.0.0.1'),
  apiKey: z.string().min(1).optional(),
  maxBatch: int.pipe(z.number().int().min(1).max(256)).default(8),
  prefixCacheTokens: int.pipe(z.number().int().min(0)).default(8192),
  headCopy: z.boolean().default(true),
});

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the model and its adapters over an OpenAI-compatible HTTP API')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--model-id <id>', 'id of the base model in requests (default: the folder name)')
    .option('--adapter <name=dir...>', 'serve a PEFT adapter folder as model NAME (repeatable)')
    .option('--port <n>', 'port (0 = any free port)', '8000')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1/*')
    .option('--max-batch <n>', 'rows decoded together per model', '8')
    .option('--prefix-cache-tokens <n>', 'prefix KV cache budget in token positions (0 = off)', '8192')
    .option('--no-head-copy', NO_HEAD_COPY_HELP)
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'serve');
      const model = loadModel(o.model, undefined, { headCopy: o.headCopy });
      const adapters: Record<string, PeftAdapter> = {};
      for (const { name, dir } of o.adapter) {
        if (name in adapters) fail(`serve: --adapter: the name "${name}" is given twice; give each adapter its own name`);
        adapters[name] = loadAdapterForModel(dir, model);
      }
      const serving = createApp({ model, modelId: o.modelId, adapters, apiKey: o.apiKey, maxBatch: o.maxBatch, prefixCacheTokens: o.prefixCacheTokens });
      const server = await listen(serving.app, { port: o.port, host: o.host });
      process.stderr.write(`plum serve: ${server.url}/v1 (models: ${serving.models.map((s) => s.id).join(', ')})\n`);
      const stop = (): void => void server.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
