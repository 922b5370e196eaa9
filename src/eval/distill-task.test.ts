/**
 * Context distillation on stories260K: a 16-token soft prompt distilled from a 432-token
 * system prompt must cut the KL to the teacher by >= 75% relative to no prompt, on held-out
 * user prompts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../model/llama2c.js';
import { runDistillCommand } from '../cli/commands/distill.js';
import { SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';
import { STORY_SYSTEM_PROMPT, distillPrompts } from './distill-task.js';

const bin = sharedPath('models/stories260K/stories260K.bin');
const tok = sharedPath('models/stories260K/tok512.bin');

test('distil a 432-token system prompt into 16 soft-prompt tokens: held-out KL >= 75% lower than no prompt', { skip: bin && tok ? false : SKIP_NO_SHARED }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'plum-distill-'));
  const model = join(tmp, 'stories260K');
  convertLlama2c({ model: bin!, tokenizer: tok!, out: model });
  writeFileSync(join(tmp, 'system.txt'), STORY_SYSTEM_PROMPT);
  writeFileSync(join(tmp, 'prompts.txt'), distillPrompts().join('\n') + '\n');
  const out = join(tmp, 'out');
  await runDistillCommand({
    model, systemPrompt: join(tmp, 'system.txt'), prompts: join(tmp, 'prompts.txt'), virtualTokens: '16', out,
    epochs: '10', lr: '0.1', batchSize: '8', quiet: true,
  });
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  process.stderr.write(`distill: KL ${s.kl_student.toFixed(4)} vs no prompt ${s.kl_no_prompt.toFixed(4)} (${(s.kl_reduction * 100).toFixed(1)}% lower), agreement ${(s.agreement_student * 100).toFixed(1)}% vs ${(s.agreement_no_prompt * 100).toFixed(1)}%\n`);
  assert.ok(s.system_prompt_tokens >= 200);
  assert.equal(s.virtual_tokens, 16);
  assert.ok(s.kl_reduction >= 0.75, `KL reduction ${s.kl_reduction}`);
  assert.ok(s.agreement_student > s.agreement_no_prompt);
  assert.equal(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).peft_type, 'PROMPT_TUNING');
});
