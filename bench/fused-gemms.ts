/**
 * Would fusing projections help? Plain ORT MatMul time of SmolLM2-135M's q, k, v (and gate, up)
 * GEMMs at M = 512 rows as separate products against one product over the concatenated weight,
 * for the forward (x W^T), the activation gradient (dy W) and the weight gradient (dy^T x); the
 * median of 3 rounds, each shape timed as bench/baseline.ts does
 * (`node --import tsx bench/fused-gemms.ts [M]`). BENCHMARKS.md, finding 24.
 */
import { availableParallelism } from 'node:os';
import { MatMulBaseline } from './baseline.js';
import type { Gemm } from './flops.js';
import { median } from './timing.js';

const M = Number(process.argv[2] ?? 512);
const [C, KV, F] = [576, 192, 1536];
const fwd = (n: number[]): Gemm[] => n.map((N) => ({ weight: '', K: C, N }));
const dx = (n: number[]): Gemm[] => n.map((K) => ({ weight: '', K, N: C }));
const dw = (n: number[]): Gemm[] => n.map((rows) => ({ weight: '', M: rows, K: M, N: C }));
const cases: Array<[string, Gemm[], Gemm[]]> = [];
for (const [what, parts] of [['q, k, v', [C, KV, KV]], ['gate, up', [F, F]]] as const) {
  const sum = [parts.reduce((a, b) => a + b, 0)];
  cases.push([`${what} forward`, fwd([...parts]), fwd(sum)], [`${what} d/dx`, dx([...parts]), dx(sum)], [`${what} d/dW`, dw([...parts]), dw(sum)]);
}
const b = new MatMulBaseline(availableParallelism());
for (const [, sep, fused] of cases) await b.prepare(M, [...sep, ...fused]);
const t = cases.map(() => ({ sep: [] as number[], fused: [] as number[] }));
for (let round = 0; round < 3; round++) {
  for (const [i, [, sep, fused]] of cases.entries()) {
    t[i]!.sep.push(await b.run(M, sep, 0.1));
    t[i]!.fused.push(await b.run(M, fused, 0.1));
  }
}
for (const [i, [name]] of cases.entries()) {
  const [s, f] = [median(t[i]!.sep) * 1e3, median(t[i]!.fused) * 1e3];
  console.log(`${name.padEnd(18)} separate ${s.toFixed(2)} ms, fused ${f.toFixed(2)} ms (${(((f - s) / s) * 100).toFixed(1)}%)`);
}
