/**
 * The host side of a full fine-tuning step on SmolLM2-135M shapes: one AdamW update and one
 * gradient norm over every weight (134.5M float32 parameters as the model's 273 tensors), with
 * the WebAssembly SIMD kernels (src/train/simd.ts) with the moments in the kernels' memory (as
 * AdamW keeps them), with the moments on the JavaScript heap (staged through the kernels' memory
 * per chunk, as before finding 38), and with the JavaScript loops, alternating; median of 5 after
 * one warm-up each (`node --import tsx bench/adamw.ts`).
 */
import { expectedTensorShapes, loadConfig } from '../src/model/config.js';
import { AdamW, gradNorm } from '../src/train/optimizer.js';
import { benchModelDir } from './model.js';
import { median } from './timing.js';

const shapes = [...expectedTensorShapes(loadConfig(benchModelDir(process.env.PLUM_BENCH_MODEL)))];
const params = shapes.map(([name, shape]) => ({ name, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01), decay: true }));
const grads = new Map(params.map((p) => [p.name, new Float32Array(p.data.length).map((_, i) => ((i % 97) - 48) * 1e-4)]));
const count = params.reduce((s, p) => s + p.data.length, 0);
const opts = { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
const staged = new AdamW(params, { ...opts, simd: true });
for (const p of params) staged.m.set(p.name, new Float32Array(p.data.length)), staged.v.set(p.name, new Float32Array(p.data.length));
const variants = { simd: new AdamW(params, { ...opts, simd: true }), staged, js: new AdamW(params, { ...opts, simd: false }) };
const times: Record<string, { adam: number[]; norm: number[] }> = Object.fromEntries(Object.keys(variants).map((k) => [k, { adam: [], norm: [] }]));
for (let i = 0; i < 6; i++) {
  for (const [name, opt] of Object.entries(variants)) {
    let t = performance.now();
    opt.update(grads, 1e-5);
    const adam = performance.now() - t;
    t = performance.now();
    gradNorm(grads, 1, name !== 'js');
    const norm = performance.now() - t;
    if (i > 0) (times[name]!.adam.push(adam), times[name]!.norm.push(norm));
  }
}
console.log(`${(count / 1e6).toFixed(1)}M parameters in ${params.length} tensors`);
for (const [name, t] of Object.entries(times))
  console.log(`${name.padEnd(6)} AdamW ${median(t.adam).toFixed(0)} ms (${((count * 28) / (median(t.adam) / 1e3) / 1e9).toFixed(1)} GB/s at 28 bytes per parameter), gradient norm ${median(t.norm).toFixed(0)} ms`);
