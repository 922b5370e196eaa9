/** CLI checks for eval safety, defend, demo, bench latency and pretrain: real runs on small models and one-line errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel } from '../../model/init.js';
import { REPO_ROOT } from '../../testing/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'plum-safety-cli-'));
const model = join(tmp, 'model');
initModel({ preset: 'tiny', arch: 'llama', seed: 1, out: model });
const plum = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), ...args], { encoding: 'utf8' });
const oneLineError = (r: ReturnType<typeof plum>, re: RegExp) => {
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
};

test('plum eval safety runs the micro suites on a model and writes the report files', () => {
  const out = join(tmp, 'report');
  const r = plum(['eval', 'safety', '--model', model, '--suites', 'injection,secrets', '--limit', '2', '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| micro-injection \| attack_success \| .*% \(n=2\) \| lower \|/);
  for (const f of ['report.md', 'report.json', 'answers.json', 'report.png']) assert.ok(existsSync(join(out, f)), f);
  const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.deepEqual(json.map((x: { suite: string }) => x.suite), ['micro-injection', 'micro-secret']);
});

test('one-line errors: unknown suite, demo without a model or with an unknown method, defend into an existing folder or with a negative --sft-weight, bench latency beyond the context, pretrain without data', () => {
  oneLineError(plum(['eval', 'safety', '--model', model, '--suites', 'nope']), /--suites: unknown suite "nope" \(available: injection, secrets/);
  oneLineError(plum(['demo', '--model', join(tmp, 'missing')]), /missing: no model folder \(plum-micro is built by npm run train:micro\)/);
  oneLineError(plum(['demo', '--method', 'nope']), /demo: --method: .*"lora"\|"soft-prompt"/);
  oneLineError(plum(['defend', 'injection', '--model', model, '--sft-weight', '-1', '--out', join(tmp, 'neg')]), /defend injection: --sft-weight: .*>=0/);
  writeFileSync(join(tmp, 'exists'), '');
  oneLineError(plum(['defend', 'injection', '--model', model, '--out', join(tmp, 'exists')]), /exists: already exists; choose a new --out or add --force/);
  oneLineError(plum(['bench', 'latency', '--model', model, '--system-prompt-tokens', '5000']), /exceeds the model's context \(512 tokens\)/);
  oneLineError(plum(['bench', 'latency', '--model', model, '--system-prompt-tokens', 'a,b']), /--system-prompt-tokens: must be comma-separated token counts/);
  oneLineError(plum(['pretrain', '--model', model, '--out', join(tmp, 'p')]), /pretrain: --data is required/);
});
