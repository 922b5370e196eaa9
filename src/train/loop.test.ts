import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LoopOptions, type Objective, trainLoop } from './loop.js';
import { PlumError } from '../util/errors.js';

const options = (outDir: string): LoopOptions => ({
  epochs: 1, gradAccum: 1, lr: 0.01, warmup: 0, schedule: 'constant', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8,
  maxGradNorm: 1, evalEvery: 0, saveEvery: 2, patience: 0, outDir, resume: false, label: 'train sft', fingerprint: {}, quiet: true,
});

/** Six one-token batches; batch `bad` returns `badLoss` / a gradient of `badGrad`. */
function objective(bad: number, badLoss: number, badGrad: number): Objective<number> {
  return {
    batches: () => [0, 1, 2, 3, 4, 5],
    step: async (b) => ({ lossSum: b === bad ? badLoss : 1, weight: 1, tokens: 1, grads: new Map([['w', Float32Array.from([0.5, -0.5, b === bad ? badGrad : 0.25])]]) }),
  };
}

for (const [what, badLoss, badGrad, message] of [
  ['NaN loss', NaN, 0.25, /train sft: step 4: the loss is NaN, training diverged; nothing was updated\. Lower --lr \(now 0\.01\) or --max-grad-norm, or check the data; the last good state is the checkpoint of step 2 in .* \(--resume continues from it\)/],
  ['infinite gradient', 1, Infinity, /train sft: step 4: the gradient norm is Infinity, training diverged; nothing was updated/],
] as const) {
  test(`a diverged step (${what}) stops before the update with a one-line error; the tensors stay finite`, async () => {
    const out = mkdtempSync(join(tmpdir(), 'plum-loop-'));
    const w = { name: 'w', data: new Float32Array(3), decay: false };
    await assert.rejects(trainLoop([w], objective(3, badLoss, badGrad), options(out)), (e: unknown) => e instanceof PlumError && message.test(e.message) && !e.message.includes('\n'));
    assert.ok([...w.data].every(Number.isFinite) && w.data[0]! < 0, `three updates applied, the fourth not: ${w.data}`);
    assert.ok(existsSync(join(out, 'metrics.jsonl')));
  });
}

test('a run without divergence completes all steps, calling onUpdate after each', async () => {
  const out = mkdtempSync(join(tmpdir(), 'plum-loop-'));
  const w = { name: 'w', data: new Float32Array(3), decay: false };
  let updates = 0;
  const r = await trainLoop([w], objective(-1, NaN, 0), { ...options(out), onUpdate: () => updates++ });
  assert.equal(r.steps, 6);
  assert.equal(updates, 6, 'onUpdate after every optimizer step (adapters drop derived inference inputs)');
});
