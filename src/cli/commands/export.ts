/**
 * `plum export gguf`: a Hugging Face model folder (e.g. a merged LoRA run) as one llama.cpp
 * GGUF file, for llama.cpp, Ollama or LM Studio.
 *
 * @example
 * plum export gguf --model runs/support/merged --out support-f16.gguf --type f16
 * plum export gguf --model BASE --adapter runs/support --out support-lora.gguf   # llama.cpp --lora
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { exportGguf } from '../../model/gguf-export.js';
import { loadModel } from '../../model/load.js';
import { baseModelOf } from '../../peft/base.js';
import { exportLoraGguf } from '../../peft/gguf.js';
import { fail } from '../../util/errors.js';
import { loadAdapterForModel } from '../adapters.js';
import { parseOptions } from '../options.js';

const schema = z.object({
  model: z.string().min(1),
  adapter: z.string().min(1).optional(),
  out: z.string().regex(/\.gguf$/i, 'must name a .gguf file, e.g. model-f16.gguf'),
  type: z.enum(['f32', 'f16', 'bf16', 'q8_0']).default('f16'),
  force: z.boolean().default(false),
});

export function register(program: Command): void {
  const ex = program.command('export').description('write a model folder in another format (GGUF for llama.cpp and Ollama)');
  ex.command('gguf')
    .description('model folder -> one llama.cpp GGUF file (llama, qwen2, qwen3; f32, f16, bf16 or q8_0 weights)')
    .requiredOption('--model <dir>', 'Hugging Face model folder (merge a LoRA run first: plum train sft ... --merge)')
    .option('--adapter <dir>', 'write this LoRA adapter (on --model) as a llama.cpp GGUF LoRA instead of the model')
    .requiredOption('--out <file>', 'GGUF file to write')
    .option('--type <t>', 'matrix type: f32 | f16 | bf16 | q8_0 (norms stay f32)', 'f16')
    .option('--force', 'overwrite an existing --out file')
    .action((raw) => {
      const o = parseOptions(schema, raw, 'export gguf');
      if (existsSync(o.out) && !o.force) fail(`${o.out}: already exists; choose another --out or pass --force to overwrite`);
      if (o.adapter) {
        if (o.type === 'q8_0') fail('export gguf: --type q8_0 is for models; write an adapter as f32, f16 or bf16');
        const m = loadModel(o.model);
        const r = exportLoraGguf(loadAdapterForModel(o.adapter, m), baseModelOf(m), o.out, o.type);
        process.stdout.write(`wrote ${o.out}: LoRA for ${o.model}, ${r.modules} modules, ${r.tensors} tensors (${o.type}); llama.cpp: --model <base>.gguf --lora ${o.out}\n`);
        return;
      }
      const r = exportGguf({ model: o.model, out: o.out, type: o.type });
      process.stdout.write(`wrote ${o.out}: ${r.arch}, ${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(1)} MB of weights (${o.type})\n`);
    });
}
