/**
 * Would AdamW gain from a second thread? The update of 134.5M parameters (SmolLM2-135M's tensors)
 * split by size between the main thread and one worker, the worker's arrays transferred to it and
 * back (ArrayBuffer transfer: no copy, no SharedArrayBuffer, which onnxruntime-node refuses as a
 * feed), against the same update on the main thread alone; both with the SIMD kernel, alternating,
 * median of 7 after one warm-up (`node --import tsx bench/adamw-threads.ts`). BENCHMARKS.md,
 * finding 25.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { expectedTensorShapes, loadConfig } from '../src/model/config.js';
import { type AdamWStep, adamwSimd, simdKernels } from '../src/train/simd.js';
import { benchModelDir } from './model.js';
import { median } from './timing.js';

interface Item { x: Float32Array; g: Float32Array; m: Float32Array; v: Float32Array }
const buffers = (items: Item[]): ArrayBuffer[] => items.flatMap((it) => [it.x, it.g, it.m, it.v].map((a) => a.buffer as ArrayBuffer));
const step: AdamWStep = { b1: 0.9, b2: 0.999, scale: 1, decay: 1, stepSize: 1e-5, sqrtBc2: 0.1, eps: 1e-8 };
const k = simdKernels();
if (!k) throw new Error('this runtime has no WebAssembly SIMD');
const update = (items: Item[]): void => items.forEach((it) => adamwSimd(k, it.x, it.g, it.m, it.v, step));

if (!isMainThread) {
  parentPort!.on('message', (items: Item[]) => {
    update(items);
    parentPort!.postMessage(items, buffers(items));
  });
} else {
  const shapes = [...expectedTensorShapes(loadConfig(benchModelDir(process.env.PLUM_BENCH_MODEL)))];
  let items: Item[] = shapes.map(([, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { x: new Float32Array(n).fill(0.01), g: new Float32Array(n).map((_, i) => ((i % 97) - 48) * 1e-4), m: new Float32Array(n), v: new Float32Array(n) };
  });
  const total = items.reduce((s, it) => s + it.x.length, 0);
  const self = new URL(import.meta.url).href;
  const worker = new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(self)}); })`, { eval: true });
  const two = async (): Promise<void> => {
    const theirs: Item[] = [];
    const mine: Item[] = [];
    let n = 0;
    for (const it of items) ((n += it.x.length) <= total / 2 ? theirs : mine).push(it);
    const back = new Promise<Item[]>((resolve) => worker.once('message', resolve));
    worker.postMessage(theirs, buffers(theirs));
    update(mine);
    items = [...(await back), ...mine];
  };
  const t: Record<'one' | 'two', number[]> = { one: [], two: [] };
  for (let i = 0; i < 8; i++) {
    let s = performance.now();
    update(items);
    if (i > 0) t.one.push(performance.now() - s);
    s = performance.now();
    await two();
    if (i > 0) t.two.push(performance.now() - s);
  }
  await worker.terminate();
  const gbps = (ms: number): string => ((total * 28) / (ms / 1e3) / 1e9).toFixed(1);
  console.log(`${(total / 1e6).toFixed(1)}M parameters: AdamW on 1 thread ${median(t.one).toFixed(0)} ms (${gbps(median(t.one))} GB/s at 28 bytes per parameter), on 2 threads ${median(t.two).toFixed(0)} ms (${gbps(median(t.two))} GB/s)`);
}
