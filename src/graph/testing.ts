/**
 * Gradient checking against central finite differences (JAX's check_grads idea):
 * for a random unit direction d, compare <grad L(x), d> with (L(x + h d) - L(x - h d)) / 2h,
 * where L = sum(f(x) * c) for a fixed random cotangent c.
 *
 * Tolerance: the graphs run in float32 (machine epsilon 1.2e-7). With h = 1e-2 the central
 * difference has truncation error O(h^2 |f'''|) ~ 1e-4 and rounding error
 * ~ eps * |L| / h ~ 1e-5 * |L|, so agreement to ~1e-3 relative is what float32 allows;
 * a wrong rule is off by O(1).
 */
import { Graph, type Value } from './ir.js';
import { grad } from './autodiff.js';
import { mul, reduceSum } from './ops.js';
import type { Backend, HostArray } from '../runtime/backend.js';
import { rng, randn } from '../util/random.js';

export { rng, randn } from '../util/random.js';

export interface GradCheckInput {
  name: string;
  shape: number[];
  /** Values; default: standard normal. */
  data?: Float32Array | BigInt64Array;
  dtype?: 'float32' | 'int64';
  /** Differentiate with respect to this input (float inputs default to true). */
  wrt?: boolean;
}

export interface GradCheckResult {
  analytic: number;
  numeric: number;
  relErr: number;
}

export async function checkGrads(
  backend: Backend,
  inputs: GradCheckInput[],
  f: (...xs: Value[]) => Value,
  opts: { seed?: number; h?: number; directions?: number } = {},
): Promise<GradCheckResult[]> {
  const rand = rng(opts.seed ?? 1);
  const g = new Graph();
  const vals = inputs.map((i) => g.input(i.name, i.shape, i.dtype ?? 'float32'));
  const y = f(...vals);
  const c = g.constant(randn(y.size, rand), y.shape);
  const loss = reduceSum(mul(y, c), y.shape.map((_, i) => i));
  const wrtIdx = inputs.map((i, k) => ((i.dtype ?? 'float32') === 'float32' && i.wrt !== false ? k : -1)).filter((k) => k >= 0);
  const feeds: Record<string, HostArray> = {};
  inputs.forEach((i, k) => (feeds[i.name] = i.data ?? randn(vals[k]!.size, rand)));
  return checkLossGrads(backend, loss, wrtIdx.map((k) => vals[k]!), feeds, { ...opts, seed: (opts.seed ?? 1) + 1 });
}

/**
 * Directional finite-difference check of d loss / d wrt for a graph built by the caller.
 * `wrt` must be graph inputs; `feeds` gives every input the loss needs.
 */
export async function checkLossGrads(
  backend: Backend,
  loss: Value,
  wrt: Value[],
  feeds: Record<string, HostArray>,
  opts: { seed?: number; h?: number; directions?: number } = {},
): Promise<GradCheckResult[]> {
  const rand = rng(opts.seed ?? 1);
  const h = opts.h ?? 1e-2;
  const grads = grad(loss, wrt);
  const outs: Record<string, Value> = { loss };
  grads.forEach((gv, j) => (outs[`grad_${j}`] = gv));
  const compiled = await backend.compile(outs);
  const r0 = await compiled.run(feeds);
  const results: GradCheckResult[] = [];
  for (let t = 0; t < (opts.directions ?? 2); t++) {
    // A unit-norm direction over all of wrt, so the step h is small whatever the parameter count.
    const dirs = wrt.map((w) => randn(w.size, rand));
    const norm = Math.sqrt(dirs.reduce((p, d) => p + d.reduce((q, x) => q + x * x, 0), 0));
    for (const d of dirs) for (let q = 0; q < d.length; q++) d[q]! /= norm;
    let analytic = 0;
    wrt.forEach((_, j) => {
      const gr = r0[`grad_${j}`] as Float32Array;
      const d = dirs[j]!;
      for (let q = 0; q < d.length; q++) analytic += gr[q]! * d[q]!;
    });
    const shifted = async (s: number): Promise<number> => {
      const f = { ...feeds };
      wrt.forEach((w, j) => {
        const x = feeds[w.name!] as Float32Array;
        const d = dirs[j]!;
        f[w.name!] = x.map((v, q) => v + s * h * d[q]!);
      });
      return ((await compiled.run(f)).loss as Float32Array)[0]!;
    };
    const numeric = ((await shifted(1)) - (await shifted(-1))) / (2 * h);
    const relErr = Math.abs(analytic - numeric) / Math.max(1, Math.abs(analytic), Math.abs(numeric));
    results.push({ analytic, numeric, relErr });
  }
  return results;
}
