import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, clipFactor, gradNorm } from './optimizer.js';
import { CHUNK, simdArena, simdKernels } from './simd.js';

/** torch.optim.AdamW, written out in float64 (decoupled decay, bias corrections). */
function referenceAdamW(x0: number[], grads: number[][], o: { lr: number; b1: number; b2: number; eps: number; wd: number }): number[] {
  const x = [...x0];
  const m = x.map(() => 0);
  const v = x.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < x.length; i++) {
      x[i] = x[i]! * (1 - o.lr * o.wd);
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - o.b1 ** t);
      const vHat = v[i]! / (1 - o.b2 ** t);
      x[i] = x[i]! - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  });
  return x;
}

test('AdamW equals torch.optim.AdamW over three steps (decay on, and off for a norm)', () => {
  const o = { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01 };
  const w = { name: 'w', data: Float32Array.from([1, -2, 0.5]), decay: true };
  const n = { name: 'norm', data: Float32Array.from([1, 1, 1]), decay: false };
  const opt = new AdamW([w, n], { lr: o.lr, beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd });
  const steps = [
    [0.5, 0.25, -1],
    [0.1, -0.3, 0.2],
    [-0.2, 0.05, 0.4],
  ];
  for (const g of steps) opt.update(new Map([['w', Float32Array.from(g)], ['norm', Float32Array.from(g)]]), o.lr);
  const wantW = referenceAdamW([1, -2, 0.5], steps, o);
  const wantN = referenceAdamW([1, 1, 1], steps, { ...o, wd: 0 });
  wantW.forEach((x, i) => assert.ok(Math.abs(w.data[i]! - x) < 1e-6, `w[${i}] ${w.data[i]} vs ${x}`));
  wantN.forEach((x, i) => assert.ok(Math.abs(n.data[i]! - x) < 1e-6, `norm[${i}] ${n.data[i]} vs ${x}`));
  // first step of Adam moves each weight by about lr against the sign of its gradient
  assert.ok(Math.abs(referenceAdamW([1], [[0.5]], o)[0]! - (1 * (1 - 0.001) - 0.1)) < 1e-6);
  assert.throws(() => opt.update(new Map([['w', new Float32Array(3)]]), o.lr), /AdamW: no gradient for norm/);
});

test('AdamW: scale multiplies the gradient (mean and clipping applied inside the update)', () => {
  const mk = () => ({ name: 'w', data: Float32Array.from([0.3, -0.7]), decay: true });
  const opts = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
  const [a, b] = [mk(), mk()];
  const oa = new AdamW([a], opts);
  const ob = new AdamW([b], opts);
  for (const g of [[4, -2], [1, 6]]) {
    oa.update(new Map([['w', Float32Array.from(g, (x) => x * 0.25)]]), 0.01);
    ob.update(new Map([['w', Float32Array.from(g)]]), 0.01, 0.25);
  }
  a.data.forEach((x, i) => assert.ok(Math.abs(x - b.data[i]!) < 1e-7));
});

test('gradNorm and clipFactor: global L2 norm, clipped as clip_grad_norm_', () => {
  const g = new Map([['a', Float32Array.from([3, 0])], ['b', Float32Array.from([0, 4])]]);
  assert.equal(gradNorm(g), 5);
  assert.equal(gradNorm(g, 0.5), 2.5);
  assert.equal(clipFactor(5, 10), 1);
  assert.ok(Math.abs(clipFactor(5, 1) - 0.2) < 1e-6);
  assert.equal(clipFactor(5, 0), 1);
});

test('AdamW: the SIMD kernel equals the JavaScript loop (moments in its memory, or staged) on tensors of several chunks and ragged tails; so does gradNorm', () => {
  const n = CHUNK * 2 + 7;
  const lengths = { w: n, b: 5 };
  const mk = () => Object.entries(lengths).map(([name, len]) => ({ name, data: Float32Array.from({ length: len }, (_, i) => Math.sin(i + len)), decay: name === 'w' }));
  const opts = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
  const [a, b, c] = [mk(), mk(), mk()];
  const simd = new AdamW(a, opts);
  const js = new AdamW(b, { ...opts, simd: false });
  const staged = new AdamW(c, opts);
  for (const p of c) staged.m.set(p.name, new Float32Array(p.data.length)), staged.v.set(p.name, new Float32Array(p.data.length));
  assert.ok(simdKernels(), 'this Node has WebAssembly SIMD');
  assert.ok(simd.m.get('w')!.buffer !== simd.v.get('w')!.buffer || simd.m.get('w')!.byteOffset !== simd.v.get('w')!.byteOffset, 'distinct moments');
  assert.ok(!(simd.m.get('w')!.buffer instanceof SharedArrayBuffer) && simd.m.get('b')!.byteOffset % 16 === 0, 'moments are 16-byte aligned views');
  for (let s = 0; s < 3; s++) {
    const g = new Map(Object.entries(lengths).map(([name, len]) => [name, Float32Array.from({ length: len }, (_, i) => Math.cos(i * (s + 1.3)))]));
    for (const o of [simd, js, staged]) o.update(g, 0.01, 0.5);
  }
  for (const [other, label] of [[c, 'staged'], [a, 'resident']] as const) {
    let err = 0;
    const o = other === c ? staged : simd;
    for (const [k, p] of other.entries())
      for (let i = 0; i < p.data.length; i++) err = Math.max(err, Math.abs(p.data[i]! - b[k]!.data[i]!), Math.abs(o.m.get(p.name)![i]! - js.m.get(p.name)![i]!), Math.abs(o.v.get(p.name)![i]! - js.v.get(p.name)![i]!));
    assert.ok(err < 1e-6, `${label}: max difference ${err}`);
  }
  assert.notEqual(a[0]!.data[n - 1], mk()[0]!.data[n - 1], 'the tail was updated');
  assert.ok(a[1]!.data.every((x, i) => x !== mk()[1]!.data[i]), 'the second tensor, right after the first tail in memory, was updated');
  const g = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  let sq = 0;
  for (const x of g) sq += x * x;
  assert.ok(Math.abs(gradNorm(new Map([['g', g]])) - Math.sqrt(sq)) < 1e-5 * Math.sqrt(sq));
});

test('simdArena: zeroed, aligned, non-overlapping views in one memory; null when they would not fit', () => {
  const arena = simdArena([5, 3, 8]);
  assert.ok(arena, 'an arena for 16 floats');
  const [x, y, z] = arena.arrays as [Float32Array, Float32Array, Float32Array];
  assert.deepEqual([x.length, y.length, z.length], [5, 3, 8]);
  assert.ok(x.every((v) => v === 0) && z.every((v) => v === 0), 'zeroed');
  assert.ok(x.buffer === arena.kernels.mem.buffer && [x, y, z].every((a) => a.byteOffset % 16 === 0), 'aligned views of the kernels memory');
  assert.ok(y.byteOffset >= x.byteOffset + 32 && z.byteOffset >= y.byteOffset + 16, 'each array padded to whole lanes, none overlapping');
  assert.equal(simdArena([1024], 1024), null, 'over the byte limit');
});
