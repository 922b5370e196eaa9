import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { OrtBackend } from './ort.js';

// 1e-40 is a float32 denormal (the smallest normal is ~1.18e-38).
const tiny = new Float32Array([1e-40, 1, -3e-39, 2e-38]);
const scaled = async (backend: OrtBackend): Promise<Float32Array> => {
  const g = new Graph();
  const run = await backend.compile({ y: op.mul(g.input('x', [4]), 2) });
  const out = (await run.run({ x: tiny })).y as Float32Array;
  await run.release?.();
  return out;
};

test('OrtBackend flushes denormals to zero by default (denormal arithmetic is slow), and keeps them when asked', async () => {
  const flushed = await scaled(new OrtBackend({ threads: 2 }));
  assert.deepEqual([...flushed], [0, 2, -0, Math.fround(4e-38)]);
  const kept = await scaled(new OrtBackend({ threads: 2, denormalsAsZero: false }));
  assert.deepEqual([...kept], [Math.fround(2e-40), 2, Math.fround(-6e-39), Math.fround(4e-38)]);
});
