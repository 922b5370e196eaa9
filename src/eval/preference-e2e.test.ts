/**
 * The preference step end to end on stories260K: sample 8 stories per prompt, let a rule vote
 * for stories that mention a friend (baseline ~15% of samples), export pairs, train a LoRA
 * with DPO, and measure on held-out prompts: the share of sampled stories that mention a
 * friend must reach >= 90%; the KL to the reference (base) model is reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../model/llama2c.js';
import { REPO_ROOT, SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';

const bin = sharedPath('models/stories260K/stories260K.bin');
const tok = sharedPath('models/stories260K/tok512.bin');

const NAMES = ['Lily', 'Tom', 'Ben', 'Sue', 'Max', 'Anna', 'Sam', 'Mia', 'Tim', 'Lucy', 'Jack', 'Sara', 'Bob', 'Amy', 'Joe', 'Kate', 'Ned', 'Zoe', 'Leo', 'Eva'];
const OPENINGS = ['Once upon a time, there was a little girl named {n}.', 'Once upon a time, there was a boy named {n}.', 'One day, {n} went to the park.'];
export const FRIEND_RULE = 'regex-must:\\b[Ff]riend';

function plum(args: string[]): string {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `plum ${args.join(' ')}\n${r.stderr}`);
  return r.stdout;
}

test('sample -> rule votes -> DPO: held-out preferred-behaviour rate >= 90%, KL reported', { skip: bin && tok ? false : SKIP_NO_SHARED }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'plum-dpo-e2e-'));
  const model = join(tmp, 'stories260K');
  convertLlama2c({ model: bin!, tokenizer: tok!, out: model });
  // 60 prompts: 40 for training, 20 held out (different names and openings mixed).
  const prompts = NAMES.flatMap((n) => OPENINGS.map((o) => o.replace('{n}', n)));
  const held = prompts.filter((_, i) => i % 3 === 0);
  const train = prompts.filter((_, i) => i % 3 !== 0);
  writeFileSync(join(tmp, 'train.txt'), train.join('\n') + '\n');
  writeFileSync(join(tmp, 'held.txt'), held.join('\n') + '\n');
  const f = (name: string) => join(tmp, name);
  plum(['sample', '--model', model, '--prompts', f('train.txt'), '--n', '8', '--max-tokens', '48', '--seed', '1', '--out', f('cand.jsonl')]);
  plum(['vote', 'rules', '--candidates', f('cand.jsonl'), '--store', f('votes.sqlite'), '--rule', FRIEND_RULE, '--name', 'friend']);
  plum(['prefs', 'export', '--candidates', f('cand.jsonl'), '--store', f('votes.sqlite'), '--out', f('pairs.jsonl'), '--margin', '0.1']);
  plum(['train', 'dpo', '--model', model, '--pairs', f('pairs.jsonl'), '--method', 'lora', '--epochs', '2', '--batch-size', '8', '--beta', '0.5', '--lr', '0.002', '--out', f('dpo'), '--quiet']);
  const sampleHeld = (out: string, adapter?: string) =>
    plum(['sample', '--model', model, ...(adapter ? ['--adapter', adapter] : []), '--prompts', f('held.txt'), '--n', '8', '--max-tokens', '48', '--seed', '2', '--out', f(out)]);
  sampleHeld('held-base.jsonl');
  sampleHeld('held-dpo.jsonl', f('dpo'));
  const before = JSON.parse(plum(['prefs', 'eval', '--candidates', f('held-base.jsonl'), '--rule', FRIEND_RULE, '--json']));
  const after = JSON.parse(plum(['prefs', 'eval', '--candidates', f('held-dpo.jsonl'), '--rule', FRIEND_RULE, '--model', model, '--adapter', f('dpo'), '--json']));
  process.stderr.write(`DPO e2e: "friend" rate ${(before.rate * 100).toFixed(1)}% -> ${(after.rate * 100).toFixed(1)}% on ${after.candidates} held-out samples; KL to reference ${after.kl_to_reference.toFixed(2)} nats/sequence\n`);
  assert.ok(before.rate < 0.5, `baseline ${before.rate}`);
  assert.ok(after.rate >= 0.9, `after DPO ${after.rate}`);
  assert.ok(Number.isFinite(after.kl_to_reference) && after.kl_to_reference > 0);
});
