/**
 * Batching tokenised examples into padded [B, T] int64 tensors.
 *
 * Legend: B = rows in the batch (batchSize, fewer in the last batch), T = padded length: the
 * smallest length of a fixed set >= the longest row, so that a graph or kernel compiled per shape
 * is reused across batches. By default the set is the powers of two from MIN_T; training takes
 * one fitted to its data (lengthGrid). Rows are right-padded: ids with padId, labels with -100.
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
  /**
   * Packed batches only: for each row, the lengths of the examples it holds, in order (they sum
   * to lengths[b]). Attention stays within each example and positions restart at each one.
   */
  segments?: number[][];
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
  /**
   * Pack several examples into each row (HF TRL's `packing`): every batch is `batchSize` rows
   * of `pack` tokens (at least the longest example; see packLength), so that batchSize counts
   * rows, not examples. lengthBuckets does not apply.
   */
  pack?: number;
  /**
   * Row lengths to pad to (ascending; each batch takes the smallest that holds its longest row),
   * e.g. from lengthGrid; default the powers of two from MIN_T.
   */
  grid?: readonly number[];
  padId: number;
}
const batchOptionsSchema = z.object({
  batchSize: z.number().int().positive(),
  seed: z.number().int(),
  epoch: z.number().int().nonnegative(),
  lengthBuckets: z.boolean().default(false),
  pack: z.number().int().positive().optional(),
  grid: z.array(z.number().int().positive()).min(1).optional(),
  padId: z.number().int().nonnegative(),
});

/** The padded length for a longest row of n tokens: the smallest power of two >= max(n, MIN_T). */
export function bucketLength(n: number): number {
  let T = MIN_T;
  while (T < n) T *= 2;
  return T;
}

/**
 * Row lengths for padding examples of these lengths: at most `maxLengths` of them (default: as
 * many as the power-of-two buckets the lengths fall into, so that no more graphs are compiled
 * than with those), multiples of MIN_T, the last one holding the longest example, placed so that
 * padding every example to the smallest one that holds it leaves the fewest padded positions
 * (an exact partition of the sorted lengths by dynamic programming). Training examples of
 * 290-320 tokens pad to 320 instead of 512: 40% of a step's positions were padding.
 */
export function lengthGrid(lengths: readonly number[], maxLengths?: number): number[] {
  if (lengths.length === 0) throw new Error('lengthGrid: no lengths');
  // counts per candidate length (multiples of MIN_T)
  const byCell = new Map<number, number>();
  for (const n of lengths) {
    const cell = Math.max(1, Math.ceil(n / MIN_T)) * MIN_T;
    byCell.set(cell, (byCell.get(cell) ?? 0) + 1);
  }
  const cells = [...byCell.keys()].sort((a, b) => a - b);
  const counts = cells.map((c) => byCell.get(c)!);
  const k = Math.min(cells.length, maxLengths ?? new Set(lengths.map(bucketLength)).size);
  if (!(k >= 1)) throw new Error(`lengthGrid: maxLengths must be at least 1 (got ${maxLengths})`);
  const n = cells.length;
  const before = [0]; // examples in cells[0..i)
  for (const c of counts) before.push(before.at(-1)! + c);
  // best[j][i]: fewest positions for cells[0..i] in j+1 groups, the last ending at cell i
  const best: number[][] = [cells.map((c, i) => c * before[i + 1]!)];
  const from: number[][] = [cells.map(() => -1)];
  for (let j = 1; j < k; j++) {
    const row: number[] = [];
    const arg: number[] = [];
    for (let i = 0; i < n; i++) {
      let b = Infinity;
      let a = -1;
      for (let h = j - 1; h < i; h++) {
        const cost = best[j - 1]![h]! + cells[i]! * (before[i + 1]! - before[h + 1]!);
        if (cost < b) (b = cost), (a = h);
      }
      row.push(b);
      arg.push(a);
    }
    best.push(row);
    from.push(arg);
  }
  // the best number of groups <= k (more groups never cost more, so k where it is reachable)
  let j = k - 1;
  while (j > 0 && !Number.isFinite(best[j]![n - 1]!)) j--;
  const grid: number[] = [];
  for (let i = n - 1; i >= 0 && j >= 0; i = from[j]![i]!, j--) grid.push(cells[i]!);
  return grid.reverse();
}

/** lengthGrid of these rows' lengths, or undefined (powers of two) when there are none. */
export function gridFor(rows: readonly { ids: readonly number[] }[]): number[] | undefined {
  return rows.length ? lengthGrid(rows.map((r) => r.ids.length)) : undefined;
}

