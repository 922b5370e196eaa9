/**
 * Small-M products against a stream of weights, as in decode: y = x [M, K] times each of L
 * weights (L * K * N floats, far more than the caches hold), in one ORT session, for the
 * weight layouts a decode graph could use:
 *   gemm-tB   Gemm(x, W [N, K], transB)      Hugging Face's [out, in] layout (what Plum feeds)
 *   matmul    MatMul(x, W' [K, N])           the weight stored transposed, [in, out]
 *   matmul-T  MatMul(W [N, K], x^T [K, M])   the product computed as W x^T, then transposed
 * `node --import tsx bench/gemv.ts [M]`: GB/s of weights read per variant and shape, alternating.
 */
import { availableParallelism } from 'node:os';
import { Graph, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { PlainSession, randomArray } from './baseline.js';
import { median } from './timing.js';

const M = Number(process.argv[2] ?? 1);
const threads = Number(process.env.THREADS ?? availableParallelism());
type Variant = 'gemm-tB' | 'matmul' | 'matmul-T';
const variants: Variant[] = ['gemm-tB', 'matmul', 'matmul-T'];
const shapes: [number, number, number][] = [
  // [K, N, L]
  [576, 1536, 40],
  [1536, 576, 40],
  [576, 576, 120],
  [576, 49152, 2],
];

async function session(v: Variant, K: number, N: number, L: number): Promise<() => Promise<number>> {
  const g = new Graph();
  const x = g.input('x', [M, K]);
  const outs: Value[] = [];
  const feeds: Record<string, Float32Array> = { x: randomArray(M * K) };
  for (let i = 0; i < L; i++) {
    const w = g.input(`w${i}`, v === 'matmul' ? [K, N] : [N, K]);
    const y =
      v === 'gemm-tB' ? op.gemm(x, w, false, true) : v === 'matmul' ? op.matmul(x, w) : op.transpose(op.matmul(w, op.transpose(x, [1, 0])), [1, 0]);
    outs.push(op.slice(op.slice(y, 0, 0, 1), 1, 0, 1));
    feeds[`w${i}`] = randomArray(K * N, i + 2);
  }
  const s = await PlainSession.create({ y: op.concat(outs, 1) }, threads);
  return () => s.run(feeds);
}

console.log(`M=${M}, ${threads} threads; GB/s of weights read (median of 15 alternating rounds)`);
for (const [K, N, L] of shapes) {
  const runs = await Promise.all(variants.map((v) => session(v, K, N, L)));
  for (const r of runs) await r();
  const t: number[][] = variants.map(() => []);
  for (let i = 0; i < 15; i++) for (let j = 0; j < runs.length; j++) t[j]!.push(await runs[j]!());
  const bytes = L * K * N * 4;
  console.log(
    `${M}x${K}x${N} (x${L}, ${(bytes / 1e6).toFixed(0)} MB): ` +
      variants.map((v, j) => `${v} ${(bytes / median(t[j]!) / 1e9).toFixed(1)}`).join(', '),
  );
}
