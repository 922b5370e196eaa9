import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Value } from './ir.js';
import * as op from './ops.js';
import { grad } from './autodiff.js';
import { attention } from './nn.js';
import { emitOnnx } from './onnx.js';
import { remat } from './remat.js';
import { checkGrads, randn, rng } from './testing.js';
import { OrtBackend } from '../runtime/ort.js';
import * as ort from 'onnxruntime-node';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const backend = new OrtBackend({ threads: 1 });
// q [B, H, T, Dh], grouped K/V (H = 4, Hkv = 2), causal mask with one padded key in row 1.
const [B, H, Hkv, T, Dh] = [2, 4, 2, 5, 4];
const causalBias = (): Float32Array => {
  const bias = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let s = 0; s < T; s++) bias[(b * T + t) * T + s] = s > t || (b === 1 && s === 0 && t > 0) ? -1e9 : 0;
  return bias;
};
const attend = (q: Value, k: Value, v: Value, bias: Value, causalBlocks = 1): Value => attention(q, k, v, bias, 0.5, { causalBlocks });

/** d/dq, dk, dv of sum(attention * c) with or without remat, from one graph each. */
async function grads(withRemat: boolean, feeds: Record<string, Float32Array>, c: Float32Array, blocks = 1): Promise<{ out: Record<string, Float32Array>; onnxMatMuls: number }> {
  const g = new Graph();
  const [q, k, v, bias] = [g.input('q', [B, H, T, Dh]), g.input('k', [B, Hkv, T, Dh]), g.input('v', [B, Hkv, T, Dh]), g.input('bias', [B, 1, T, T])];
  const y = withRemat ? remat(g, () => attend(q, k, v, bias, blocks)) : attend(q, k, v, bias, blocks);
  const loss = op.reduceSum(op.mul(y, g.constant(c, y.shape)), [0, 1, 2]);
  const [dq, dk, dv] = grad(loss, [q, k, v]);
  const outs = { y, dq: dq!, dk: dk!, dv: dv! };
  const model = new TextDecoder('latin1').decode(emitOnnx(outs).bytes);
  const out = (await (await backend.compile(outs)).run(feeds)) as Record<string, Float32Array>;
  return { out, onnxMatMuls: model.split('MatMul').length - 1 };
}

for (const blocks of [1, 2]) {
  test(`remat: attention${blocks > 1 ? ' in causal query blocks' : ''} recomputed in the backward pass gives the same values and gradients, from a second copy of the forward`, async () => {
    const r = rng(7);
    const feeds = { q: randn(B * H * T * Dh, r), k: randn(B * Hkv * T * Dh, r), v: randn(B * Hkv * T * Dh, r), bias: causalBias() };
    const c = randn(B * T * H * Dh, r);
    const [plain, re] = [await grads(false, feeds, c, blocks), await grads(true, feeds, c, blocks)];
    for (const name of ['y', 'dq', 'dk', 'dv']) {
      const [a, b] = [plain.out[name]!, re.out[name]!];
      assert.equal(a.length, b.length, `${name}: lengths differ`);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-6 * (1 + Math.abs(a[i]!)), `${name}[${i}]: ${a[i]} plain vs ${b[i]} remat`);
    }
    // the copy: each block's q k^T and p v once more (and no fewer matmuls than the plain backward)
    assert.equal(re.onnxMatMuls, plain.onnxMatMuls + 2 * blocks, `MatMul nodes: plain ${plain.onnxMatMuls}, remat ${re.onnxMatMuls}`);
  });
}

test('remat: finite-difference gradients of q, k and v through a recomputed attention', async () => {
  const res = await checkGrads(
    backend,
    [
      { name: 'q', shape: [B, H, T, Dh] }, { name: 'k', shape: [B, Hkv, T, Dh] }, { name: 'v', shape: [B, Hkv, T, Dh] },
      { name: 'bias', shape: [B, 1, T, T], data: causalBias(), wrt: false },
    ],
    (q, k, v, bias) => remat(q!.graph, () => attend(q!, k!, v!, bias!)),
    { seed: 11, directions: 3 },
  );
  // float32 central differences with h = 1e-2 (testing.ts): ~1e-3 relative is what rounding allows
  for (const x of res) assert.ok(x.relErr < 2e-3, `analytic ${x.analytic} vs numeric ${x.numeric} (rel ${x.relErr})`);
});

