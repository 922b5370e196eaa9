/**
 * Would fusing projections help? Plain ORT MatMul time of SmolLM2-135M's q, k, v (and gate, up)
 * GEMMs at M = 512 rows as separate products against one product over the concatenated weight,
 * for the forward (x W^T), the activation gradient (dy W) and the weight gradient (dy^T x); the
 * median of 3 rounds, each shape timed as bench/baseline.ts does
 * (`node --import tsx bench/fused-gemms.ts [M]`). BENCHMARKS.md, finding 24.
 */
import { type GemmAB, compareGemmLists } from './baseline.js';
import type { Gemm } from './flops.js';

const M = Number(process.argv[2] ?? 512);
const [C, KV, F] = [576, 192, 1536];
const fwd = (n: number[]): Gemm[] => n.map((N) => ({ weight: '', K: C, N }));
const dx = (n: number[]): Gemm[] => n.map((K) => ({ weight: '', K, N: C }));
const dw = (n: number[]): Gemm[] => n.map((rows) => ({ weight: '', M: rows, K: M, N: C }));
const cases: GemmAB[] = [];
for (const [what, parts] of [['q, k, v', [C, KV, KV]], ['gate, up', [F, F]]] as const) {
  const sum = [parts.reduce((a, b) => a + b, 0)];
  cases.push([`${what} forward`, fwd([...parts]), fwd(sum)], [`${what} d/dx`, dx([...parts]), dx(sum)], [`${what} d/dW`, dw([...parts]), dw(sum)]);
}
await compareGemmLists(M, cases, 3, 'fused');
