/**
 * The weight gradient of x W^T for W [out, in], computed as ONNX Runtime would run it in a
 * training graph: `gy^T x` (one Gemm with transA, the form for most weights) against
 * `(x^T gy)^T` (an [in, out] Gemm, then a transpose that ORT cannot fold back into the Gemm),
 * for L distinct pairs per shape so that the operands come from memory, alternating, median of 8
 * runs after one warm-up. `node --import tsx bench/head-grad.ts [TOKENS]` (default 512);
 * `SHAPES='[[out,in,L],...]'` for other shapes. The rule it informs: tallGradientTransposed in
 * src/graph/ops.ts (BENCHMARKS.md finding 37).
 */
import { availableParallelism } from 'node:os';
import { Graph, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { OrtBackend } from '../src/runtime/ort.js';
import { randomArray } from './baseline.js';
import { median } from './timing.js';

const M = Number(process.argv[2] ?? 512);
const shapes: [number, number, number][] = process.env.SHAPES
  ? JSON.parse(process.env.SHAPES)
  : [[1536, 576, 30], [576, 1536, 30], [576, 576, 60], [8192, 576, 2], [49152, 576, 1], [151936, 896, 1]];
const backend = new OrtBackend({ threads: availableParallelism() });
const variants: Record<string, (gy: Value, x: Value) => Value> = {
  'gy^T x': (gy, x) => op.gemm(gy, x, true, false),
  '(x^T gy)^T': (gy, x) => {
    const [inF, out] = [x.shape[1]!, gy.shape[1]!];
    return op.reshape(op.transpose(op.reshape(op.gemm(x, gy, true, false), [inF, out, 1]), [1, 0, 2]), [out, inF]);
  },
};
console.log(`weight gradients at ${M} tokens, ${availableParallelism()} threads`);
for (const [out, inF, L] of shapes) {
  const feeds: Record<string, Float32Array> = {};
  for (let i = 0; i < L; i++) (feeds[`gy${i}`] = randomArray(M * out, i + 1)), (feeds[`x${i}`] = randomArray(M * inF, i + 100));
  const runs: Record<string, () => Promise<number>> = {};
  for (const [name, build] of Object.entries(variants)) {
    const g = new Graph();
    const sums: Value[] = [];
    for (let i = 0; i < L; i++) sums.push(op.reduceSum(op.reshape(build(g.input(`gy${i}`, [M, out]), g.input(`x${i}`, [M, inF])), [-1]), [0], true));
    const run = await backend.compile({ y: op.concat(sums, 0) });
    runs[name] = async () => {
      const t = performance.now();
      await run.run(feeds);
      return performance.now() - t;
    };
  }
  const times: Record<string, number[]> = {};
  for (let i = 0; i < 9; i++) for (const [name, f] of Object.entries(runs)) (times[name] ??= []).push(await f());
  const flops = 2 * M * out * inF * L;
  const cells = Object.entries(times).map(([name, ts]) => {
    const ms = median(ts.slice(1));
    return `${name} ${ms.toFixed(1)} ms (${(flops / ms / 1e6).toFixed(0)} GFLOPS)`;
  });
  console.log(`[${out}, ${inF}] x${L}: ${cells.join(' | ')}  rule: ${op.tallGradientTransposed(M, out, inF) ? 'transposed' : 'gy^T x'}`);
}