test('remat: the copy reads its inputs after the cotangent arrives', () => {
  const g = new Graph();
  const [x, w] = [g.input('x', [3, 4]), g.input('w', [4, 4])];
  const y = remat(g, () => op.softmax(op.matmul(x, w)));
  const loss = op.reduceSum(op.mul(y, y), [0, 1]);
  const [dw] = grad(loss, [w]);
  // d w comes from the copy: a matmul whose left input is x + zero(gy), not x itself
  const seen = new Set<Value>();
  const stack: Value[] = [dw!];
  let copied = false;
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.node?.op.name === 'matmul' && v !== y && v.node.inputs[0] !== x && v.node.inputs[0]!.node?.op.name === 'add' && v.node.inputs[0]!.node.inputs[0] === x) copied = true;
    if (v.node) stack.push(...v.node.inputs);
  }
  assert.ok(copied, 'the gradient of w should be built from a copy of the region that reads x through an add');
  assert.throws(() => remat(g, () => x), /must build its result/);
});

test('remat: a region that reads earlier values directly (weights, and a value derived from one of them) gets every gradient once', async () => {
  // y = remat(softmax(x p) * p) with x = tanh(p w): p reaches the region directly and through x
  const res = await checkGrads(
    backend,
    [{ name: 'p', shape: [4, 4] }, { name: 'w', shape: [4, 4] }],
    (p, w) => {
      const x = op.tanh(op.matmul(p!, w!));
      return op.add(remat(p!.graph, () => op.mul(op.softmax(op.matmul(x, p!)), p!)), x);
    },
    { seed: 13, directions: 4 },
  );
  for (const x of res) assert.ok(x.relErr < 2e-3, `analytic ${x.analytic} vs numeric ${x.numeric} (rel ${x.relErr})`);
});

test('remat: regions nest (a layer recomputed around a recomputed attention)', async () => {
  const res = await checkGrads(
    backend,
    [{ name: 'q', shape: [B, H, T, Dh] }, { name: 'k', shape: [B, Hkv, T, Dh] }, { name: 'v', shape: [B, Hkv, T, Dh] }, { name: 'bias', shape: [B, 1, T, T], data: causalBias(), wrt: false }],
    (q, k, v, bias) => {
      const g = q!.graph;
      return remat(g, () => op.tanh(remat(g, () => attend(op.mul(q!, 2), k!, v!, bias!))));
    },
    { seed: 17, directions: 3 },
  );
  for (const x of res) assert.ok(x.relErr < 2e-3, `analytic ${x.analytic} vs numeric ${x.numeric} (rel ${x.relErr})`);
});

test("remat: ONNX Runtime's optimiser merges a plain duplicate of attention but keeps the guarded replay", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-remat-'));
  // Softmax nodes in the model ORT runs (its optimised graph, written out): each node's op_type is
  // protobuf field 4, "\x22" then the length 7
  const softmaxes = async (mode: 'twice' | 'remat'): Promise<number> => {
    const g = new Graph();
    const [q, k, v, bias] = [g.input('q', [B, H, T, Dh]), g.input('k', [B, Hkv, T, Dh]), g.input('v', [B, Hkv, T, Dh]), g.input('bias', [B, 1, T, T])];
    const y = mode === 'twice' ? op.add(attend(q, k, v, bias), attend(q, k, v, bias)) : remat(g, () => attend(q, k, v, bias));
    const [dq, dk, dv] = grad(op.reduceSum(op.mul(y, y), [0, 1, 2]), [q, k, v]);
    const path = join(dir, `${mode}.onnx`);
    await ort.InferenceSession.create(emitOnnx({ dq: dq!, dk: dk!, dv: dv! }).bytes, { graphOptimizationLevel: 'all', optimizedModelFilePath: path, logSeverityLevel: 3 });
    return (new TextDecoder('latin1').decode(readFileSync(path)).match(/\x22\x07Softmax/g) ?? []).length;
  };
  assert.equal(await softmaxes('twice'), 1, 'ORT folds two identical attentions into one (common-subexpression elimination)');
  assert.equal(await softmaxes('remat'), 2, "the replay's softmax must survive ORT's optimiser");
});
