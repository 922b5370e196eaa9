/**
 * What the model needs from a PEFT adapter at inference time. Implemented in src/peft; the
 * model layer only sees this interface (layers import upwards only).
 */
import type { Graph, Value } from '../graph/ir.js';
import type { DecoderHooks, KV, WeightInputs } from './decoder.js';

export interface AdapterGraph extends DecoderHooks {
  /** Virtual-token embeddings [N, C] placed before the input embeddings (soft prompt). */
  virtualTokens?: Value;
  /** Trained keys/values per layer [Hkv, N, Dh] placed before every sequence (prefix tuning). */
  prefix?: KV[];
}

export interface ModelAdapter {
  /** Stable id used in compiled-graph cache keys. */
  readonly id: string;
  readonly virtualTokens: number;
  readonly prefixLength: number;
  /** Create the adapter's parameters as graph inputs and return its hooks. */
  attach(g: Graph, w: WeightInputs, opts?: { training?: boolean }): AdapterGraph;
  /** Values for the inputs `attach` created. */
  feeds(): Record<string, Float32Array>;
  /** Per-step inputs of a training graph (e.g. a dropout seed). */
  trainingFeeds?(step: number): Record<string, BigInt64Array>;
  /** Inputs of inference graphs only, derived from the parameters (DoRA's row gains); kept until `changed`. */
  inferenceFeeds?(): Record<string, Float32Array>;
  /** The parameters were changed in place (an optimizer step): forget what was derived from them. */
  changed?(): void;
}
