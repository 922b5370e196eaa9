/**
 * Host-side inputs of a training graph for a batch of rows (right-padded): token ids, RoPE
 * tables, the attention bias, and the gathered label positions.
 */
import type { ModelConfig } from '../model/config.js';
import { attentionBias, sequenceLayout } from '../model/masks.js';
import { bucket } from '../model/lm.js';
import { ropeTables } from '../model/rope.js';
import type { ModelAdapter } from '../model/adapter.js';
import type { HostArray } from '../runtime/backend.js';
import type { TrainShape } from './graph.js';

export interface TrainRow {
  ids: number[];
  /** Same length as ids; labels[t] = ids[t] where position t is learned, -100 elsewhere. */
  labels: number[];
}

export interface PreparedBatch {
  shape: TrainShape;
  feeds: Record<string, HostArray>;
  /** Number of label tokens (the loss is a sum over them). */
  tokens: number;
}

/** Rows padded to T (a power of two >= the longest, at least minT); K = power of two >= labels. */
export function prepareBatch(cfg: ModelConfig, adapter: ModelAdapter, rows: TrainRow[], minT = 16): PreparedBatch {
  const B = rows.length;
  const T = bucket(Math.max(...rows.map((r) => r.ids.length)), minT);
  const N = adapter.virtualTokens;
  const Pn = adapter.prefixLength;
  const ids = new BigInt64Array(B * T);
  const pos: number[] = [];
  const lab: number[] = [];
  const layouts = rows.map((r, b) => {
    if (r.ids.length !== r.labels.length) throw new Error('prepareBatch: ids and labels differ in length');
    r.ids.forEach((id, t) => (ids[b * T + t] = BigInt(id)));
    // Position t predicts token t + 1.
    for (let t = 0; t + 1 < r.ids.length; t++) {
      if (r.labels[t + 1] !== -100) {
        pos.push(b * T + t);
        lab.push(r.labels[t + 1]!);
      }
    }
    return sequenceLayout(r.ids.length, N, T, Pn);
  });
  const K = bucket(Math.max(pos.length, 1), 16);
  const labelPos = new BigInt64Array(K);
  const labelIds = new BigInt64Array(K).fill(-100n);
  pos.forEach((p, i) => {
    labelPos[i] = BigInt(p);
    labelIds[i] = BigInt(lab[i]!);
  });
  const flatPos = Array.from(layouts.flatMap((l) => [...l.queryPos]), (p) => Math.max(p, 0));
  const { cos, sin } = ropeTables(cfg, flatPos);
  const bias = attentionBias(layouts, N + T, Pn + N + T, cfg.slidingWindow);
  return { shape: { B, T, K }, feeds: { ids, cos, sin, bias, label_pos: labelPos, label_ids: labelIds }, tokens: pos.length };
}
