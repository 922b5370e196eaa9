import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, ShapeError, type Value, reachableNodes } from './ir.js';
import * as op from './ops.js';
import { grad } from './autodiff.js';
import { checkGrads, type GradCheckInput, rng, randn } from './testing.js';
import { OrtBackend } from '../runtime/ort.js';
import { emitOnnx } from './onnx.js';

const backend = new OrtBackend({ threads: 1 });
const TOL = 2e-3; // float32 central differences, h=1e-2: see testing.ts

const f = (name: string, shape: number[], extra: Partial<GradCheckInput> = {}): GradCheckInput => ({ name, shape, ...extra });
const positive = (n: number, seed: number): Float32Array => randn(n, rng(seed)).map((v) => 0.5 + Math.abs(v));
const ints = (vals: number[]): BigInt64Array => BigInt64Array.from(vals.map(BigInt));

interface Case {
  name: string;
  inputs: GradCheckInput[];
  fn: (...xs: Value[]) => Value;
}

const cases: Case[] = [
  { name: 'add (broadcast)', inputs: [f('a', [2, 3, 4]), f('b', [3, 1])], fn: (a, b) => op.add(a!, b!) },
  { name: 'sub (broadcast)', inputs: [f('a', [3, 1]), f('b', [2, 3, 4])], fn: (a, b) => op.sub(a!, b!) },
  { name: 'mul (broadcast)', inputs: [f('a', [2, 3, 4]), f('b', [4])], fn: (a, b) => op.mul(a!, b!) },
  { name: 'div', inputs: [f('a', [3, 4]), f('b', [3, 4], { data: positive(12, 5) })], fn: (a, b) => op.div(a!, b!) },
  { name: 'neg', inputs: [f('a', [5])], fn: (a) => op.neg(a!) },
  { name: 'exp', inputs: [f('a', [5])], fn: (a) => op.exp(a!) },
  { name: 'log', inputs: [f('a', [6], { data: positive(6, 7) })], fn: (a) => op.log(a!) },
  { name: 'sqrt', inputs: [f('a', [6], { data: positive(6, 8) })], fn: (a) => op.sqrt(a!) },
  { name: 'pow', inputs: [f('a', [6], { data: positive(6, 9) })], fn: (a) => op.pow(a!, -0.5) },
  { name: 'sigmoid', inputs: [f('a', [7])], fn: (a) => op.sigmoid(a!) },
  { name: 'tanh', inputs: [f('a', [7])], fn: (a) => op.tanh(a!) },
  { name: 'silu', inputs: [f('a', [9])], fn: (a) => op.silu(a!) },
  { name: 'cast f32->f32 + identity', inputs: [f('a', [3])], fn: (a) => op.identity(op.cast(a!, 'float32')) },
  {
    name: 'where (broadcast)',
    inputs: [f('a', [2, 3]), f('b', [3])],
    fn: (a, b) => op.where(op.less(a!, a!.graph.scalar(0)), a!, b!),
  },
  { name: 'matmul', inputs: [f('a', [3, 4]), f('b', [4, 5])], fn: (a, b) => op.matmul(a!, b!) },
  { name: 'matmul (batched, broadcast)', inputs: [f('a', [2, 3, 4]), f('b', [4, 5])], fn: (a, b) => op.matmul(a!, b!) },
  { name: 'matmul (batch both)', inputs: [f('a', [2, 2, 3, 4]), f('b', [2, 1, 4, 2])], fn: (a, b) => op.matmul(a!, b!) },
  { name: 'gemm', inputs: [f('a', [3, 4]), f('b', [4, 5])], fn: (a, b) => op.gemm(a!, b!) },
  { name: 'gemm transA', inputs: [f('a', [4, 3]), f('b', [4, 5])], fn: (a, b) => op.gemm(a!, b!, true, false) },
  { name: 'gemm transB', inputs: [f('a', [3, 4]), f('b', [5, 4])], fn: (a, b) => op.gemm(a!, b!, false, true) },
  { name: 'gemm transA transB', inputs: [f('a', [4, 3]), f('b', [5, 4])], fn: (a, b) => op.gemm(a!, b!, true, true) },
  { name: 'gemm alpha + c', inputs: [f('a', [3, 4]), f('b', [5, 4]), f('c', [3, 5])], fn: (a, b, c) => op.gemm(a!, b!, false, true, 0.75, c!) },
  { name: 'gemm transA alpha + c', inputs: [f('a', [4, 3]), f('b', [4, 5]), f('c', [3, 5])], fn: (a, b, c) => op.gemm(a!, b!, true, false, -2, c!) },
  { name: 'transpose', inputs: [f('a', [2, 3, 4])], fn: (a) => op.transpose(a!, [2, 0, 1]) },
  { name: 'reshape', inputs: [f('a', [2, 6])], fn: (a) => op.mul(op.reshape(a!, [3, -1]), a!.graph.constant(randn(12, rng(3)), [3, 4])) },
  { name: 'expand', inputs: [f('a', [3, 1])], fn: (a) => op.expand(a!, [2, 3, 4]) },
  { name: 'concat', inputs: [f('a', [2, 3]), f('b', [2, 2])], fn: (a, b) => op.concat([a!, b!, a!], 1) },
  { name: 'slice', inputs: [f('a', [4, 5])], fn: (a) => op.slice(a!, 1, 1, 4) },
  { name: 'pad', inputs: [f('a', [2, 3])], fn: (a) => op.pad(a!, 0, 1, 2) },
  { name: 'reduceSum', inputs: [f('a', [2, 3, 4])], fn: (a) => op.reduceSum(a!, [0, 2], false) },
  { name: 'reduceMean keepdims', inputs: [f('a', [2, 3, 4])], fn: (a) => op.reduceMean(a!, [-1], true) },
  { name: 'reduceMean (two axes)', inputs: [f('a', [2, 3, 4])], fn: (a) => op.reduceMean(a!, [0, 2], false) },
  { name: 'reduceSumSquare', inputs: [f('a', [2, 3, 4])], fn: (a) => op.reduceSumSquare(a!, [0, 2], false) },
  { name: 'reduceSumSquare (all axes)', inputs: [f('a', [3, 4])], fn: (a) => op.reduceSumSquare(a!, [0, 1]) },
  { name: 'pow (square)', inputs: [f('a', [6])], fn: (a) => op.pow(a!, 2) },
  { name: 'softmax', inputs: [f('a', [3, 5])], fn: (a) => op.softmax(a!) },
  { name: 'logSoftmax', inputs: [f('a', [3, 5])], fn: (a) => op.logSoftmax(a!) },
  {
    name: 'gather (embedding, repeated rows)',
    inputs: [f('table', [6, 3]), f('idx', [2, 3], { dtype: 'int64', data: ints([1, 4, 1, 0, 5, 1]) })],
    fn: (t, i) => op.gather(t!, i!),
  },
  {
    name: 'tied table: gather then x @ table^T (the scatter adds into the GEMM gradient)',
    inputs: [f('table', [6, 3]), f('idx', [2, 3], { dtype: 'int64', data: ints([1, 4, 1, 0, 5, 1]) })],
    fn: (t, i) => op.gemm(op.reshape(op.gather(t!, i!), [6, 3]), t!, false, true),
  },
  {
    name: 'gatherElements',
    inputs: [f('x', [3, 5]), f('idx', [3, 1], { dtype: 'int64', data: ints([4, 0, 2]) })],
    fn: (x, i) => op.gatherElements(x!, i!, 1),
  },
  {
    name: 'logSoftmax then a pick (the sparse-cotangent rule)',
    inputs: [f('x', [3, 5]), f('idx', [3, 1], { dtype: 'int64', data: ints([4, 0, 2]) })],
    fn: (x, i) => op.gatherElements(op.logSoftmax(x!), i!, 1),
  },
  {
    name: 'logSoftmax then two picks per row, one repeated',
    inputs: [f('x', [3, 5]), f('idx', [3, 2], { dtype: 'int64', data: ints([4, 4, 0, 1, 2, 3]) })],
    fn: (x, i) => op.gatherElements(op.logSoftmax(x!), i!, 1),
  },
  {
    name: 'scatterNDAdd (data and updates)',
    inputs: [f('d', [5, 2]), f('idx', [3, 1], { dtype: 'int64', data: ints([1, 3, 1]) }), f('u', [3, 2])],
    fn: (d, i, u) => op.scatterNDAdd(d!, i!, u!),
  },
  {
    name: 'scatterElementsAdd (data and updates)',
    inputs: [f('d', [3, 4]), f('idx', [3, 2], { dtype: 'int64', data: ints([0, 0, 3, 1, 2, 2]) }), f('u', [3, 2])],
    fn: (d, i, u) => op.scatterElementsAdd(d!, i!, u!, 1),
  },
];

