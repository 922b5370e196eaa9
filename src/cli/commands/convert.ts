/**
 * `plum convert <format>`: turn a model from another format into a Hugging Face model folder
 * that every other command reads.
 *
 * @example
 * plum convert llama2c --model stories260K.bin --tokenizer tok512.bin --out models/stories260K
 * plum convert gguf --model qwen2.5-0.5b-instruct-q8_0.gguf --out models/qwen2.5-0.5b
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { fail } from '../../util/errors.js';
import { createProgress } from '../../util/progress.js';
import { convertLlama2c, LLAMA2C_OUTPUT_FILES } from '../../model/llama2c.js';
import { convertGguf, GGUF_OUTPUT_FILES } from '../../model/gguf-convert.js';
import { loadModel } from '../../model/load.js';
import { baseModelOf } from '../../peft/base.js';
import { importLoraGguf } from '../../peft/gguf.js';
import { saveAdapter } from '../../peft/io.js';

const llama2cOptions = z.object({
  model: z.string().min(1, 'needs a file path'),
  tokenizer: z.string().min(1, 'needs a file path'),
  out: z.string().min(1, 'needs a folder path'),
  force: z.boolean().default(false),
});

function parseOptions<T>(command: string, schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    fail(`${command}: option --${issue.path.join('.')}: ${issue.message}`);
  }
  return r.data;
}

function runLlama2c(raw: unknown): void {
  const opts = parseOptions('convert llama2c', llama2cOptions, raw);
  const existing = LLAMA2C_OUTPUT_FILES.filter((f) => existsSync(join(opts.out, f)));
  if (existing.length > 0 && !opts.force) {
    fail(`${opts.out}: already holds a model (${existing.join(', ')}); choose another --out or pass --force to overwrite`);
  }
  const { header: h, tensors, parameters } = convertLlama2c(opts);
  process.stdout.write(
    `wrote ${opts.out}: ${LLAMA2C_OUTPUT_FILES.join(', ')}\n` +
      `  llama: dim ${h.dim}, hidden ${h.hiddenDim}, ${h.nLayers} layers, ${h.nHeads} heads (${h.nKvHeads} kv), ` +
      `vocab ${h.vocabSize}, seq_len ${h.seqLen}, ${h.sharedWeights ? 'tied' : 'untied'} embeddings; ${tensors} tensors, ${parameters} parameters\n`,
  );
}

const ggufOptions = z.object({
  model: z.string().min(1, 'needs a file path'),
  out: z.string().min(1, 'needs a folder path'),
  dtype: z.enum(['f32', 'f16', 'bf16']).default('f32'),
  force: z.boolean().default(false),
});

function runGguf(raw: unknown): void {
  const opts = parseOptions('convert gguf', ggufOptions, raw);
  const existing = GGUF_OUTPUT_FILES.filter((f) => existsSync(join(opts.out, f)));
  if (existing.length > 0 && !opts.force) {
    fail(`${opts.out}: already holds a model (${existing.join(', ')}); choose another --out or pass --force to overwrite`);
  }
  const { arch, config: c, tensors, parameters } = convertGguf({
    model: opts.model,
    out: opts.out,
    dtype: opts.dtype.toUpperCase() as 'F32' | 'F16' | 'BF16',
    progress: (total) => createProgress({ total, label: 'convert gguf', unit: 'tensor', rates: { MB: 'MB' } }),
  });
  process.stdout.write(
    `wrote ${opts.out}: ${GGUF_OUTPUT_FILES.join(', ')}\n` +
      `  ${arch}: ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads (${c.num_key_value_heads} kv), ` +
      `vocab ${c.vocab_size}, ${c.tie_word_embeddings ? 'tied' : 'untied'} embeddings; ${tensors} tensors, ${parameters} parameters (${opts.dtype})\n`,
  );
}

const ggufLoraOptions = z.object({
  model: z.string().min(1, 'needs a folder path'),
  lora: z.string().min(1, 'needs a file path'),
  out: z.string().min(1, 'needs a folder path'),
  force: z.boolean().default(false),
});

function runGgufLora(raw: unknown): void {
  const opts = parseOptions('convert gguf-lora', ggufLoraOptions, raw);
  if (existsSync(join(opts.out, 'adapter_config.json')) && !opts.force) fail(`${opts.out}: already holds an adapter; choose another --out or pass --force to overwrite`);
  const m = loadModel(opts.model);
  const base = baseModelOf(m);
  const adapter = importLoraGguf(opts.lora, base);
  saveAdapter(opts.out, adapter, base, opts.model);
  const c = adapter.config as { r: number; alpha: number; targetModules: string[] };
  process.stdout.write(`wrote ${opts.out}: PEFT LoRA, r ${c.r}, alpha ${c.alpha}, ${c.targetModules.length} modules\n`);
}

export function register(program: Command): void {
  const convert = program.command('convert').description('convert a model from another format into a Hugging Face model folder');
  convert
    .command('llama2c')
    .description("llama2.c legacy checkpoint + tokenizer .bin -> config.json, model.safetensors, tokenizer.json (Llama, rotate-half RoPE)")
    .requiredOption('--model <file>', 'llama2.c legacy (version 0) checkpoint, e.g. stories260K.bin')
    .requiredOption('--tokenizer <file>', 'llama2.c tokenizer, e.g. tok512.bin')
    .requiredOption('--out <dir>', 'folder to write the Hugging Face model to')
    .option('--force', 'overwrite the model files in an existing --out folder')
    .action((opts: unknown) => runLlama2c(opts));
  convert
    .command('gguf')
    .description('llama.cpp GGUF (llama, qwen2, qwen3; F32/F16/BF16, Q8_0, Q4/Q5 and Q4_K/Q5_K/Q6_K) -> config.json, model.safetensors, tokenizer.json')
    .requiredOption('--model <file>', 'GGUF model file')
    .requiredOption('--out <dir>', 'folder to write the Hugging Face model to')
    .option('--dtype <t>', 'weights on disk: f32 | f16 | bf16 (quantized tensors are dequantized; default f32)', 'f32')
    .option('--force', 'overwrite the model files in an existing --out folder')
    .action((opts: unknown) => runGguf(opts));
  convert
    .command('gguf-lora')
    .description("llama.cpp GGUF LoRA adapter -> PEFT adapter folder for the base model (what --adapter takes)")
    .requiredOption('--model <dir>', 'the base model folder the LoRA was made for')
    .requiredOption('--lora <file>', 'GGUF LoRA adapter file')
    .requiredOption('--out <dir>', 'adapter folder to write')
    .option('--force', 'overwrite an adapter in an existing --out folder')
    .action((opts: unknown) => runGgufLora(opts));
}
