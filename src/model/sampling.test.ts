import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, penalizeRepeats, sampleToken, seededRandom } from './sampling.js';

const logitsOf = (probs: number[]): Float32Array => Float32Array.from(probs.map(Math.log));
const base = { temperature: 1, topK: 0, topP: 1, seed: 0 };
/** How often each token is drawn in n samples. */
function counts(logits: Float32Array, opts: Parameters<typeof sampleToken>[1], n = 4000, seen: number[] = []): number[] {
  const rand = seededRandom(opts.seed);
  const c = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sampleToken(logits, opts, rand, seen)]!++;
  return c;
}

test('greedy is argmax; the same seed draws the same tokens; temperature 1 follows the distribution', () => {
  const l = logitsOf([0.1, 0.6, 0.3]);
  assert.equal(sampleToken(l, { ...base, temperature: 0 }, seededRandom(0)), 1);
  assert.deepEqual(counts(l, { ...base, seed: 5 }, 50), counts(l, { ...base, seed: 5 }, 50));
  const c = counts(l, base);
  [0.1, 0.6, 0.3].forEach((p, i) => assert.ok(Math.abs(c[i]! / 4000 - p) < 0.03, `token ${i}: ${c[i]}`));
});

test('top-k, top-p and min-p keep what HF keeps, renormalised', () => {
  const l = logitsOf([0.5, 0.3, 0.15, 0.05]);
  assert.deepEqual(counts(l, { ...base, topK: 2 }).slice(2), [0, 0]);
  // top_p 0.8: 0.5 + 0.3 reaches it, so two tokens remain
  assert.deepEqual(counts(l, { ...base, topP: 0.8 }).slice(2), [0, 0]);
  assert.ok(counts(l, { ...base, topP: 0.81 })[2]! > 0);
  // min_p 0.2: the floor is 0.2 x 0.5 = 0.1, so 0.05 goes and 0.15 stays; the rest renormalised
  const c = counts(l, { ...base, minP: 0.2 });
  assert.equal(c[3], 0);
  [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95].forEach((p, i) => assert.ok(Math.abs(c[i]! / 4000 - p) < 0.03, `token ${i}: ${c[i]}`));
  // min_p applies to what top_k kept (HF's order): top_k 1 leaves one token whatever min_p says
  assert.equal(counts(l, { ...base, topK: 1, minP: 0.9 })[0], 4000);
});

test("HF's repetition penalty: seen logits divided when positive, multiplied when negative; it changes greedy choices", () => {
  const l = Float32Array.from([2, 1.9, -1, 0.5]);
  assert.deepEqual(penalizeRepeats(l, [0, 2, 2], 2), Float32Array.from([1, 1.9, -2, 0.5]));
  assert.equal(penalizeRepeats(l, [0], 1), l, 'penalty 1 is a no-op');
  assert.equal(sampleToken(l, { ...base, temperature: 0, repetitionPenalty: 1.2 }, seededRandom(0), [0]), 1);
  assert.equal(sampleToken(l, { ...base, temperature: 0 }, seededRandom(0), [0]), 0, 'without a penalty the seen tokens do not matter');
  assert.equal(argmax(penalizeRepeats(l, [0, 1], 1.5)), 0); // 2/1.5 = 1.33 > 1.9/1.5
});
