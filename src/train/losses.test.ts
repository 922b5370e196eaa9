import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../graph/ir.js';
import { checkGrads } from '../graph/testing.js';
import { OrtBackend } from '../runtime/ort.js';
import { preferenceLoss } from './losses.js';

const backend = new OrtBackend({ threads: 1 });
const TOL = 2e-3; // float32 central differences (see graph/testing.ts)

test('preference losses: values and gradients (softplus stable at large |z|)', async () => {
  const g = new Graph();
  const d = g.input('d', [5]);
  const m = await backend.compile({
    sig: preferenceLoss('sigmoid', d, 0.5),
    ipo: preferenceLoss('ipo', d, 0.5),
    hinge: preferenceLoss('hinge', d, 0.5),
  });
  const dv = Float32Array.from([-100, -1, 0, 3, 400]);
  const r = await m.run({ d: dv });
  const sig = [...(r.sig as Float32Array)];
  const want = [...dv].map((x) => Math.log1p(Math.exp(-0.5 * x)));
  want[0] = 50; // softplus(50) = 50 + log1p(e^-50)
  sig.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `sigmoid loss at ${dv[i]}: ${v} vs ${want[i]}`));
  assert.deepEqual([...(r.ipo as Float32Array)], [...dv].map((x) => Math.fround((x - 1) ** 2)));
  assert.deepEqual([...(r.hinge as Float32Array)], [...dv].map((x) => Math.fround(Math.max(0, 1 - 0.5 * x))));
  for (const kind of ['sigmoid', 'ipo', 'hinge'] as const) {
    const res = await checkGrads(backend, [{ name: 'd', shape: [4], data: Float32Array.from([-3, -0.7, 0.4, 2.5]) }], (x) => preferenceLoss(kind, x!, 0.5), { seed: 4 });
    for (const q of res) assert.ok(q.relErr < TOL, `${kind}: ${q.analytic} vs ${q.numeric}`);
  }
});
