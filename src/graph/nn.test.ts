import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from './ir.js';
import * as op from './ops.js';
import { applyRope, attention, ropeInputs, targetIsMax } from './nn.js';
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

/** Hugging Face's apply_rotary_pos_emb written with plain ops: x cos + rotate_half(x) sin. */
function ropeReference(x: ReturnType<Graph['input']>, cos: ReturnType<Graph['input']>, sin: ReturnType<Graph['input']>) {
  const [Bq, , Tq, D] = x.shape as [number, number, number, number];
  const x1 = op.slice(x, -1, 0, D / 2);
  const x2 = op.slice(x, -1, D / 2, D);
  const rotated = op.concat([op.neg(x2), x1], -1);
  const c = op.reshape(cos, [Bq, 1, Tq, D]);
  const s = op.reshape(sin, [Bq, 1, Tq, D]);
  return op.add(op.mul(x, c), op.mul(rotated, s));
}

/** Tables as src/model/rope.ts lays them out: [B, T, Dh], both halves the same angles. */
function ropeTablesFor(Bq: number, Tq: number, D: number, positions: (b: number, t: number) => number): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(Bq * Tq * D);
  const sin = new Float32Array(Bq * Tq * D);
  for (let b = 0; b < Bq; b++)
    for (let t = 0; t < Tq; t++)
      for (let i = 0; i < D; i++) {
        const a = positions(b, t) / 10000 ** ((2 * (i % (D / 2))) / D);
        cos[(b * Tq + t) * D + i] = Math.cos(a);
        sin[(b * Tq + t) * D + i] = Math.sin(a);
      }
  return { cos, sin };
}

test('rotary kernel equals rotate-half RoPE written with plain ops (padded and offset positions), and rejects bad shapes', async () => {
  const [Bq, N, Tq, D] = [2, 3, 5, 8];
  const r = rng(21);
  const tables = ropeTablesFor(Bq, Tq, D, (b, t) => (b === 0 ? t : 37 + 3 * t)); // row 1: a cache offset
  const g = new Graph();
  const [x, cos, sin] = [g.input('x', [Bq, N, Tq, D]), g.input('cos', [Bq, Tq, D]), g.input('sin', [Bq, Tq, D])];
  const out = await (await backend.compile({ fused: applyRope(x, ropeInputs(cos, sin)), ref: ropeReference(x, cos, sin) })).run({ x: randn(Bq * N * Tq * D, r), ...tables });
  const [a, b] = [out.fused as Float32Array, out.ref as Float32Array];
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  assert.ok(diff < 1e-6, `max diff ${diff}`);
  const rope = ropeInputs(cos, sin);
  assert.throws(() => op.rotary(op.reshape(x, [Bq, N * Tq, D]), rope.pos, rope.cos, rope.sin), /rotary: x must be \[B, N, S, Dh\]/);
  assert.throws(() => op.rotary(x, rope.pos, op.reshape(cos, [Bq * Tq * 2, D / 2]), rope.sin), /rotary: cos and sin differ in length/);
});

test('rotary kernel: finite-difference gradient of x (the VJP is the inverse rotation)', async () => {
  const [Bq, N, Tq, D] = [2, 2, 3, 4];
  const tables = ropeTablesFor(Bq, Tq, D, (b, t) => 2 * t + b);
  const res = await checkGrads(
    backend,
    [
      { name: 'x', shape: [Bq, N, Tq, D] },
      { name: 'cos', shape: [Bq, Tq, D], data: tables.cos, wrt: false },
      { name: 'sin', shape: [Bq, Tq, D], data: tables.sin, wrt: false },
    ],
    (x, cos, sin) => applyRope(x!, ropeInputs(cos!, sin!)),
    { seed: 4, directions: 4 },
  );
  for (const r of res) assert.ok(r.relErr < TOL, `analytic ${r.analytic} vs numeric ${r.numeric} (rel ${r.relErr})`);
});

test('grouped-query attention equals a plain loop over heads (head h reads K/V head floor(h / G)): causal query blocks, key blocks concatenated or kept split', async () => {
  const [Bc, Tc, Hc, Hkvc, Dc] = [2, 5, 6, 2, 3]; // G = 3
  const g = new Graph();
  const [q, k, v, bias] = [g.input('q', [Bc, Hc, Tc, Dc]), g.input('k', [Bc, Hkvc, Tc, Dc]), g.input('v', [Bc, Hkvc, Tc, Dc]), g.input('bias', [Bc, 1, Tc, Tc])];
  const Gc = Hc / Hkvc;
  const r = rng(21);
  const feeds = { q: randn(Bc * Hc * Tc * Dc, r), k: randn(Bc * Hkvc * Tc * Dc, r), v: randn(Bc * Hkvc * Tc * Dc, r), bias: new Float32Array(Bc * Tc * Tc) };
  for (let b = 0; b < Bc; b++) for (let t = 0; t < Tc; t++) for (let s = 0; s < Tc; s++) feeds.bias[(b * Tc + t) * Tc + s] = s > t ? -1e9 : 0;
  // split: two key/value blocks with G*T = 15 > 2*Dh query rows, so attention concatenates them
  const split = attention(q, [op.slice(k, 2, 0, 2), op.slice(k, 2, 2, Tc)], [op.slice(v, 2, 0, 2), op.slice(v, 2, 2, Tc)], bias, 0.7);
  // last: the last position alone against the same two blocks (1 * G = 3 rows: the blocks stay split)
  const last = attention(op.slice(q, 2, Tc - 1, Tc), [op.slice(k, 2, 0, 2), op.slice(k, 2, 2, Tc)], [op.slice(v, 2, 0, 2), op.slice(v, 2, 2, Tc)], op.slice(bias, 2, Tc - 1, Tc), 0.7);
  const out = await (await backend.compile({ plain: attention(q, k, v, bias, 0.7), blocked: attention(q, k, v, bias, 0.7, { causalBlocks: 2 }), split, last })).run(feeds);
  for (let b = 0; b < Bc; b++)
    for (let t = 0; t < Tc; t++)
      for (let h = 0; h < Hc; h++) {
        const j = Math.floor(h / Gc);
        const qv = (d: number) => feeds.q[((b * Hc + h) * Tc + t) * Dc + d]!;
        const kv = (s: number, d: number, a: Float32Array) => a[((b * Hkvc + j) * Tc + s) * Dc + d]!;
        const logits = Array.from({ length: Tc }, (_, s) => 0.7 * [0, 1, 2].reduce((acc, d) => acc + qv(d) * kv(s, d, feeds.k), 0) + feeds.bias[(b * Tc + t) * Tc + s]!);
        const mx = Math.max(...logits);
        const e = logits.map((x) => Math.exp(x - mx));
        const z = e.reduce((x, y) => x + y, 0);
        for (let d = 0; d < Dc; d++) {
          const want = e.reduce((acc, p, s) => acc + (p / z) * kv(s, d, feeds.v), 0);
          for (const name of ['plain', 'blocked', 'split']) {
            const got = (out[name] as Float32Array)[(b * Tc + t) * Hc * Dc + h * Dc + d]!; // [B, T, H*Dh]
            assert.ok(Math.abs(got - want) < 1e-5, `${name} b${b} t${t} h${h} d${d}: ${got} vs ${want}`);
          }
          if (t === Tc - 1) {
            const got = (out.last as Float32Array)[b * Hc * Dc + h * Dc + d]!;
            assert.ok(Math.abs(got - want) < 1e-5, `last b${b} h${h} d${d}: ${got} vs ${want}`);
          }
        }
      }
});
