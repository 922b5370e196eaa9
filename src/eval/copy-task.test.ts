/**
 * Supervised fine-tuning on a real pretrained model (stories260K): held-out exact match of
 * greedy completions per method on the copy-into-template task (targets: LoRA >= 95%,
 * soft prompt >= 80%). stories260K was trained with BOS as its document delimiter and never
 * produces </s>, so completions end with <s> (--eos "<s>"), which its generation config stops at.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../model/llama2c.js';
import { runSftCommand } from '../cli/commands/train.js';
import { SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';
import { copyTask, writeJsonl } from './copy-task.js';

const bin = sharedPath('models/stories260K/stories260K.bin');
const tok = sharedPath('models/stories260K/tok512.bin');
const skip = bin && tok ? false : SKIP_NO_SHARED;

const tmp = mkdtempSync(join(tmpdir(), 'plum-copy-'));
const methods: Array<[string, Record<string, string>, number]> = [
  ['lora', { method: 'lora', epochs: '10' }, 0.95],
  ['dora', { method: 'lora', useDora: 'true', epochs: '10' }, 0.95],
  ['soft-prompt', { method: 'soft-prompt', virtualTokens: '32', lr: '0.1', epochs: '20' }, 0.8],
  ['prefix', { method: 'prefix', virtualTokens: '32', lr: '0.03', epochs: '20' }, 0.8],
  ['last-layers', { method: 'last-layers', layers: '2', epochs: '10' }, 0.95],
  ['full', { method: 'full', epochs: '10' }, 0.95],
];

let model = '';
for (const [name, opts, target] of methods) {
  test(`copy task on stories260K, ${name}: held-out exact match >= ${target * 100}%`, { skip }, async () => {
    if (!model) {
      model = join(tmp, 'stories260K');
      convertLlama2c({ model: bin!, tokenizer: tok!, out: model });
      const { train, heldOut } = copyTask(0);
      writeJsonl(join(tmp, 'train.jsonl'), train);
      writeJsonl(join(tmp, 'held.jsonl'), heldOut);
    }
    const out = join(tmp, name);
    await runSftCommand({ model, data: join(tmp, 'train.jsonl'), heldOutFile: join(tmp, 'held.jsonl'), out, batchSize: '8', eos: '<s>', quiet: true, ...opts });
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    process.stderr.write(`copy task ${name}: exact match ${(s.eval_exact_match * 100).toFixed(1)}%, token acc ${(s.eval_token_acc * 100).toFixed(1)}%\n`);
    assert.ok(s.eval_exact_match >= target, `exact match ${s.eval_exact_match}`);
  });
}
