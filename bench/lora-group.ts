/**
 * Would grouping LoRA factors help? Plain ORT MatMul time of the rank-8 products of LoRA on the
 * projections that share an input (q, k, v read the same normed x; gate and up another) as
 * separate products against one product over the stacked factors, for the forward (x A^T), the
 * factor gradient (dh^T x) and the input gradient (dh A); M = 512 rows, SmolLM2-135M widths,
 * the median of 5 rounds, each list timed as bench/baseline.ts does
 * (`node --import tsx bench/lora-group.ts [r]`). BENCHMARKS.md, finding 30.
 */
import { availableParallelism } from 'node:os';
import { MatMulBaseline } from './baseline.js';
import type { Gemm } from './flops.js';
import { median } from './timing.js';

const M = 512;
const C = 576;
const r = Number(process.argv[2] ?? 8);
const g = (m: number, K: number, N: number): Gemm => ({ weight: '', M: m, K, N });
const cases: Array<[string, Gemm[], Gemm[]]> = [];
for (const [what, n] of [['q, k, v', 3], ['gate, up', 2]] as const) {
  const rep = (x: Gemm): Gemm[] => Array.from({ length: n }, () => x);
  cases.push(
    [`${what} x A^T`, rep(g(M, C, r)), [g(M, C, n * r)]],
    [`${what} dh^T x`, rep(g(r, M, C)), [g(n * r, M, C)]],
    [`${what} dh A`, rep(g(M, r, C)), [g(M, n * r, C)]],
  );
}
const b = new MatMulBaseline(availableParallelism());
for (const [, sep, grouped] of cases) await b.prepare(M, [...sep, ...grouped]);
const t = cases.map(() => ({ sep: [] as number[], grouped: [] as number[] }));
for (let round = 0; round < 5; round++) {
  for (const [i, [, sep, grouped]] of cases.entries()) {
    t[i]!.sep.push(await b.run(M, sep, 0.1));
    t[i]!.grouped.push(await b.run(M, grouped, 0.1));
  }
}
for (const [i, [name]] of cases.entries()) {
  const [s, f] = [median(t[i]!.sep) * 1e3, median(t[i]!.grouped) * 1e3];
  console.log(`${name.padEnd(16)} separate ${s.toFixed(3)} ms, grouped ${f.toFixed(3)} ms (${(((f - s) / s) * 100).toFixed(0)}%)`);
}