for (const c of cases) {
  test(`vjp vs finite differences: ${c.name}`, async () => {
    const res = await checkGrads(backend, c.inputs, c.fn, { seed: 11 });
    for (const r of res) assert.ok(r.relErr < TOL, `${c.name}: analytic ${r.analytic} vs numeric ${r.numeric} (rel ${r.relErr})`);
  });
}

test('forward values: matmul and softmax against a TypeScript reference', async () => {
  const g = new Graph();
  const a = g.input('a', [2, 3]);
  const b = g.input('b', [3, 2]);
  const m = await backend.compile({ mm: op.matmul(a, b), sm: op.softmax(a) });
  const r = await m.run({ a: Float32Array.from([1, 2, 3, 4, 5, 6]), b: Float32Array.from([1, 0, 0, 1, 1, 1]) });
  assert.deepEqual([...(r.mm as Float32Array)], [4, 5, 10, 11]);
  const e = [1, 2, 3].map((x) => Math.exp(x - 3));
  const z = e.reduce((p, x) => p + x);
  const sm = r.sm as Float32Array;
  e.forEach((x, i) => assert.ok(Math.abs(sm[i]! - x / z) < 1e-6));
});

test('shape errors name the op and the shapes', () => {
  const g = new Graph();
  const a = g.input('a', [2, 3]);
  const b = g.input('b', [4, 5]);
  assert.throws(() => op.matmul(a, b), (e: unknown) => e instanceof ShapeError && /matmul: inner dimensions differ \(3 vs 4\).*float32\[2,3\], float32\[4,5\]/.test(e.message));
  assert.throws(() => op.add(a, b), /add: cannot broadcast dimension 0/);
  assert.throws(() => op.reshape(a, [4, 2]), /reshape: cannot reshape to \[4,2\]/);
});

