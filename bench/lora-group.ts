/**
 * Would grouping LoRA factors help? Plain ORT MatMul time of the rank-8 products of LoRA on the
 * projections that share an input (q, k, v read the same normed x; gate and up another) as
 * separate products against one product over the stacked factors, for the forward (x A^T), the
 * factor gradient (dh^T x) and the input gradient (dh A); M = 512 rows, SmolLM2-135M widths,
 * the median of 5 rounds, each list timed as bench/baseline.ts does
 * (`node --import tsx bench/lora-group.ts [r]`). BENCHMARKS.md, finding 30.
 */
import { type GemmAB, compareGemmLists } from './baseline.js';
import type { Gemm } from './flops.js';

const M = 512;
const C = 576;
const r = Number(process.argv[2] ?? 8);
const g = (m: number, K: number, N: number): Gemm => ({ weight: '', M: m, K, N });
const cases: GemmAB[] = [];
for (const [what, n] of [['q, k, v', 3], ['gate, up', 2]] as const) {
  const rep = (x: Gemm): Gemm[] => Array.from({ length: n }, () => x);
  cases.push(
    [`${what} x A^T`, rep(g(M, C, r)), [g(M, C, n * r)]],
    [`${what} dh^T x`, rep(g(r, M, C)), [g(n * r, M, C)]],
    [`${what} dh A`, rep(g(M, r, C)), [g(M, n * r, C)]],
  );
}
await compareGemmLists(M, cases, 5, 'grouped');
