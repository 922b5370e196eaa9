/**
 * Would decode gain from fused projections? At M rows (decode: 1), SmolLM2-135M's q, k, v (and
 * gate, up) as separate Gemms against one Gemm over the concatenated weight, 30 layers' worth of
 * distinct weights in one ORT session (so they stream from memory as in decode), alternating,
 * median of 15 rounds (`node --import tsx bench/gemv-fused.ts [M]`).
 */
import { availableParallelism } from 'node:os';
import { Graph, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { PlainSession, randomArray } from './baseline.js';
import { median } from './timing.js';

const M = Number(process.argv[2] ?? 1);
const L = 30;
const C = 576;

async function session(parts: number[]): Promise<() => Promise<number>> {
  const g = new Graph();
  const x = g.input('x', [M, C]);
  const outs: Value[] = [];
  const feeds: Record<string, Float32Array> = { x: randomArray(M * C) };
  for (let l = 0; l < L; l++) {
    parts.forEach((N, i) => {
      const name = `w${l}_${i}`;
      outs.push(op.slice(op.slice(op.gemm(x, g.input(name, [N, C]), false, true), 0, 0, 1), 1, 0, 1));
      feeds[name] = randomArray(N * C, l * 7 + i + 2);
    });
  }
  const s = await PlainSession.create({ y: op.concat(outs, 1) }, availableParallelism());
  return () => s.run(feeds);
}

console.log(`M=${M}, ${L} layers, ${availableParallelism()} threads: ms per run (median of 15 alternating rounds)`);
for (const [what, parts] of [['q, k, v', [576, 192, 192]], ['gate, up', [1536, 1536]]] as const) {
  const runs = [await session([...parts]), await session([parts.reduce((a, b) => a + b, 0)])];
  for (const r of runs) await r();
  const t: number[][] = [[], []];
  for (let i = 0; i < 15; i++) for (let j = 0; j < 2; j++) t[j]!.push(await runs[j]!());
  const [a, b] = t.map((x) => median(x) * 1e3) as [number, number];
  const mb = (L * parts.reduce((p, n) => p + n, 0) * C * 4) / 1e6;
  console.log(`${what}: separate ${a.toFixed(2)} ms (${(mb / a).toFixed(1)} GB/s), fused ${b.toFixed(2)} ms (${(mb / b).toFixed(1)} GB/s): ${((b / a - 1) * 100).toFixed(1)}%`);
}