test('grad builds no work for frozen inputs', () => {
  const g = new Graph();
  const x = g.input('x', [4, 8]);
  const w = g.input('w', [8, 8]);
  const y = op.matmul(op.matmul(x, w), w);
  const before = g.nodes.length;
  const loss = op.reduceSum(y, [0, 1]);
  grad(loss, [x]);
  const added = g.nodes.slice(before + 1);
  // d/dx through two matmuls: exactly two backward matmuls (no dW matmuls).
  assert.equal(added.filter((n) => n.op.name === 'matmul').length, 2);
});

test('the weight gradient of x @ W^T is one GEMM with no transpose; a picked logSoftmax has no full-row Sub or ReduceSum', () => {
  const g = new Graph();
  const x = g.input('x', [4, 8]);
  const w = g.input('w', [6, 8]);
  const y = op.gemm(x, w, false, true); // [4, 6]
  const idx = g.input('idx', [4, 1], 'int64');
  const before = g.nodes.length;
  const loss = op.reduceSum(op.gatherElements(op.logSoftmax(y), idx, 1), [0, 1]);
  const [dw] = grad(loss, [w]);
  const added = g.nodes.slice(before).filter((n) => reachableNodes([dw!]).includes(n));
  assert.deepEqual(added.filter((n) => n.op.name === 'gemm').map((n) => n.attrs), [{ transA: true, transB: false, alpha: 1 }]);
  assert.deepEqual(dw!.shape, [6, 8]);
  assert.ok(!added.some((n) => n.op.name === 'transpose' || n.op.name === 'sub' || (n.op.name === 'reduceSum' && n.inputs[0]!.size > 4)), added.map((n) => n.op.name).join(','));
  // a tied table (embedding gather + LM head): its rows scatter-add into the head's gradient
  const t = g.input('t', [6, 8]);
  const ids = g.input('ids', [4], 'int64');
  const [dt] = grad(op.reduceSum(op.gemm(op.gather(t, ids), t, false, true), [0, 1]), [t]);
  assert.equal(dt!.node!.op.name, 'scatterNDAdd');
  assert.equal(dt!.node!.inputs[0]!.node!.op.name, 'gemm');
});

