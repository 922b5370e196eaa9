/**
 * The real-model fixture: stories260K converted from llama2.c must reproduce llama2.c's
 * published greedy output byte for byte, and the reference NLL / logits within 1e-4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { convertLlama2c } from './llama2c.js';
import { loadModel } from './load.js';
import { REPO_ROOT, SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';

const modelBin = sharedPath('models/stories260K/stories260K.bin');
const tokBin = sharedPath('models/stories260K/tok512.bin');
const refJson = sharedPath('reference/stories260K/stories260K_reference_computed.json');
const greedyTxt = sharedPath('reference/stories260K/greedy_t0_n200_llama2c_test_all.txt');
const skip = !(modelBin && tokBin && refJson && greedyTxt) ? SKIP_NO_SHARED : false;

let dir: string | null = null;
function converted(): string {
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'plum-s260-'));
    convertLlama2c({ model: modelBin!, tokenizer: tokBin!, out: dir });
  }
  return dir;
}

test('plum generate --prompt "" --temperature 0 --max-tokens 200 equals llama2.c byte for byte', { skip }, () => {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), 'generate', '--model', converted(), '--prompt', '', '--temperature', '0', '--max-tokens', '200'], {
    encoding: 'buffer',
  });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(Buffer.compare(r.stdout, readFileSync(greedyTxt!)) === 0, `got:\n${r.stdout.toString()}`);
});

test('per-token NLL of the reference sentence and logits at positions 0-4 within 1e-4', { skip }, async () => {
  const ref = JSON.parse(readFileSync(refJson!, 'utf8')) as {
    teacher_forced: { text: string; tokens: number[]; nll_per_token: number[] };
    logits_bos_greedy_path: { positions: number[][] };
    greedy_cases: Array<{ tokens: number[] }>;
  };
  const m = loadModel(converted());
  const tf = ref.teacher_forced;
  assert.deepEqual(m.tokenizer.encode(tf.text), tf.tokens);
  const [lp] = await m.lm.score([tf.tokens]);
  assert.equal(lp!.length, tf.nll_per_token.length);
  lp!.forEach((l, i) => assert.ok(Math.abs(-l - tf.nll_per_token[i]!) < 1e-4, `token ${i + 1}: ${-l} vs ${tf.nll_per_token[i]}`));
  const logits = await m.lm.logits(ref.greedy_cases[0]!.tokens.slice(0, 5));
  ref.logits_bos_greedy_path.positions.forEach((want, t) => {
    const got = logits[t]!;
    assert.equal(got.length, want.length);
    let maxDiff = 0;
    want.forEach((w, i) => (maxDiff = Math.max(maxDiff, Math.abs(got[i]! - w))));
    assert.ok(maxDiff < 1e-4, `position ${t}: max |diff| ${maxDiff}`);
  });
});

test('greedy 256-step path from BOS matches the reference token ids (KV-cache decode)', { skip }, async () => {
  const ref = JSON.parse(readFileSync(refJson!, 'utf8')) as { greedy_cases: Array<{ prompt: string; steps: number; tokens: number[] }> };
  const m = loadModel(converted());
  const { generate } = await import('./generate.js');
  for (const c of ref.greedy_cases) {
    const prompt = c.prompt === '' ? [1] : m.tokenizer.encode(c.prompt);
    const [g] = await generate(m.lm, [prompt], { temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens: c.tokens.length - prompt.length, eosIds: [] });
    assert.deepEqual([...prompt, ...g!.tokens], c.tokens, `prompt ${JSON.stringify(c.prompt)}`);
  }
});
