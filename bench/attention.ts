/**
 * Prefill attention alone, Plum's composite against ONNX Runtime's fused CPU kernel
 * (com.microsoft.GroupQueryAttention): L layers of causal attention at SmolLM2-135M's shapes
 * (T = 512, 9 query heads, 3 key/value heads, head width 64), q/k/v fed in [B, T, heads * 64],
 * median of 8 runs, and the largest difference of their outputs
 * (`node --import tsx bench/attention.ts [L] [query blocks]`). BENCHMARKS.md, findings 18, 23.
 */
import { Graph, type OpDef, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { attention } from '../src/graph/nn.js';
import { ortBackend } from '../src/runtime/ort.js';
import { medianMs } from './timing.js';
const B = 1, T = 512, H = 9, Hkv = 3, Dh = 64;
const GqaOp: OpDef<{ T: number }> = {
  name: 'gqa',
  infer: (ins) => ({ shape: ins[0]!.shape, dtype: 'float32' }),
  emit(e, ins, out, a) {
    const sl = e.fresh('sl'), tl = e.fresh('tl');
    e.node('Cast', [e.constInt64([a.T - 1], [1])], [sl], { to: { kind: 'int', v: 6 } });
    e.node('Cast', [e.constInt64([a.T], [])], [tl], { to: { kind: 'int', v: 6 } });
    e.node('GroupQueryAttention', [ins[0]!, ins[1]!, ins[2]!, '', '', sl, tl], [out, e.fresh('pk'), e.fresh('pv')], { num_heads: { kind: 'int', v: H }, kv_num_heads: { kind: 'int', v: Hkv } }, 'com.microsoft');
  },
};
const rnd = (n: number) => new Float32Array(n).map(() => Math.random() - 0.5);
const q = rnd(B * T * H * Dh), k = rnd(B * T * Hkv * Dh), v = rnd(B * T * Hkv * Dh);
const bias = new Float32Array(B * T * T).map((_, i) => ((i % T) > Math.floor(i / T) ? -1e9 : 0));
const L = Number(process.argv[2] ?? 30);
const NB = Number(process.argv[3] ?? 4); // causal query blocks of the composite
async function time(name: string, build: (g: Graph) => Value): Promise<Float32Array> {
  const g = new Graph();
  const r = await ortBackend().compile({ y: build(g) });
  const feeds = { q, k, v, bias };
  console.log(name, (await medianMs(() => r.run(feeds), 8)).toFixed(1), 'ms for', L, 'layers');
  return (await r.run(feeds)).y as Float32Array;
}
/** The sum of L layers' outputs, so that none is removed as unused. */
const sumOf = (xs: Value[]): Value => xs.reduce((a, b) => op.add(a, b));
// L independent attention layers, each behind a cheap add so that none is shared
const ours = await time(`composite (${NB} causal blocks)`, (g) => {
  const qi = g.input('q', [B, T, H * Dh]), ki = g.input('k', [B, T, Hkv * Dh]), vi = g.input('v', [B, T, Hkv * Dh]), bi = g.input('bias', [B, 1, T, T]);
  const qh = op.transpose(op.reshape(qi, [B, T, H, Dh]), [0, 2, 1, 3]), kh = op.transpose(op.reshape(ki, [B, T, Hkv, Dh]), [0, 2, 1, 3]), vh = op.transpose(op.reshape(vi, [B, T, Hkv, Dh]), [0, 2, 1, 3]);
  return sumOf(Array.from({ length: L }, (_, l) => attention(op.add(qh, l), kh, vh, bi, 1 / Math.sqrt(Dh), { causalBlocks: NB })));
});
const gqa = await time('GroupQueryAttention', (g) => {
  const qi = g.input('q', [B, T, H * Dh]), ki = g.input('k', [B, T, Hkv * Dh]), vi = g.input('v', [B, T, Hkv * Dh]);
  g.input('bias', [B, 1, T, T]);
  return sumOf(Array.from({ length: L }, (_, l) => g.apply(GqaOp, [op.add(qi, l), ki, vi], { T })));
});
let maxd = 0; for (let i = 0; i < ours.length; i++) maxd = Math.max(maxd, Math.abs(ours[i]! - gqa[i]!));
console.log('max |diff|', maxd);