test('a tall weight (LM-head-like) gets its gradient as a transposed [in, out] product from 512 tokens on; values equal gy^T x either way', async () => {
  assert.equal(op.tallGradientTransposed(512, 49152, 576), true, 'the LM head at 512 tokens');
  assert.equal(op.tallGradientTransposed(256, 49152, 576), false, 'too few tokens: the transpose would cost more than it saves');
  assert.equal(op.tallGradientTransposed(2048, 1536, 576), false, 'an MLP weight is not tall enough');
  for (const tokens of [512, 256]) {
    const [rows, cols] = [4096, 8];
    const g = new Graph();
    const x = g.input('x', [tokens, cols]);
    const w = g.input('w', [rows, cols]);
    const r = g.input('r', [tokens, rows]);
    const [dw] = grad(op.reduceSum(op.mul(op.gemm(x, w, false, true), r), [0, 1]), [w]); // dW = r^T x
    assert.deepEqual(dw!.shape, [rows, cols]);
    const names = reachableNodes([dw!]).map((n) => n.op.name);
    assert.equal(names.includes('transpose'), tokens >= 512, `tokens ${tokens}: ${names.join(',')}`);
    const xs = randn(tokens * cols, rng(3)), rs = randn(tokens * rows, rng(4));
    const out = (await (await backend.compile({ dw: dw! })).run({ x: xs, w: randn(rows * cols, rng(5)), r: rs })).dw as Float32Array;
    for (const [i, j] of [[0, 0], [1, 3], [rows - 1, cols - 1], [2049, 5]] as const) {
      let want = 0;
      for (let t = 0; t < tokens; t++) want += rs[t * rows + i]! * xs[t * cols + j]!;
      assert.ok(Math.abs(out[i * cols + j]! - want) < 1e-3 * (1 + Math.abs(want)), `tokens ${tokens}: dW[${i},${j}] ${out[i * cols + j]} vs ${want}`);
    }
  }
});

test('activation gradients of projections sharing an input sum inside their Gemms (C input), with no Add; values match the Add form', async () => {
  const g = new Graph();
  const x = g.input('x', [4, 8]);
  const ws = ['q', 'k', 'v'].map((n) => g.input(n, [5, 8]));
  const ys = ws.map((w) => op.gemm(x, w, false, true));
  const before = g.nodes.length;
  const loss = op.reduceSum(op.mul(op.add(op.add(ys[0]!, ys[1]!), op.mul(ys[2]!, ys[2]!)), ys[0]!), [0, 1]);
  const [dx] = grad(loss, [x]);
  const added = g.nodes.slice(before).filter((n) => reachableNodes([dx!]).includes(n));
  const gemms = added.filter((n) => n.op.name === 'gemm');
  assert.equal(gemms.length, 3);
  assert.equal(gemms.filter((n) => n.inputs.length === 3).length, 2, 'two of the three dx Gemms take the running sum as C');
  assert.equal(dx!.node!.op.name, 'gemm');
  assert.ok(!added.some((n) => n.op.name === 'add' && n.output.shape.join() === '4,8'), added.map((n) => n.op.name).join(','));
  // the same sum by hand with Adds, compared numerically
  const feeds: Record<string, Float32Array> = { x: new Float32Array(32).map((_, i) => Math.sin(i)) };
  for (const [i, n] of ['q', 'k', 'v'].entries()) feeds[n] = new Float32Array(40).map((_, j) => Math.cos(j * (i + 1)));
  const [y0, y1, y2] = ys as [Value, Value, Value];
  const gy0 = op.add(op.add(op.add(y0, y1), op.mul(y2, y2)), y0); // d loss / d y0 = s + y0
  const gy2 = op.mul(op.mul(y2, 2), y0);
  const byHand = op.add(op.add(op.gemm(gy0, ws[0]!), op.gemm(y0, ws[1]!)), op.gemm(gy2, ws[2]!));
  const r = await new OrtBackend({ threads: 1 }).compile({ dx: dx!, byHand });
  const out = await r.run(feeds);
  const a = out.dx as Float32Array, b = out.byHand as Float32Array;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4 * (1 + Math.abs(b[i]!)), `dx[${i}] ${a[i]} vs ${b[i]}`);
});

