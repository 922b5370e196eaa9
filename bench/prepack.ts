/**
 * Fed weights vs constant (ORT prepacks constant GEMM operands once): 40 Gemms [512, 576] x
 * [576, 1536]^T, each behind a cheap Add and followed by a ReduceSum, median of 8
 * (`node --import tsx bench/prepack.ts`). BENCHMARKS.md, finding 22.
 */
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { ortBackend } from '../src/runtime/ort.js';
const M = 512, K = 576, N = 1536, L = 40;
const x = new Float32Array(M * K).map(() => Math.random() - 0.5);
const w = new Float32Array(N * K).map(() => Math.random() - 0.5);
for (const round of [0, 1]) for (const asConst of [false, true]) {
  const g = new Graph();
  const xi = g.input('x', [M, K]);
  const wi = asConst ? g.constant(w, [N, K]) : g.input('w', [N, K]);
  let acc: any = null;
  for (let l = 0; l < L; l++) { const y = op.reduceSum(op.gemm(op.add(xi, l), wi, false, true), [0, 1]); acc = acc ? op.add(acc, y) : y; }
  const r = await ortBackend().compile({ y: acc });
  const ts: number[] = [];
  for (let i = 0; i < 8; i++) { const t = performance.now(); await r.run(asConst ? { x } : { x, w }); ts.push(performance.now() - t); }
  ts.sort((a, b) => a - b);
  console.log(round, asConst ? 'constant (prepacked)' : 'fed', (ts[3]! / L).toFixed(3), 'ms per Gemm+add+reduce');
}
