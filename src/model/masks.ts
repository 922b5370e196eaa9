/**
 * Host-side attention masks: additive biases (0 = attend, NEG = masked) laid out [B, 1, T, S].
 * Computing them here keeps the graph static and lets one graph serve causal, padded,
 * cached and sliding-window attention.
 */
import type { ModelConfig } from './config.js';

export const NEG = -1e9;

export interface RowLayout {
  /** For each key slot s in [0, S): the absolute position held there, or -1 if empty. */
  keyPos: Int32Array;
  /** For each query t in [0, T): its absolute position, or -1 for padding. */
  queryPos: Int32Array;
  /**
   * Packed rows: the example each key slot / query belongs to. A query attends only to keys of
   * its own example (positions restart at each one). Absent: one sequence per row.
   */
  keySeg?: Int32Array;
  querySeg?: Int32Array;
}

/** bias[b, 0, t, s] = 0 iff key s is filled, not in the future of query t, and inside the window. */
export function attentionBias(rows: RowLayout[], T: number, S: number, slidingWindow: number | null): Float32Array {
  const out = new Float32Array(rows.length * T * S).fill(NEG);
  rows.forEach((r, b) => {
    for (let t = 0; t < T; t++) {
      const qp = r.queryPos[t]!;
      const base = (b * T + t) * S;
      if (qp < 0) {
        out[base] = 0; // padding query: attend to slot 0 only (keeps softmax finite; output unused)
        continue;
      }
      const qs = r.querySeg?.[t];
      for (let s = 0; s < S; s++) {
        const kp = r.keyPos[s]!;
        if (kp < 0 || kp > qp) continue;
        if (qs !== undefined && r.keySeg![s] !== qs) continue;
        if (slidingWindow !== null && qp - kp >= slidingWindow) continue;
        out[base + s] = 0;
      }
    }
  });
  return out;
}

type WindowConfig = Pick<ModelConfig, 'slidingWindow' | 'layerTypes'>;

/** Some layers use the sliding window and others attend fully (Qwen with max_window_layers, layer_types). */
export function mixedWindows(cfg: WindowConfig): boolean {
  return cfg.slidingWindow !== null && cfg.layerTypes.includes('full_attention') && cfg.layerTypes.includes('sliding_attention');
}

/**
 * The attention-bias feeds of a model's graph: `bias` [B, 1, T, S] for its layers (with the
 * window when every layer slides), and `bias_window` for the sliding layers when they are mixed.
 */
export function biasFeeds(rows: RowLayout[], T: number, S: number, cfg: WindowConfig): { bias: Float32Array; bias_window?: Float32Array } {
  if (cfg.slidingWindow === null) return { bias: attentionBias(rows, T, S, null) };
  if (!mixedWindows(cfg)) return { bias: attentionBias(rows, T, S, cfg.slidingWindow) };
  return { bias: attentionBias(rows, T, S, null), bias_window: attentionBias(rows, T, S, cfg.slidingWindow) };
}

/**
 * Layout of one row run without a cache: Pn adapter-prefix slots, then N virtual tokens and
 * n real tokens (positions Pn, Pn+1, ...), padded to N + T queries.
 */
export function sequenceLayout(n: number, N: number, T: number, Pn: number): RowLayout {
  const Tp = N + T;
  const queryPos = new Int32Array(Tp).fill(-1);
  for (let t = 0; t < N + n; t++) queryPos[t] = Pn + t;
  const keyPos = new Int32Array(Pn + Tp);
  for (let s = 0; s < Pn; s++) keyPos[s] = s;
  keyPos.set(queryPos, Pn);
  return { keyPos, queryPos };
}

/**
 * Layout of a packed row (no cache, no adapter prefix or virtual tokens): examples of the
 * given lengths end to end, each at positions 0, 1, ..., padded to T queries.
 */
export function packedLayout(segments: readonly number[], T: number): RowLayout {
  const queryPos = new Int32Array(T).fill(-1);
  const querySeg = new Int32Array(T).fill(-1);
  let at = 0;
  segments.forEach((n, i) => {
    for (let t = 0; t < n; t++) {
      queryPos[at + t] = t;
      querySeg[at + t] = i;
    }
    at += n;
  });
  if (at > T) throw new Error(`packedLayout: segments of ${at} tokens do not fit ${T}`);
  return { keyPos: queryPos.slice(), queryPos, keySeg: querySeg.slice(), querySeg };
}
