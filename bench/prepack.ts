/**
 * Fed weights vs constant (ORT prepacks constant GEMM operands once): 40 Gemms [512, 576] x
 * [576, 1536]^T, each behind a cheap Add and followed by a ReduceSum, median of 8
 * (`node --import tsx bench/prepack.ts`). BENCHMARKS.md, finding 22.
 */
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { ortBackend } from '../src/runtime/ort.js';
import { medianMs } from './timing.js';
const M = 512, K = 576, N = 1536, L = 40;
const x = new Float32Array(M * K).map(() => Math.random() - 0.5);
const w = new Float32Array(N * K).map(() => Math.random() - 0.5);
for (const round of [0, 1]) for (const asConst of [false, true]) {
  const g = new Graph();
  const xi = g.input('x', [M, K]);
  const wi = asConst ? g.constant(w, [N, K]) : g.input('w', [N, K]);
  const ys = Array.from({ length: L }, (_, l) => op.reduceSum(op.gemm(op.add(xi, l), wi, false, true), [0, 1]));
  const r = await ortBackend().compile({ y: ys.reduce((a, b) => op.add(a, b)) });
  const ms = await medianMs(() => r.run(asConst ? { x } : { x, w }), 8);
  console.log(round, asConst ? 'constant (prepacked)' : 'fed', (ms / L).toFixed(3), 'ms per Gemm+add+reduce');
}
