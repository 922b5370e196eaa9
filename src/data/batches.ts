/**
 * Batching tokenised examples into padded [B, T] int64 tensors.
 *
 * Legend: B = rows in the batch (batchSize, fewer in the last batch), T = padded length: the
 * smallest power of two >= the longest row, at least MIN_T, so that a graph or kernel compiled
 * per shape is reused across batches. Rows are right-padded: ids with padId, labels with -100.
 */
import { z } from 'zod';
import { fail } from '../util/errors.js';
import { parseOrFail } from './issues.js';
import { shuffled } from './rng.js';
import { IGNORE_INDEX } from './tokenize.js';

export const MIN_T = 16;
/** With lengthBuckets, examples are sorted by length within windows of this many batches. */
export const BUCKET_WINDOW_BATCHES = 50;

export interface Batch {
  /** [B * T] token ids, row-major, right-padded with padId. */
  ids: BigInt64Array;
  /** [B * T] labels, -100 where there is no loss and on padding. */
  labels: BigInt64Array;
  /** [B] real length of each row. */
  lengths: number[];
  B: number;
  T: number;
  /** Number of labels that are not -100. */
  lossTokens: number;
}

export interface BatchOptions {
  batchSize: number;
  seed: number;
  epoch: number;
  /** Group examples of similar length into a batch so that little is padding. */
  lengthBuckets?: boolean;
  padId: number;
}
const batchOptionsSchema = z.object({
  batchSize: z.number().int().positive(),
  seed: z.number().int(),
  epoch: z.number().int().nonnegative(),
  lengthBuckets: z.boolean().default(false),
  padId: z.number().int().nonnegative(),
});

/** The padded length for a longest row of n tokens: the smallest power of two >= max(n, MIN_T). */
export function bucketLength(n: number): number {
  let T = MIN_T;
  while (T < n) T *= 2;
  return T;
}

export interface Row {
  ids: readonly number[];
  labels: readonly number[];
}

/** Right-pad rows into one batch (T = the power-of-two bucket of the longest row). */
export function packRows(rows: readonly Row[], padId: number): Batch {
  const B = rows.length;
  const T = bucketLength(Math.max(...rows.map((r) => r.ids.length)));
  const ids = new BigInt64Array(B * T).fill(BigInt(padId));
  const labels = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  let lossTokens = 0;
  rows.forEach((r, b) => {
    for (let t = 0; t < r.ids.length; t++) {
      ids[b * T + t] = BigInt(r.ids[t]!);
      labels[b * T + t] = BigInt(r.labels[t]!);
      if (r.labels[t] !== IGNORE_INDEX) lossTokens++;
    }
  });
  return { ids, labels, lengths: rows.map((r) => r.ids.length), B, T, lossTokens };
}

const chunk = <T>(xs: T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

/**
 * One epoch of batches. The order depends only on (seed, epoch). Without lengthBuckets the
 * examples are shuffled and cut into batches; with it, the shuffled examples are sorted by
 * length within windows of BUCKET_WINDOW_BATCHES batches, cut into batches, and the batch order
 * is shuffled again (transformers' LengthGroupedSampler, with the longest batch not forced first).
 *
 * @example
 * for (const batch of makeBatches(examples, { batchSize: 8, seed: 0, epoch, lengthBuckets: true, padId: tok.padId ?? 0 })) ...
 */
export function makeBatches<E extends Row>(examples: readonly E[], opts: BatchOptions): Batch[] {
  const { batchSize, seed, epoch, lengthBuckets, padId } = parseOrFail(batchOptionsSchema, opts, 'batching');
  if (examples.length === 0) fail('batching: there are no examples to train on; check the data file and --max-length');
  examples.forEach((e, i) => {
    if (e.ids.length === 0 || e.ids.length !== e.labels.length) throw new Error(`example ${i}: ids (${e.ids.length}) and labels (${e.labels.length}) must be non-empty and of equal length`);
  });
  const order = shuffled(examples, seed, epoch);
  if (!lengthBuckets) return chunk(order, batchSize).map((rows) => packRows(rows, padId));
  const groups = chunk(order, batchSize * BUCKET_WINDOW_BATCHES).flatMap((window) =>
    chunk(
      window.slice().sort((a, b) => b.ids.length - a.ids.length),
      batchSize,
    ),
  );
  return shuffled(groups, seed, epoch, 1).map((rows) => packRows(rows, padId));
}
