/**
 * Would quantized weights speed up decode? 30 layers of SmolLM2-135M's seven projections at M
 * rows (x W^T), float32 Gemm as the model runs it against ONNX Runtime's quantized CPU products:
 * `nbits` = com.microsoft.MatMulNBits (BITS 4 or 8, blocks of 32, accuracy_level 4: int8
 * compute), `dq` = com.microsoft.DynamicQuantizeMatMul (uint8 weights [K, N], per-column scale and
 * zero point; activations quantized per run). WHERE = `input` feeds the quantized weights as graph
 * inputs (zero-copy, as Plum feeds every weight), `const` puts them in the model as initializers
 * (ORT prepacks them per session). Random weights: timing only. Alternating, three medians of 20
 * runs (`node --import tsx bench/quant-gemv.ts [nbits|dq] [input|const] [BITS=4] [M=1]`).
 * BENCHMARKS.md, finding 36.
 */
import { Graph, type OpDef, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { OrtBackend } from '../src/runtime/ort.js';
import type { HostArray } from '../src/runtime/backend.js';
import { medianMs } from './timing.js';

const kind = process.argv[2] === 'dq' ? 'dq' : 'nbits';
const asConst = process.argv[3] === 'const';
const bits = Number(process.argv[4] ?? 4);
const M = Number(process.argv[5] ?? 1);
const BS = 32;
const NBits: OpDef<{ K: number; N: number }> = {
  name: 'matmul_nbits',
  infer: (ins, a) => ({ shape: [ins[0]!.shape[0]!, a.N], dtype: 'float32' }),
  emit: (e, ins, out, a) =>
    e.node('MatMulNBits', ins, [out], { K: { kind: 'int', v: a.K }, N: { kind: 'int', v: a.N }, bits: { kind: 'int', v: bits }, block_size: { kind: 'int', v: BS }, accuracy_level: { kind: 'int', v: 4 } }, 'com.microsoft'),
};
const DynQ: OpDef<{ N: number }> = {
  name: 'dynamic_quantize_matmul',
  infer: (ins, a) => ({ shape: [ins[0]!.shape[0]!, a.N], dtype: 'float32' }),
  emit: (e, ins, out) => e.node('DynamicQuantizeMatMul', ins, [out], {}, 'com.microsoft'),
};
const [L, C, F] = [30, 576, 1536];
const shapes: [number, number][] = [[C, C], [C, 192], [C, 192], [C, C], [C, F], [C, F], [F, C]]; // [K, N]
const rnd = (n: number): Float32Array => new Float32Array(n).map(() => Math.random() - 0.5);
const bytesOf = (n: number): Uint8Array => new Uint8Array(n).map(() => Math.floor(Math.random() * 256));
const g1 = new Graph();
const g2 = new Graph();
const f1: Record<string, HostArray> = { x: rnd(M * C), xf: rnd(M * F) };
const f2: Record<string, HostArray> = { x: f1.x!, xf: f1.xf! };
const [x1, x1f] = [g1.input('x', [M, C]), g1.input('xf', [M, F])];
const [x2, x2f] = [g2.input('x', [M, C]), g2.input('xf', [M, F])];
let [acc1, acc2]: (Value | null)[] = [null, null];
let [bytes32, bytesQ] = [0, 0];
/** A uint8 tensor as a graph input or a constant. */
const u8 = (name: string, shape: number[]): Value => {
  const data = bytesOf(shape.reduce((a, b) => a * b, 1));
  if (asConst) return g2.constant(data, shape, 'uint8');
  f2[name] = data;
  return g2.input(name, shape, 'uint8');
};
for (let l = 0; l < L; l++) {
  shapes.forEach(([K, N], i) => {
    const name = `${l}_${i}`;
    f1[`w${name}`] = rnd(N * K);
    bytes32 += N * K * 4;
    const y1 = op.reduceSum(op.matmul(K === C ? x1 : x1f, op.transpose(g1.input(`w${name}`, [N, K]), [1, 0])), [1]);
    acc1 = acc1 ? op.add(acc1, y1) : y1;
    let y2: Value;
    if (kind === 'nbits') {
      const kb = K / BS;
      const b = u8(`b${name}`, [N, kb, (BS * bits) / 8]);
      f2[`s${name}`] = rnd(N * kb).map((v) => v * 0.01);
      bytesQ += (N * kb * BS * bits) / 8 + N * kb * 4;
      y2 = g2.apply(NBits, [K === C ? x2 : x2f, b, g2.input(`s${name}`, [N * kb])], { K, N });
    } else {
      const b = u8(`b${name}`, [K, N]);
      f2[`s${name}`] = rnd(N).map((v) => v * 0.01);
      bytesQ += K * N + N * 4;
      y2 = g2.apply(DynQ, [K === C ? x2 : x2f, b, g2.input(`s${name}`, [N]), g2.constant(new Uint8Array(N).fill(128), [N], 'uint8')], { N });
    }
    const s2 = op.reduceSum(y2, [1]);
    acc2 = acc2 ? op.add(acc2, s2) : s2;
  });
}
const be = new OrtBackend();
const [r1, r2] = [await be.compile({ y: acc1! }), await be.compile({ y: acc2! })];
console.log(`float32 ${(bytes32 / 1e6).toFixed(0)} MB; ${kind === 'nbits' ? `MatMulNBits ${bits}-bit` : 'DynamicQuantizeMatMul uint8'} ${(bytesQ / 1e6).toFixed(0)} MB as ${asConst ? 'constants' : 'inputs'}; M = ${M}`);
for (let i = 0; i < 3; i++) {
  const a = await medianMs(() => r1.run(f1), 20);
  const b = await medianMs(() => r2.run(f2), 20);
  console.log(`float32 Gemm ${a.toFixed(2)} ms | quantized ${b.toFixed(2)} ms (${(bytesQ / b / 1e6).toFixed(1)} GB/s): x${(a / b).toFixed(2)}`);
}
