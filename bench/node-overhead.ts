/**
 * ONNX Runtime's cost per node, apart from the work it does: chains of N cheap nodes (Add of a
 * fed [1, 64] tensor, Neg, Neg + Reshape pairs) in one session each, with Plum's session options
 * (src/runtime/ort.ts), median of 200 runs after 20 warm-ups, against the same graph with no
 * chain. `node --import tsx bench/node-overhead.ts` (BENCHMARKS.md finding 39).
 */
import { Graph, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { OrtBackend } from '../src/runtime/ort.js';
import { median } from './timing.js';

const backend = new OrtBackend({});
type Kind = 'add' | 'neg' | 'neg+reshape';

async function chain(n: number, kind: Kind): Promise<number> {
  const g = new Graph();
  const x = g.input('x', [1, 64]);
  const b = g.input('b', [1, 64]);
  let y: Value = x;
  for (let i = 0; i < n; i++) y = kind === 'add' ? op.add(y, b) : kind === 'neg' ? op.neg(y) : op.reshape(op.neg(y), i % 2 ? [1, 64] : [64, 1]);
  const run = await backend.compile({ y: op.add(op.reshape(y, [1, 64]), b) });
  const feeds = { x: new Float32Array(64).fill(1), b: new Float32Array(64).fill(0.5) };
  for (let i = 0; i < 20; i++) await run.run(feeds);
  const ts: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await run.run(feeds);
    ts.push(performance.now() - t);
  }
  await run.release?.();
  return median(ts);
}

for (const kind of ['add', 'neg', 'neg+reshape'] as Kind[]) {
  const base = await chain(0, kind);
  for (const n of [100, 400, 850]) {
    const ms = await chain(n, kind);
    const nodes = kind === 'neg+reshape' ? 2 * n : n;
    console.log(`${kind.padEnd(11)} ${String(nodes).padStart(4)} nodes: ${ms.toFixed(3)} ms per run, ${(((ms - base) / nodes) * 1000).toFixed(2)} us per node (empty graph ${base.toFixed(3)} ms)`);
  }
}
