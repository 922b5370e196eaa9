import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlumError } from '../util/errors.js';
import { bucketLength, lengthGrid, makeBatches, packLength, type Batch } from './batches.js';
import { IGNORE_INDEX } from './tokenize.js';

/** Example i has length lens[i]; ids are 1000*i + t so rows can be traced; loss on the second half. */
function examples(lens: number[]): { ids: number[]; labels: number[] }[] {
  return lens.map((n, i) => {
    const ids = Array.from({ length: n }, (_, t) => 1000 * i + t + 1);
    return { ids, labels: ids.map((x, t) => (t < n / 2 ? IGNORE_INDEX : x)) };
  });
}

/** Example index of each row, in batch order. */
const rowOrder = (batches: Batch[]): number[] => batches.flatMap((b) => b.lengths.map((_, r) => Math.floor(Number(b.ids[r * b.T]! - 1n) / 1000)));
const padding = (batches: Batch[]): number => batches.reduce((n, b) => n + b.B * b.T - b.lengths.reduce((a, x) => a + x, 0), 0);

// a deterministic spread of lengths 1..300
const lens = Array.from({ length: 103 }, (_, i) => 1 + ((i * 37) % 300));

test('bucketLength: powers of two, at least 16', () => {
  assert.deepEqual([1, 16, 17, 32, 33, 300, 1024, 1025].map(bucketLength), [16, 16, 32, 32, 64, 512, 1024, 2048]);
});

test('rows are right-padded with padId (ids) and -100 (labels); T is the bucket of the longest row', () => {
  const ex = examples([3, 20, 5]);
  const [b, ...rest] = makeBatches(ex, { batchSize: 4, seed: 0, epoch: 0, padId: 7 });
  assert.equal(rest.length, 0);
  assert.equal(b!.B, 3);
  assert.equal(b!.T, 32);
  assert.equal(b!.ids.length, 3 * 32);
  for (let r = 0; r < b!.B; r++) {
    const i = rowOrder([b!])[r]!;
    const n = b!.lengths[r]!;
    assert.equal(n, ex[i]!.ids.length);
    assert.deepEqual([...b!.ids.subarray(r * 32, r * 32 + n)].map(Number), ex[i]!.ids);
    assert.deepEqual([...b!.labels.subarray(r * 32, r * 32 + n)].map(Number), ex[i]!.labels);
    assert.ok(b!.ids.subarray(r * 32 + n, (r + 1) * 32).every((x) => x === 7n));
    assert.ok(b!.labels.subarray(r * 32 + n, (r + 1) * 32).every((x) => x === -100n));
  }
  assert.equal(b!.lossTokens, 1 + 10 + 2); // t >= n / 2
});

test('the order is deterministic given (seed, epoch), differs across epochs and seeds, and covers every example once', () => {
  const ex = examples(lens);
  for (const lengthBuckets of [false, true]) {
    const opts = { batchSize: 8, seed: 42, epoch: 0, lengthBuckets, padId: 0 };
    const a = makeBatches(ex, opts);
    assert.deepEqual(makeBatches(ex, opts), a);
    assert.equal(a.length, 13);
    assert.deepEqual(a.map((b) => b.B).sort(), [7, ...Array<number>(12).fill(8)]);
    if (!lengthBuckets) assert.equal(a[12]!.B, 7);
    assert.deepEqual([...rowOrder(a)].sort((x, y) => x - y), lens.map((_, i) => i));
    assert.notDeepEqual(rowOrder(makeBatches(ex, { ...opts, epoch: 1 })), rowOrder(a));
    assert.notDeepEqual(rowOrder(makeBatches(ex, { ...opts, seed: 43 })), rowOrder(a));
  }
});

test('lengthBuckets groups similar lengths: far less padding than random batches', () => {
  const ex = examples(lens);
  const random = padding(makeBatches(ex, { batchSize: 8, seed: 1, epoch: 0, padId: 0 }));
  const bucketed = makeBatches(ex, { batchSize: 8, seed: 1, epoch: 0, lengthBuckets: true, padId: 0 });
  // 103 examples fit in one window (50 batches of 8): the batches are consecutive runs of the lengths sorted longest first
  const sorted = [...lens].sort((x, y) => y - x);
  const runs = Array.from({ length: 13 }, (_, i) => sorted.slice(8 * i, 8 * i + 8));
  const got = bucketed.map((b) => [...b.lengths].sort((x, y) => y - x)).sort((x, y) => y[0]! - x[0]!);
  assert.deepEqual(got, runs);
  assert.ok(padding(bucketed) < random / 2, `bucketed ${padding(bucketed)} vs random ${random}`);
});

test('bad options and empty input fail with one line', () => {
  assert.throws(() => makeBatches(examples([3]), { batchSize: 0, seed: 0, epoch: 0, padId: 0 }), (e: unknown) => e instanceof PlumError && e.message === 'batching: batchSize must be greater than 0 (got 0)');
  assert.throws(() => makeBatches([], { batchSize: 2, seed: 0, epoch: 0, padId: 0 }), (e: unknown) => e instanceof PlumError && /no examples/.test(e.message));
});