test('grad through an op without a vjp rule is an error naming the op', () => {
  const g = new Graph();
  const x = g.input('x', [3]);
  const loss = op.reduceSum(op.reduceMax(x, [0], true), [0]);
  assert.throws(() => grad(loss, [x]), /op "reduceMax" has no vector-Jacobian rule/);
});

test('silu (one QuickGelu kernel) equals x * sigmoid(x)', async () => {
  const g = new Graph();
  const x = g.input('x', [64]);
  const xs = Float32Array.from({ length: 64 }, (_, i) => (i - 32) / 4);
  const out = await (await backend.compile({ a: op.silu(x), b: op.mul(x, op.sigmoid(x)) })).run({ x: xs });
  const [a, b] = [out.a as Float32Array, out.b as Float32Array];
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6, `x=${xs[i]}: ${a[i]} vs ${b[i]}`);
  assert.ok(Math.abs(a[40]! - 2 / (1 + Math.exp(-2))) < 1e-6);
});

test('ONNX emission: an output also read by another node is named directly (no Identity copy); inputs and repeats get one', async () => {
  const g = new Graph();
  const x = g.input('x', [4]);
  const y = op.mul(x, 2);
  const outputs = { y, total: op.reduceSumSquare(y, [0]), again: y, echo: x };
  const onnx = emitOnnx(outputs);
  const identities = Buffer.from(onnx.bytes).toString('latin1').split('Identity').length - 1;
  assert.equal(identities, 2 * 2, 'two Identity nodes (op type and node name each spell it): for `again` and `echo`');
  const out = await (await backend.compile(outputs)).run({ x: new Float32Array([1, 2, 3, 4]) });
  assert.deepEqual([...(out.y as Float32Array)], [2, 4, 6, 8]);
  assert.deepEqual([...(out.again as Float32Array)], [2, 4, 6, 8]);
  assert.deepEqual([...(out.echo as Float32Array)], [1, 2, 3, 4]);
  assert.equal((out.total as Float32Array)[0], 4 + 16 + 36 + 64);
});

test('uint8 inputs and constants reach ONNX Runtime as uint8 (quantized weights, bench/quant-gemv.ts)', async () => {
  const g = new Graph();
  const x = g.input('x', [4], 'uint8');
  const c = g.constant(Uint8Array.from([1, 2, 3, 250]), [4], 'uint8');
  assert.equal(x.dtype, 'uint8');
  assert.equal(c.dtype, 'uint8');
  assert.equal(g.constant(Uint8Array.from([1, 0]), [2]).dtype, 'bool', 'a Uint8Array constant is bool unless asked');
  const r = await backend.compile({ y: op.add(op.cast(x, 'float32'), op.cast(c, 'float32')) });
  const out = await r.run({ x: Uint8Array.from([0, 7, 255, 5]) });
  assert.deepEqual([...(out.y as Float32Array)], [1, 9, 258, 255]);
});

test('graph inputs and outputs may have names of the form the emitter generates (v12, Mul_3)', async () => {
  const g = new Graph();
  const names = ['v0', 'v1', 'v2', 'v5', 'Mul_0', 'Add_1', 'init_0'];
  const xs = names.map((n) => g.input(n, [2]));
  let y = op.mul(xs[0]!, 2);
  for (const x of xs.slice(1)) y = op.add(op.mul(y, x), 1);
  const r = await backend.compile({ v3: y, Mul_2: op.mul(xs[1]!, 3) });
  const feeds = Object.fromEntries(names.map((n, i) => [n, Float32Array.from([i + 1, -(i + 1)])]));
  const out = await r.run(feeds);
  let want = [2 * 1, 2 * -1];
  for (let i = 1; i < names.length; i++) want = want.map((w, j) => w * (j ? -(i + 1) : i + 1) + 1);
  assert.deepEqual([...(out.v3 as Float32Array)], want);
  assert.deepEqual([...(out.Mul_2 as Float32Array)], [6, -6]);
});
