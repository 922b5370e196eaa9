import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from './ir.js';
import * as op from './ops.js';
import { attention, targetIsMax } from './nn.js';
import { checkGrads, randn, rng } from './testing.js';
import { OrtBackend } from '../runtime/ort.js';

const backend = new OrtBackend({ threads: 1 });
// Central differences in float32 with h = 1e-2 along unit directions: rounding allows ~1e-3.
const TOL = 2e-3;

// q [B, H, T, Dh] with grouped K/V (H = 4, Hkv = 2) split into a past block of 3 and a new block of 2.
const [B, H, Hkv, T, P, Dh] = [2, 4, 2, 2, 3, 4];
const causalBias = (): Float32Array => {
  const bias = new Float32Array(B * T * (P + T));
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let s = 0; s < P + T; s++) bias[(b * T + t) * (P + T) + s] = s > P + t || (b === 1 && s === 0) ? -1e9 : 0;
  return bias;
};

test('attention over [past; new] blocks equals attention over the concatenated keys', async () => {
  const g = new Graph();
  const [q, kp, kn, vp, vn, bias] = [
    g.input('q', [B, H, T, Dh]), g.input('kp', [B, Hkv, P, Dh]), g.input('kn', [B, Hkv, T, Dh]),
    g.input('vp', [B, Hkv, P, Dh]), g.input('vn', [B, Hkv, T, Dh]), g.input('bias', [B, 1, T, P + T]),
  ];
  const blocks = attention(q, [kp, kn], [vp, vn], bias, 0.5);
  const joined = attention(q, op.concat([kp, kn], 2), op.concat([vp, vn], 2), bias, 0.5);
  const r = rng(3);
  const feeds = {
    q: randn(B * H * T * Dh, r), kp: randn(B * Hkv * P * Dh, r), kn: randn(B * Hkv * T * Dh, r),
    vp: randn(B * Hkv * P * Dh, r), vn: randn(B * Hkv * T * Dh, r), bias: causalBias(),
  };
  const out = await (await backend.compile({ blocks, joined })).run(feeds);
  const [a, b] = [out.blocks as Float32Array, out.joined as Float32Array];
  assert.deepEqual([...blocks.shape], [B, T, H * Dh]);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6, `element ${i}: ${a[i]} vs ${b[i]}`);
  assert.throws(() => attention(q, [kp, kn], [vp], bias, 1), /2 key blocks but 1 value blocks/);
});

test('attention over blocks: finite-difference gradients of q and every K/V block', async () => {
  const res = await checkGrads(
    backend,
    [
      { name: 'q', shape: [B, H, T, Dh] }, { name: 'kp', shape: [B, Hkv, P, Dh] }, { name: 'kn', shape: [B, Hkv, T, Dh] },
      { name: 'vp', shape: [B, Hkv, P, Dh] }, { name: 'vn', shape: [B, Hkv, T, Dh] },
      { name: 'bias', shape: [B, 1, T, P + T], data: causalBias(), wrt: false },
    ],
    (q, kp, kn, vp, vn, bias) => attention(q!, [kp!, kn!], [vp!, vn!], bias!, 0.5),
    { seed: 5, directions: 3 },
  );
  for (const r of res) assert.ok(r.relErr < TOL, `analytic ${r.analytic} vs numeric ${r.numeric} (rel ${r.relErr})`);
});

test('causal attention in query blocks equals full attention under a causal mask (GQA, uneven blocks, padded row)', async () => {
  const [Bc, Tc] = [2, 11];
  const g = new Graph();
  const [q, k, v, bias] = [g.input('q', [Bc, H, Tc, Dh]), g.input('k', [Bc, Hkv, Tc, Dh]), g.input('v', [Bc, Hkv, Tc, Dh]), g.input('bias', [Bc, 1, Tc, Tc])];
  const full = attention(q, k, v, bias, 0.5);
  const blocked3 = attention(q, k, v, bias, 0.5, { causalBlocks: 3 });
  const blocked4 = attention(q, k, v, bias, 0.5, { causalBlocks: 4 });
  const mask = new Float32Array(Bc * Tc * Tc);
  const lengths = [Tc, 7]; // row 1 is right-padded after 7 tokens
  for (let b = 0; b < Bc; b++)
    for (let t = 0; t < Tc; t++) for (let s = 0; s < Tc; s++) mask[(b * Tc + t) * Tc + s] = s > t || s >= lengths[b]! ? -1e9 : 0;
  const r = rng(11);
  const out = await (await backend.compile({ full, blocked3, blocked4 })).run({
    q: randn(Bc * H * Tc * Dh, r), k: randn(Bc * Hkv * Tc * Dh, r), v: randn(Bc * Hkv * Tc * Dh, r), bias: mask,
  });
  const ref = out.full as Float32Array;
  for (const name of ['blocked3', 'blocked4']) {
    const a = out[name] as Float32Array;
    for (let b = 0; b < Bc; b++)
      for (let t = 0; t < lengths[b]!; t++)
        for (let j = 0; j < H * Dh; j++) {
          const i = (b * Tc + t) * H * Dh + j;
          assert.ok(Math.abs(a[i]! - ref[i]!) < 1e-6, `${name} row ${b} position ${t}: ${a[i]} vs ${ref[i]}`);
        }
  }
  assert.throws(() => attention(q, [k, k], [v, v], op.concat([bias, bias], 3), 1, { causalBlocks: 2 }), /causal blocks need one key block/);
});

test('causal attention in query blocks: finite-difference gradients of q, k, v', async () => {
  const Tc = 6;
  const mask = new Float32Array(B * Tc * Tc);
  for (let b = 0; b < B; b++) for (let t = 0; t < Tc; t++) for (let s = 0; s < Tc; s++) mask[(b * Tc + t) * Tc + s] = s > t ? -1e9 : 0;
  const res = await checkGrads(
    backend,
    [
      { name: 'q', shape: [B, H, Tc, Dh] }, { name: 'k', shape: [B, Hkv, Tc, Dh] }, { name: 'v', shape: [B, Hkv, Tc, Dh] },
      { name: 'bias', shape: [B, 1, Tc, Tc], data: mask, wrt: false },
    ],
    (q, k, v, bias) => attention(q!, k!, v!, bias!, 0.5, { causalBlocks: 3 }),
    { seed: 9, directions: 3 },
  );
  for (const r of res) assert.ok(r.relErr < TOL, `analytic ${r.analytic} vs numeric ${r.numeric} (rel ${r.relErr})`);
});

test('targetIsMax: true exactly where the target is the argmax (ArgMax as the reference), false at the ignore index', async () => {
  const [N, V] = [64, 50];
  const r = rng(11);
  const logits = randn(N * V, r);
  const argmaxOf = (i: number): number => {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[i * V + v]! > logits[i * V + best]!) best = v;
    return best;
  };
  // Rows alternate: the argmax, another index, the ignore index.
  const targets = BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 3 === 0 ? argmaxOf(i) : i % 3 === 1 ? (argmaxOf(i) + 1 + (i % (V - 1))) % V : -100));
  const g = new Graph();
  const [x, t] = [g.input('x', [N, V]), g.input('t', [N], 'int64')];
  const out = await (await backend.compile({ hit: targetIsMax(x, t), ref: op.equal(op.argmax(x), t) })).run({ x: logits, t: targets });
  const [hit, ref] = [[...(out.hit as Uint8Array)].map(Boolean), [...(out.ref as Uint8Array)].map(Boolean)];
  assert.deepEqual(hit, ref);
  assert.deepEqual(hit, Array.from({ length: N }, (_, i) => i % 3 === 0));
});
