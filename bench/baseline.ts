/**
 * Baselines measured in the same run with the same thread count as the model: plain ONNX Runtime
 * MatMul (both inputs fed, nothing constant) and memory bandwidth.
 *
 * Baseline sessions are created with onnxruntime-node directly, with intra-op spinning off:
 * the replay below switches between sessions every few milliseconds, and a session's idle
 * threads spin for a few ms after each run, taking the core the next session needs (3x slower
 * replays with the default; see BENCHMARKS.md). With spinning off, single-session MatMul speed
 * is unchanged.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { Graph, type Value } from '../src/graph/ir.js';
import { emitOnnx } from '../src/graph/onnx.js';
import * as op from '../src/graph/ops.js';
import type { Gemm } from './flops.js';
import { median } from './timing.js';

/** A plain ORT session over float32 inputs; run() returns its duration in seconds. */
export class PlainSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputs: Value[],
  ) {}
  static async create(outputs: Record<string, Value>, threads: number): Promise<PlainSession> {
    const model = emitOnnx(outputs);
    const session = await ort.InferenceSession.create(model.bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const g = Object.values(outputs)[0]!.graph;
    return new PlainSession(session, model.inputNames.map((n) => g.inputs.find((v) => v.name === n)!));
  }
  async run(feeds: Record<string, Float32Array>): Promise<number> {
    const t: Record<string, ort.Tensor> = {};
    for (const v of this.inputs) t[v.name!] = new ort.Tensor('float32', feeds[v.name!]!, v.shape as number[]);
    const t0 = performance.now();
    await this.session.run(t);
    return (performance.now() - t0) / 1e3;
  }
}

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
  private readonly sessions = new Map<string, Promise<PlainSession>>();
  private readonly arrays = new Map<string, Float32Array>();
  constructor(private readonly threads: number) {}

  private session(M: number, K: number, N: number): Promise<PlainSession> {
    const key = `${M}x${K}x${N}`;
    let s = this.sessions.get(key);
    if (!s) {
      const g = new Graph();
      const y = op.matmul(g.input('a', [M, K]), g.input('b', [K, N]));
      s = PlainSession.create({ y00: op.slice(op.slice(y, 0, 0, 1), 1, 0, 1) }, this.threads);
      this.sessions.set(key, s);
    }
    return s;
  }

  private random(rows: number, cols: number): Float32Array {
    const key = `${rows}x${cols}`;
    let a = this.arrays.get(key);
    if (!a) this.arrays.set(key, (a = randomArray(rows * cols, rows + cols)));
    return a;
  }

  /** Compile every shape once (session creation is not timed). */
  async prepare(M: number, gemms: Gemm[]): Promise<void> {
    for (const g of gemms) await this.session(g.M ?? M, g.K, g.N);
  }

  /**
   * Baseline seconds for a list of GEMMs [M, K] x [K, N]: each distinct shape runs back to back
   * (same inputs) for at least `minS` and 3 calls after one untimed call, and its median time per
   * call counts once per occurrence in the list. This is the best plain ORT does at those shapes, so the ratio to
   * it is a strict one.
   */
  async run(M: number, gemms: Gemm[], minS = 0.02): Promise<number> {
    const shapes = new Map<string, { M: number; K: number; N: number; count: number }>();
    for (const g of gemms) {
      const [m, K, N] = [g.M ?? M, g.K, g.N];
      const e = shapes.get(`${m}x${K}x${N}`) ?? { M: m, K, N, count: 0 };
      e.count++;
      shapes.set(`${m}x${K}x${N}`, e);
    }
    let total = 0;
    for (const { M: m, K, N, count } of shapes.values()) {
      const s = await this.session(m, K, N);
      const feeds = { a: this.random(m, K), b: this.random(K, N) };
      // the first call after switching sessions wakes the pool's threads: left out; then the
      // median call, so that one preempted call does not move the baseline
      await s.run(feeds);
      const ts: number[] = [];
      let t = 0;
      do {
        ts.push(await s.run(feeds));
        t += ts.at(-1)!;
      } while (t < minS || ts.length < 3);
      total += count * median(ts);
    }
    return total;
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
  private session: Promise<PlainSession>;
  private readonly x: Float32Array;
  constructor(threads: number, readonly bytes = 256 * 2 ** 20) {
    const rows = bytes / 4 / 1024;
    const g = new Graph();
    this.session = PlainSession.create({ s: op.reduceSum(g.input('x', [rows, 1024]), [0, 1]) }, threads);
    this.x = new Float32Array(rows * 1024).fill(1);
  }
  /** One measurement in bytes read per second. */
  async sample(): Promise<number> {
    return this.bytes / (await (await this.session).run({ x: this.x }));
  }
}

/** One A/B of GEMM lists: a name, the separate products, and the one(s) that would replace them. */
export type GemmAB = [name: string, separate: Gemm[], replacement: Gemm[]];

/**
 * Plain ORT MatMul time of each case's two lists, alternated for `rounds` rounds (each list timed
 * as MatMulBaseline.run does); prints the medians and the change, labelled `label`.
 */
export async function compareGemmLists(M: number, cases: GemmAB[], rounds: number, label: string): Promise<void> {
  const b = new MatMulBaseline(availableParallelism());
  for (const [, sep, rep] of cases) await b.prepare(M, [...sep, ...rep]);
  const t = cases.map(() => ({ sep: [] as number[], rep: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, [, sep, rep]] of cases.entries()) {
      t[i]!.sep.push(await b.run(M, sep, 0.1));
      t[i]!.rep.push(await b.run(M, rep, 0.1));
    }
  }
  for (const [i, [name]] of cases.entries()) {
    const [s, f] = [median(t[i]!.sep) * 1e3, median(t[i]!.rep) * 1e3];
    console.log(`${name.padEnd(18)} separate ${s.toFixed(3)} ms, ${label} ${f.toFixed(3)} ms (${(((f - s) / s) * 100).toFixed(1)}%)`);
  }
}
