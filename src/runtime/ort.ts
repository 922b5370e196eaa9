/**
 * onnxruntime-node backend: serialise to ONNX, create an InferenceSession with
 * intra-op threads = cores and full graph optimisation.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { Value } from '../graph/ir.js';
import { emitOnnx } from '../graph/onnx.js';
import type { Backend, CompileOptions, CompiledGraph, HostArray } from './backend.js';

const ORT_TYPE = { float32: 'float32', int64: 'int64', bool: 'bool', uint8: 'uint8' } as const;

export interface OrtOptions {
  threads?: number;
  /** Dump the ONNX model to this path (debugging). */
  dumpPath?: string;
  /**
   * Write an ORT profile (chrome-trace JSON, one per session, named `<prefix>_<date>.json`) when
   * the session is released. The default backend takes it from PLUM_ORT_PROFILE.
   */
  profilePrefix?: string;
  /**
   * Treat denormal floats as zero in ORT's threads (default true). A trained model's attention
   * has near-zero probabilities and gradients that are denormal, and x86 arithmetic on denormals
   * is many times slower: one full fine-tuning step of the micro preset (trained weights, 32 x
   * 128) 605 / 624 -> 529 / 527 ms, with one layer's attention matmuls 5x slower than the
   * others' before (BENCHMARKS.md). The default backend keeps them when
   * PLUM_ORT_DENORMALS=keep (for A/B runs).
   */
  denormalsAsZero?: boolean;
  /**
   * ORT's CPU memory arena for every session, whatever its compile options say (A/B runs; the
   * default backend takes it from PLUM_ORT_ARENA=on|off). Unset: as each compile asks, default on.
   */
  forceCpuArena?: boolean;
}

export class OrtBackend implements Backend {
  constructor(private readonly opts: OrtOptions = {}) {}

  async compile(outputs: Record<string, Value>, opts: CompileOptions = {}): Promise<CompiledGraph> {
    const model = emitOnnx(outputs);
    if (this.opts.dumpPath) (await import('node:fs')).writeFileSync(this.opts.dumpPath, model.bytes);
    const inputsByName = new Map<string, Value>();
    for (const v of Object.values(outputs)) for (const i of v.graph.inputs) inputsByName.set(i.name!, i);
    const session = await ort.InferenceSession.create(model.bytes, {
      intraOpNumThreads: this.opts.threads ?? availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // No memory pattern: with it, ORT plans one block for all of a run's intermediates at their
      // planned peak and keeps it per session; without it, tensors come from the arena as they
      // live and die. Training peak memory (SmolLM2-135M shapes, 4 x 128): soft prompt 3.52 ->
      // 2.16 GB, LoRA 3.78 -> 2.33 GB, full 5.78 -> 4.11 GB; prefill, decode and train-step
      // speed unchanged within noise (A/B in BENCHMARKS.md).
      enableMemPattern: false,
      enableCpuMemArena: this.opts.forceCpuArena ?? opts.cpuArena ?? true,
      ...(this.opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: this.opts.profilePrefix } : {}),
      // Stop the intra-op pool's threads spinning after a run: Plum alternates sessions (length
      // buckets, policy/reference, decode of several caches), and a spinning idle pool takes the
      // cores the next session needs (A/B in BENCHMARKS.md: 54.9 -> 36.9 ms/token interleaved).
      extra: { session: { force_spinning_stop: '1', set_denormal_as_zero: this.opts.denormalsAsZero === false ? '0' : '1' } },
    });
    const needed = model.inputNames.map((n) => inputsByName.get(n)!);
    let inFlight = 0;
    let released = false;
    let onIdle: (() => void) | null = null;
    return {
      inputNames: model.inputNames,
      outputNames: model.outputNames,
      async release(): Promise<void> {
        if (released) return;
        released = true;
        if (inFlight > 0) await new Promise<void>((resolve) => (onIdle = resolve));
        await session.release();
      },
      async run(feeds: Record<string, HostArray>): Promise<Record<string, HostArray>> {
        if (released) throw new Error('run: this compiled graph was released');
        const ortFeeds: Record<string, ort.Tensor> = {};
        for (const v of needed) {
          const data = feeds[v.name!];
          if (!data) throw new Error(`run: missing input "${v.name}"`);
          if (data.length !== v.size) throw new Error(`run: input "${v.name}" has ${data.length} values, expected [${v.shape.join(',')}]`);
          const arr = v.dtype === 'bool' && !(data instanceof Uint8Array) ? Uint8Array.from(data as Float32Array) : data;
          ortFeeds[v.name!] = new ort.Tensor(ORT_TYPE[v.dtype], arr as never, v.shape as number[]);
        }
        inFlight++;
        let res: ort.InferenceSession.OnnxValueMapType;
        try {
          res = await session.run(ortFeeds);
        } finally {
          if (--inFlight === 0 && onIdle) (onIdle as () => void)();
        }
        const out: Record<string, HostArray> = {};
        for (const name of model.outputNames) out[name] = res[name]!.data as HostArray;
        return out;
      },
    };
  }
}

let defaultBackend: Backend | null = null;
/** The process-wide default backend (created lazily; pass your own to control threads). */
export function ortBackend(): Backend {
  const env = process.env;
  const forceCpuArena = env.PLUM_ORT_ARENA === 'on' ? true : env.PLUM_ORT_ARENA === 'off' ? false : undefined;
  return (defaultBackend ??= new OrtBackend({ profilePrefix: env.PLUM_ORT_PROFILE || undefined, denormalsAsZero: env.PLUM_ORT_DENORMALS !== 'keep', forceCpuArena }));
}
