/**
 * Shared set-up of a training run: output-folder rules (never clobber a finished run unless
 * asked; nothing is written before the data validated), the adapter (fresh or resumed),
 * and the final save.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../model/load.js';
import { baseModelOf } from '../peft/base.js';
import { saveAdapter } from '../peft/io.js';
import { mergeLora, mergedConfig } from '../peft/lora.js';
import { createAdapter } from '../peft/registry.js';
import type { MethodConfig, PeftAdapter } from '../peft/types.js';
import { saveModelFolder } from '../model/weights.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { fail } from '../util/errors.js';
import { hasCheckpoint } from './checkpoint.js';

/** Refuse to write into a folder that holds other files, unless resuming or forced. */
export function checkOutDir(out: string, resume: boolean, force: boolean): void {
  if (resume) {
    if (!hasCheckpoint(out)) fail(`${out}: nothing to resume (no checkpoint); run without --resume`);
    return;
  }
  if (existsSync(out) && readdirSync(out).length > 0 && !force) {
    fail(`${out}: folder is not empty; choose a new --out, add --resume to continue its run, or --force to overwrite`);
  }
}

export function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
}

export async function makeAdapter(m: LoadedModel, config: MethodConfig, seed: number): Promise<PeftAdapter> {
  return createAdapter(config, baseModelOf(m), seed);
}

/** Save the trained result (adapter or model folder) and, for LoRA with merge, a merged model. */
export function saveResult(m: LoadedModel, adapter: PeftAdapter, out: string, opts: { merge: boolean; summary: Record<string, unknown> }): void {
  mkdirSync(out, { recursive: true });
  const base = baseModelOf(m);
  saveAdapter(out, adapter, base, m.dir);
  if (opts.merge && adapter.config.kind === 'lora') {
    const dir = join(out, 'merged');
    mkdirSync(dir, { recursive: true });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      if (existsSync(join(m.dir, f))) writeJsonAtomic(join(dir, f), JSON.parse(readFileSync(join(m.dir, f), 'utf8')));
    }
    const merged = mergeLora(base, adapter);
    saveModelFolder(dir, mergedConfig(m.cfg.raw, m.cfg, merged), merged);
  }
  writeJsonAtomic(join(out, 'summary.json'), opts.summary);
}
