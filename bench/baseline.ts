/**
 * Baselines measured in the same run, with the same backend and thread count as the model:
 * plain ONNX Runtime MatMul (both inputs fed, nothing constant) and memory bandwidth.
 */
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import type { Backend, CompiledGraph } from '../src/runtime/backend.js';
import type { Gemm } from './flops.js';

export function randomArray(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return a;
}

/**
 * Plain MatMul y = a [M, K] x b [K, N]. The graph returns only y[0, 0]: ORT copies outputs into
 * fresh arrays at well under 1 GB/s here, which would otherwise dominate the measurement.
 */
export class MatMulBaseline {
  private readonly sessions = new Map<string, Promise<CompiledGraph>>();
  private readonly lhs = new Map<string, Float32Array>();
  constructor(private readonly backend: Backend) {}

  private session(M: number, K: number, N: number): Promise<CompiledGraph> {
    const key = `${M}x${K}x${N}`;
    let s = this.sessions.get(key);
    if (!s) {
      const g = new Graph();
      const y = op.matmul(g.input('a', [M, K]), g.input('b', [K, N]));
      s = this.backend.compile({ y00: op.slice(op.slice(y, 0, 0, 1), 1, 0, 1) });
      this.sessions.set(key, s);
    }
    return s;
  }

  private activations(M: number, K: number): Float32Array {
    const key = `${M}x${K}`;
    let a = this.lhs.get(key);
    if (!a) this.lhs.set(key, (a = randomArray(M * K, K)));
    return a;
  }

  /** Compile every shape once (session creation is not timed). */
  async prepare(M: number, gemms: Gemm[]): Promise<void> {
    for (const g of gemms) await this.session(M, g.K, g.N);
  }

  /**
   * Seconds to run the GEMMs one after another, each as its own plain MatMul session run.
   * `weights` gives each GEMM's right-hand side: the model's own weight buffer, viewed as [K, N]
   * (so the bytes come from memory as in the model), or a random matrix when absent.
   */
  async run(M: number, gemms: Gemm[], weights?: Map<string, Float32Array>): Promise<number> {
    let total = 0;
    for (const g of gemms) {
      const s = await this.session(M, g.K, g.N);
      const b = weights?.get(g.weight) ?? this.activations(g.K, g.N);
      const a = this.activations(M, g.K);
      const t0 = performance.now();
      await s.run({ a, b });
      total += performance.now() - t0;
    }
    return total / 1e3;
  }
}

/** Single-thread memory copy: bytes copied per second by Float32Array.set of `bytes`. */
export class CopyBandwidth {
  private readonly src: Float32Array;
  private readonly dst: Float32Array;
  constructor(readonly bytes = 256 * 2 ** 20) {
    this.src = new Float32Array(bytes / 4).fill(1);
    this.dst = new Float32Array(bytes / 4).fill(0);
  }
  /** One measurement in bytes per second (bytes copied; a copy also writes as many). */
  sample(): number {
    const t0 = performance.now();
    this.dst.set(this.src);
    return this.bytes / ((performance.now() - t0) / 1e3);
  }
}

/** Read bandwidth with the benchmark's threads: ORT ReduceSum over a fed tensor of `bytes`. */
export class ReadBandwidth {
  private session: Promise<CompiledGraph>;
  private readonly x: Float32Array;
  constructor(backend: Backend, readonly bytes = 256 * 2 ** 20) {
    const rows = bytes / 4 / 1024;
    const g = new Graph();
    this.session = backend.compile({ s: op.reduceSum(g.input('x', [rows, 1024]), [0, 1]) });
    this.x = new Float32Array(rows * 1024).fill(1);
  }
  /** One measurement in bytes read per second. */
  async sample(): Promise<number> {
    const s = await this.session;
    const t0 = performance.now();
    await s.run({ x: this.x });
    return this.bytes / ((performance.now() - t0) / 1e3);
  }
}
