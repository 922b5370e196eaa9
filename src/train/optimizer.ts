/**
 * AdamW (decoupled weight decay, as torch.optim.AdamW) over host Float32Arrays, updated in place.
 * State (m, v, step) is exposed for checkpoints.
 */
import { adamwSimd, simdArena, simdKernels, sumSquaresSimd, type SimdArena } from './simd.js';
export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /**
   * Update with the WebAssembly SIMD kernel (simd.ts; default true where the runtime has it):
   * 134.5M parameters in ~0.15 s instead of ~0.7 s (bench/adamw.ts). float32 arithmetic, as
   * torch's AdamW; the JavaScript loop computes in float64 and rounds on store.
   */
  simd?: boolean;
}

export interface Trainable {
  name: string;
  data: Float32Array;
  /** Apply weight decay to this tensor (off for norms, biases, soft prompts by default). */
  decay: boolean;
}

export class AdamW {
  step = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  /** The SIMD kernels' memory that holds m and v (null: they are on the JavaScript heap). */
  private readonly arena: SimdArena | null;

  constructor(
    readonly params: Trainable[],
    readonly opts: AdamWOptions,
  ) {
    // m and v in the kernels' own memory where they fit: the update then reads and writes them
    // in place instead of staging them (134.5M parameters: BENCHMARKS.md finding 38)
    this.arena = opts.simd === false ? null : simdArena(params.flatMap((p) => [p.data.length, p.data.length]));
    params.forEach((p, i) => {
      this.m.set(p.name, this.arena?.arrays[2 * i] ?? new Float32Array(p.data.length));
      this.v.set(p.name, this.arena?.arrays[2 * i + 1] ?? new Float32Array(p.data.length));
    });
  }

  /**
   * One update with gradients by name, at learning rate `lr`. The gradient used is
   * `scale * grads` (the loop passes 1 / total weight times the clipping factor, so that the
   * gradients are not rewritten in passes of their own).
   */
  update(grads: Map<string, Float32Array>, lr: number, scale = 1): void {
    this.step++;
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.opts;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    const k = this.opts.simd === false ? null : (this.arena?.kernels ?? simdKernels());
    for (const p of this.params) {
      const g = grads.get(p.name);
      if (!g) throw new Error(`AdamW: no gradient for ${p.name}`);
      const m = this.m.get(p.name)!;
      const v = this.v.get(p.name)!;
      const x = p.data;
      const decay = p.decay ? 1 - lr * weightDecay : 1;
      const stepSize = lr / bc1;
      const sqrtBc2 = Math.sqrt(bc2);
      if (k) {
        adamwSimd(k, x, g, m, v, { b1, b2, scale, decay, stepSize, sqrtBc2, eps });
        continue;
      }
      for (let i = 0; i < x.length; i++) {
        const gi = g[i]! * scale;
        const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
        const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
        x[i] = x[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
      }
    }
  }
}

/** Global L2 norm of `scale * grads` (float64 across chunks; SIMD where available: 134.5M values 285 -> 67 ms). */
export function gradNorm(grads: Map<string, Float32Array>, scale = 1, simd = true): number {
  const k = simd ? simdKernels() : null;
  let sq = 0;
  for (const g of grads.values()) {
    if (k) sq += sumSquaresSimd(k, g);
    else for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  }
  return Math.sqrt(sq) * Math.abs(scale);
}

/** The factor that clips a gradient of L2 norm `norm` to at most `maxNorm` (0 = no clipping), as torch's clip_grad_norm_. */
export function clipFactor(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}