test('pack: every example once per epoch, whole and in its row, rows of batchSize x T, little padding, same seed same batches', () => {
  const ex = examples(lens);
  const T = packLength(ex);
  assert.equal(T, 512);
  const opts = { batchSize: 4, seed: 3, epoch: 1, pack: T, padId: 0 };
  const batches = makeBatches(ex, opts);
  assert.ok(batches.filter((b) => b.B !== 4).length <= 1, 'batchSize rows per batch, one partial batch at most');
  const seen: number[] = [];
  for (const b of batches) {
    assert.equal(b.T, T);
    b.segments!.forEach((segs, r) => {
      assert.equal(segs.reduce((a, x) => a + x, 0), b.lengths[r]);
      assert.ok(b.lengths[r]! <= T);
      let at = r * T;
      for (const n of segs) {
        const i = Math.floor(Number(b.ids[at]! - 1n) / 1000);
        assert.deepEqual([...b.ids.subarray(at, at + n)].map(Number), ex[i]!.ids);
        assert.deepEqual([...b.labels.subarray(at, at + n)].map(Number), ex[i]!.labels);
        seen.push(i);
        at += n;
      }
    });
  }
  assert.deepEqual(seen.slice().sort((a, b) => a - b), ex.map((_, i) => i));
  const total = lens.reduce((a, x) => a + x, 0);
  const rows = batches.reduce((n, b) => n + b.B, 0);
  assert.equal(rows, Math.ceil(total / T), `best-fit leaves no row that could have been saved (${rows} rows)`);
  assert.ok(padding(batches) < padding(makeBatches(ex, { batchSize: 4, seed: 3, epoch: 1, lengthBuckets: true, padId: 0 })) / 2);
  assert.deepEqual(makeBatches(ex, opts).map((b) => [...b.ids]), batches.map((b) => [...b.ids]));
  assert.notDeepEqual(makeBatches(ex, { ...opts, epoch: 2 }).map((b) => [...b.ids]), batches.map((b) => [...b.ids]));
});

test('pack: an example longer than the row is an error naming both lengths', () => {
  assert.throws(() => makeBatches(examples([10, 40]), { batchSize: 2, seed: 0, epoch: 0, pack: 32, padId: 0 }), (e: Error) => e instanceof PlumError && /an example has 40 tokens, more than the packed row length 32/.test(e.message));
  assert.throws(() => packLength(examples([10, 40]), 32), /--pack-length 32 is shorter than the longest example \(40 tokens\)/);
  assert.equal(packLength(examples([10, 40]), 48), 48);
  // A corpus-sized list (spreading it into Math.max overflowed the stack).
  const many = Array.from({ length: 200_000 }, (_, i) => ({ ids: [1, 2, 3].slice(0, 1 + (i % 3)), labels: [1, 2, 3].slice(0, 1 + (i % 3)) }));
  assert.equal(packLength(many), 16);
  assert.equal(makeBatches(many, { batchSize: 64, seed: 0, epoch: 0, pack: 16, padId: 0 }).reduce((n, b) => n + b.lossTokens, 0), many.reduce((n, e) => n + e.ids.length, 0));
});

test('lengthGrid: as many lengths as power-of-two buckets, multiples of 16, the fewest padded positions; batches pad to it', () => {
  // one power-of-two bucket (257..512): one length, the longest rounded up to 16
  assert.deepEqual(lengthGrid([290, 300, 301, 318]), [320]);
  // two buckets' worth (<= 256 and 257..512): the split that pads least
  assert.deepEqual(lengthGrid([100, 110, 120, 300, 310]), [128, 320]);
  assert.deepEqual(lengthGrid([100, 110, 120, 250, 300, 310], 2), [128, 320]);
  assert.deepEqual(lengthGrid([5, 6, 7, 8]), [16], 'at least 16');
  assert.deepEqual(lengthGrid([40, 40, 40], 5), [48], 'never more lengths than distinct cells');
  // exhaustive check of optimality on a small case: every 2-length grid of multiples of 16
  const ls = [20, 33, 47, 70, 71, 90, 150, 160];
  const cost = (grid: number[]) => ls.reduce((s, n) => s + grid.find((g) => g >= n)!, 0);
  const grid = lengthGrid(ls, 2);
  let bestCost = Infinity;
  for (let a = 16; a <= 160; a += 16) if (a < 160) bestCost = Math.min(bestCost, cost([a, 160]));
  assert.equal(cost(grid), bestCost, `grid [${grid}] costs ${cost(grid)}, the best 2-length grid ${bestCost}`);
  assert.equal(grid.at(-1), 160, 'the last length holds the longest example');
  // batches take the smallest grid length that holds their longest row
  const ex = examples([100, 110, 120, 300, 310]);
  const batches = makeBatches(ex, { batchSize: 2, seed: 0, epoch: 0, lengthBuckets: true, grid: lengthGrid(ex.map((e) => e.ids.length)), padId: 0 });
  for (const b of batches) assert.equal(b.T, Math.max(...b.lengths) <= 128 ? 128 : 320, `lengths [${b.lengths}] padded to ${b.T}`);
  assert.throws(() => makeBatches(examples([400]), { batchSize: 1, seed: 0, epoch: 0, grid: [320], padId: 0 }), /a row of 400 tokens is longer than every length of the grid \[320\]/);
});
