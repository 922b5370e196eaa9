/**
 * Host-side inputs of a training graph for a padded batch (see src/data/batches.ts): token
 * ids, RoPE tables, the attention bias, and the gathered label positions.
 */
import type { ModelConfig } from '../model/config.js';
import { biasFeeds, packedLayout, sequenceLayout } from '../model/masks.js';
import { bucket } from '../model/lm.js';
import { ropeTables } from '../model/rope.js';
import type { ModelAdapter } from '../model/adapter.js';
import type { HostArray } from '../runtime/backend.js';
import type { TrainShape } from './graph.js';

/** Rows right-padded to T: ids and labels [B*T] (labels[t] = ids[t] where learned, -100 elsewhere). */
export interface PaddedBatch {
  ids: BigInt64Array;
  labels: BigInt64Array;
  lengths: number[];
  /** Packed rows: the lengths of the examples in each row (see src/data/batches.ts). */
  segments?: number[][];
  B: number;
  T: number;
}

export interface PreparedBatch {
  shape: TrainShape;
  feeds: Record<string, HostArray>;
  /** Number of label tokens (the loss is a sum over them). */
  tokens: number;
  /** Row of each label slot (K entries; -1 for padding slots). */
  labelRows: Int32Array;
}

/** Graph inputs for a batch; K (label slots) is a power of two >= the number of labels. */
export function prepareBatch(cfg: ModelConfig, adapter: ModelAdapter, batch: PaddedBatch): PreparedBatch {
  const { B, T } = batch;
  const N = adapter.virtualTokens;
  const Pn = adapter.prefixLength;
  const pos: number[] = [];
  const lab: number[] = [];
  const rowOf: number[] = [];
  if (batch.segments && (N > 0 || Pn > 0)) throw new Error('prepareBatch: packed rows need a method without virtual tokens or a prefix (those are per sequence)');
  const layouts = batch.lengths.map((n, b) => {
    // Position t predicts token t + 1, within one example.
    let start = 0;
    for (const len of batch.segments?.[b] ?? [n]) {
      for (let t = start; t + 1 < start + len; t++) {
        const l = batch.labels[b * T + t + 1]!;
        if (l !== -100n) {
          pos.push(b * T + t);
          lab.push(Number(l));
          rowOf.push(b);
        }
      }
      start += len;
    }
    return batch.segments ? packedLayout(batch.segments[b]!, T) : sequenceLayout(n, N, T, Pn);
  });
  const K = bucket(Math.max(pos.length, 1), 16);
  const labelPos = new BigInt64Array(K);
  const labelIds = new BigInt64Array(K).fill(-100n);
  const labelRows = new Int32Array(K).fill(-1);
  labelRows.set(rowOf);
  pos.forEach((p, i) => {
    labelPos[i] = BigInt(p);
    labelIds[i] = BigInt(lab[i]!);
  });
  const flatPos = Array.from(layouts.flatMap((l) => [...l.queryPos]), (p) => Math.max(p, 0));
  const { cos, sin } = ropeTables(cfg, flatPos);
  const masks = biasFeeds(layouts, N + T, Pn + N + T, cfg);
  return { shape: { B, T, K }, feeds: { ids: batch.ids, cos, sin, ...masks, label_pos: labelPos, label_ids: labelIds }, tokens: pos.length, labelRows };
}