/** The smallest length of `grid` that holds n tokens (powers of two from MIN_T without a grid). */
function rowLength(n: number, grid?: readonly number[]): number {
  if (!grid) return bucketLength(n);
  const T = grid.find((g) => g >= n);
  if (T === undefined) throw new Error(`batching: a row of ${n} tokens is longer than every length of the grid [${grid.join(', ')}]`);
  return T;
}

export interface Row {
  ids: readonly number[];
  labels: readonly number[];
}

/** Right-pad rows into one batch (T = the smallest grid length, by default power of two, >= the longest row). */
export function packRows(rows: readonly Row[], padId: number, grid?: readonly number[]): Batch {
  return fillRows(rows, rowLength(longestOf(rows), grid), padId);
}

/**
 * Rows of T tokens, each holding whole examples end to end (right-padded), with `segments`
 * giving the examples' lengths per row.
 */
export function packSegments(rows: readonly (readonly Row[])[], T: number, padId: number): Batch {
  const flat = rows.map((examples) => ({ ids: examples.flatMap((e) => [...e.ids]), labels: examples.flatMap((e) => [...e.labels]) }));
  for (const r of flat) if (r.ids.length > T) throw new Error(`packSegments: a row of ${r.ids.length} tokens does not fit ${T}`);
  return { ...fillRows(flat, T, padId), segments: rows.map((examples) => examples.map((e) => e.ids.length)) };
}

/** Rows right-padded to T: ids with padId, labels with -100. */
function fillRows(rows: readonly Row[], T: number, padId: number): Batch {
  const B = rows.length;
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

/** The longest example (a loop: spreading 100k+ lengths into Math.max overflows the stack). */
const longestOf = (examples: readonly Row[]): number => examples.reduce((m, e) => Math.max(m, e.ids.length), 0);

/** The row length for packing: `requested` if given (it must hold the longest example), else the power-of-two bucket of the longest example. */
export function packLength(examples: readonly Row[], requested?: number): number {
  const longest = longestOf(examples);
  if (requested === undefined) return bucketLength(longest);
  if (requested < longest) fail(`--pack-length ${requested} is shorter than the longest example (${longest} tokens); raise it or lower --max-length`);
  return requested;
}

/**
 * Best-fit decreasing: examples, longest first, each into the row whose free room fits it most
 * tightly (a new row when none has room). O(examples x T). Ties keep the given order, so the
 * result depends only on it.
 */
function bestFitDecreasing<E extends Row>(examples: readonly E[], T: number): E[][] {
  const rows: E[][] = [];
  // byFree[f]: rows with exactly f free slots (a stack: the latest row first).
  const byFree: number[][] = Array.from({ length: T + 1 }, () => []);
  for (const e of examples.slice().sort((x, y) => y.ids.length - x.ids.length)) {
    const n = e.ids.length;
    let f = n;
    while (f <= T && byFree[f]!.length === 0) f++;
    let row: number;
    if (f > T) {
      row = rows.length;
      rows.push([]);
      f = T;
    } else row = byFree[f]!.pop()!;
    rows[row]!.push(e);
    byFree[f - n]!.push(row);
  }
  return rows;
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
  const { batchSize, seed, epoch, lengthBuckets, pack, grid, padId } = parseOrFail(batchOptionsSchema, opts, 'batching');
  if (examples.length === 0) fail('batching: there are no examples to train on; check the data file and --max-length');
  examples.forEach((e, i) => {
    if (e.ids.length === 0 || e.ids.length !== e.labels.length) throw new Error(`example ${i}: ids (${e.ids.length}) and labels (${e.labels.length}) must be non-empty and of equal length`);
  });
  const order = shuffled(examples, seed, epoch);
  if (pack !== undefined) {
    // The shuffled epoch packed best-fit decreasing (few padded slots), rows cut into batches,
    // batch order shuffled again.
    const longest = longestOf(examples);
    if (longest > pack) fail(`batching: an example has ${longest} tokens, more than the packed row length ${pack}`);
    const groups = chunk(bestFitDecreasing(order, pack), batchSize);
    return shuffled(groups, seed, epoch, 1).map((rows) => packSegments(rows, pack, padId));
  }
  if (!lengthBuckets) return chunk(order, batchSize).map((rows) => packRows(rows, padId, grid));
  const groups = chunk(order, batchSize * BUCKET_WINDOW_BATCHES).flatMap((window) =>
    chunk(
      window.slice().sort((a, b) => b.ids.length - a.ids.length),
      batchSize,
    ),
  );
  return shuffled(groups, seed, epoch, 1).map((rows) => packRows(rows, padId, grid));
}
