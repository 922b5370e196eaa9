/**
 * Decode attention alone, Plum's composite against ONNX Runtime's fused CPU kernel
 * (com.microsoft.GroupQueryAttention) with the KV cache shared in place (past_key and present_key
 * the same buffer, fed and fetched zero-copy, so the kernel writes the new position into the
 * cache): L layers at SmolLM2-135M's shapes (9 query heads, 3 key/value heads, head width 64),
 * one query row, a cache of CAP slots with PAST filled; ROT = 1 lets the kernel apply RoPE from
 * cos/sin caches, 0 skips RoPE in the kernel (timing only: the outputs then differ). Prints the
 * largest difference of the outputs, then
 * three alternating medians of 50 runs
 * (`node --import tsx bench/decode-attention.ts [L=30] [CAP=640] [PAST=512] [ROT=1]`).
 * BENCHMARKS.md, finding 35.
 */
import * as ort from 'onnxruntime-node';
import { Graph, type OpDef, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { attention, applyRope, ropeInputs } from '../src/graph/nn.js';
import { emitOnnx } from '../src/graph/onnx.js';
import { medianMs } from './timing.js';
const H = 9, Hkv = 3, Dh = 64, L = Number(process.argv[2] ?? 30), CAP = Number(process.argv[3] ?? 640), PAST = Number(process.argv[4] ?? 512);
const Gqa: OpDef<{ l: number; rot: number }> = {
  name: 'gqa',
  infer: (ins) => ({ shape: ins[0]!.shape, dtype: 'float32' }),
  emit(e, ins, out, a) {
    const sl = e.fresh('sl'), tl = e.fresh('tl');
    e.node('Cast', [ins[5]!], [sl], { to: { kind: 'int', v: 6 } });
    e.node('Cast', [ins[6]!], [tl], { to: { kind: 'int', v: 6 } });
    const inputs = [ins[0]!, ins[1]!, ins[2]!, ins[3]!, ins[4]!, sl, tl];
    if (a.rot) inputs.push(ins[7]!, ins[8]!);
    e.node('GroupQueryAttention', inputs, [out, `present_k.${a.l}`, `present_v.${a.l}`], { num_heads: { kind: 'int', v: H }, kv_num_heads: { kind: 'int', v: Hkv }, scale: { kind: 'float', v: 1 / 8 }, do_rotary: { kind: 'int', v: a.rot } }, 'com.microsoft');
  },
};
const Alias: OpDef<{ l: number }> = { name: 'alias', infer: (ins) => ({ shape: [1, Hkv, CAP, Dh], dtype: 'float32' }), emit() {} };
const rnd = (n: number) => new Float32Array(n).map(() => Math.random() - 0.5);
const q = rnd(H * Dh), k = rnd(Hkv * Dh), v = rnd(Hkv * Dh);
const caches = Array.from({ length: 2 * L }, () => rnd(Hkv * CAP * Dh));
const cosT = new Float32Array(CAP * Dh / 2), sinT = new Float32Array(CAP * Dh / 2);
for (let p = 0; p < CAP; p++) for (let i = 0; i < Dh / 2; i++) { const f = p / Math.pow(10000, (2 * i) / Dh); cosT[p * Dh / 2 + i] = Math.cos(f); sinT[p * Dh / 2 + i] = Math.sin(f); }
const cosRow = new Float32Array(Dh), sinRow = new Float32Array(Dh);
for (let i = 0; i < Dh; i++) { cosRow[i] = cosT[PAST * Dh / 2 + (i % 32)]!; sinRow[i] = sinT[PAST * Dh / 2 + (i % 32)]!; }
const bias = new Float32Array(CAP + 1).map((_, s) => (s < PAST || s === CAP ? 0 : -1e9));
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', enableMemPattern: false, extra: { session: { force_spinning_stop: '1' } } };
// composite, as the decoder's decode step
const g1 = new Graph();
const outs1: Record<string, Value> = {};
{
  const qi = g1.input('q', [1, H * Dh]), ki = g1.input('k', [1, Hkv * Dh]), vi = g1.input('v', [1, Hkv * Dh]), bi = g1.input('bias', [1, 1, 1, CAP + 1]);
  const rope = ropeInputs(g1.input('cos', [1, 1, Dh]), g1.input('sin', [1, 1, Dh]));
  let acc: Value | null = null;
  for (let l = 0; l < L; l++) {
    const pk = g1.input(`past_k.${l}`, [1, Hkv, CAP, Dh]), pv = g1.input(`past_v.${l}`, [1, Hkv, CAP, Dh]);
    const qq = op.add(qi, l);
    const qr = applyRope(op.transpose(op.reshape(qq, [1, 1, H, Dh]), [0, 2, 1, 3]), rope);
    const kr = applyRope(op.transpose(op.reshape(ki, [1, 1, Hkv, Dh]), [0, 2, 1, 3]), rope);
    const vv = op.transpose(op.reshape(vi, [1, 1, Hkv, Dh]), [0, 2, 1, 3]);
    outs1[`present_k.${l}`] = kr; outs1[`present_v.${l}`] = vv;
    const a = op.reshape(attention(qr, [pk, kr], [pv, vv], bi, 1 / 8), [1, H * Dh]);
    acc = acc ? op.add(acc, a) : a;
  }
  outs1.y = acc!;
}
const m1 = emitOnnx(outs1);
const s1 = await ort.InferenceSession.create(m1.bytes, opts);
const T = (d: Float32Array, s: number[]) => new ort.Tensor('float32', d, s);
const feeds1: Record<string, ort.Tensor> = { q: T(q, [1, H * Dh]), k: T(k, [1, Hkv * Dh]), v: T(v, [1, Hkv * Dh]), bias: T(bias, [1, 1, 1, CAP + 1]), cos: T(cosRow, [1, 1, Dh]), sin: T(sinRow, [1, 1, Dh]) };
for (let l = 0; l < L; l++) { feeds1[`past_k.${l}`] = T(caches[2 * l]!, [1, Hkv, CAP, Dh]); feeds1[`past_v.${l}`] = T(caches[2 * l + 1]!, [1, Hkv, CAP, Dh]); }
const f1 = Object.fromEntries(m1.inputNames.map((n) => [n, feeds1[n]!]));
let y1: Float32Array = (await s1.run(f1)).y!.data as Float32Array;
// GQA, shared buffers
const rot = Number(process.argv[5] ?? 1);
const g2 = new Graph();
const outs2: Record<string, Value> = {};
{
  const qi = g2.input('q', [1, 1, H * Dh]), ki = g2.input('k', [1, 1, Hkv * Dh]), vi = g2.input('v', [1, 1, Hkv * Dh]);
  const sl = g2.input('seqlens', [1], 'int64'), tl = g2.input('total', [], 'int64');
  const cc = g2.input('cos_cache', [CAP, Dh / 2]), sc = g2.input('sin_cache', [CAP, Dh / 2]);
  let acc: Value | null = null;
  for (let l = 0; l < L; l++) {
    const pk = g2.input(`past_k.${l}`, [1, Hkv, CAP, Dh]), pv = g2.input(`past_v.${l}`, [1, Hkv, CAP, Dh]);
    const a = g2.apply(Gqa, [op.add(qi, l), ki, vi, pk, pv, sl, tl, cc, sc], { l, rot });
    outs2[`present_k.${l}`] = g2.apply(Alias, [a], { l });
    outs2[`present_v.${l}`] = g2.apply(Alias, [a], { l });
    acc = acc ? op.add(acc, a) : a;
  }
  outs2.y = acc!;
}
const m2 = emitOnnx(outs2);
const s2 = await ort.InferenceSession.create(m2.bytes, opts);
const caches2 = caches.map((c) => c.slice());
const feeds2: Record<string, ort.Tensor> = { q: T(q, [1, 1, H * Dh]), k: T(k, [1, 1, Hkv * Dh]), v: T(v, [1, 1, Hkv * Dh]), seqlens: new ort.Tensor('int64', BigInt64Array.from([BigInt(PAST)]), [1]), total: new ort.Tensor('int64', BigInt64Array.from([BigInt(PAST + 1)]), []), cos_cache: T(cosT, [CAP, Dh / 2]), sin_cache: T(sinT, [CAP, Dh / 2]) };
const fetches: Record<string, ort.Tensor | null> = { y: null };
for (let l = 0; l < L; l++) { feeds2[`past_k.${l}`] = T(caches2[2 * l]!, [1, Hkv, CAP, Dh]); feeds2[`past_v.${l}`] = T(caches2[2 * l + 1]!, [1, Hkv, CAP, Dh]); fetches[`present_k.${l}`] = feeds2[`past_k.${l}`]!; fetches[`present_v.${l}`] = feeds2[`past_v.${l}`]!; }
const f2 = Object.fromEntries(m2.inputNames.map((n) => [n, feeds2[n]!]));
const r2 = await s2.run(f2, fetches as never);
const y2 = r2.y!.data as Float32Array;
let md = 0; for (let i = 0; i < y1.length; i++) md = Math.max(md, Math.abs(y1[i]! - y2[i]!));
const newK = caches2[0]!.subarray(PAST * Dh, PAST * Dh + 4);
console.log('max |diff|', md, 'written k at PAST (head 0):', [...newK].map((x) => x.toFixed(3)).join(','), 'rot', rot);
for (let rep = 0; rep < 3; rep++) {
  console.log('composite', (await medianMs(() => s1.run(f1), 50)).toFixed(3), 'ms;', 'gqa', (await medianMs(() => s2.run(f2, fetches as never), 50)).toFixed(3), 'ms for', L, 'layers');
}
