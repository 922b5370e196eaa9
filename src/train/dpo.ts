/**
 * Preference training (DPO and kin): the reference model's log-probabilities are computed once
 * (and cached in the output folder); each step scores chosen and rejected responses under the
 * policy in one batch and minimises the preference loss of the reward margin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Batch, gridFor, packRows } from '../data/batches.js';
import { shuffled } from '../data/rng.js';
import type { LoadedModel } from '../model/load.js';
import type { PeftAdapter } from '../peft/types.js';
import { GraphCache } from '../runtime/backend.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { prepareBatch } from './feeds.js';
import { buildPreferenceStep, buildSequenceLogps } from './graph.js';
import type { Recompute } from '../model/decoder.js';
import type { PreferenceLoss } from './losses.js';
import type { Objective, StepResult } from './loop.js';
import { gradSumSqOf, gradsOf, graphFeeds } from './run.js';

/** A tokenised preference pair: chosen and rejected rows share the prompt; labels mark the response. */
export interface PairExample {
  chosen: { ids: number[]; labels: number[] };
  rejected: { ids: number[]; labels: number[] };
}

export interface DpoOptions {
  batchSize: number; // pairs per micro-batch
  seed: number;
  beta: number;
  loss: PreferenceLoss;
  /** Weight of the chosen responses' per-token NLL added to the loss (RPO; 0 = plain DPO). */
  sftWeight?: number;
  /** What the backward pass recomputes (default 'attention'; decoder.ts `Recompute`). */
  recompute?: Recompute;
}

interface PairBatch {
  idx: number[];
  batch: Batch;
}

function pairBatch(pairs: PairExample[], idx: number[], padId: number, grid?: readonly number[]): PairBatch {
  const rows = [...idx.map((i) => pairs[i]!.chosen), ...idx.map((i) => pairs[i]!.rejected)];
  return { idx, batch: packRows(rows, padId, grid) };
}

function chunks(idx: number[], n: number): number[][] {
  return Array.from({ length: Math.ceil(idx.length / n) }, (_, i) => idx.slice(i * n, (i + 1) * n));
}

/** The one-hot [K, 2P] matrix that sums label slots per row. */
function rowMatrix(labelRows: Int32Array, R: number): Float32Array {
  const m = new Float32Array(labelRows.length * R);
  labelRows.forEach((r, k) => {
    if (r >= 0) m[k * R + r] = 1;
  });
  return m;
}

/**
 * log p(response | prompt) of each row under `adapter` (labels mark the response). Rows are
 * batched longest first (results in the given order): each batch then pads to about its own
 * rows' length, neighbouring batches share a shape, and the largest blocks are allocated first,
 * so later, smaller runs reuse them (the training commands' heap does not shrink: bin/allocator.js).
 */
export async function rowLogps(
  m: LoadedModel,
  adapter: PeftAdapter,
  rows: { ids: number[]; labels: number[] }[],
  batchSize: number,
  cache: GraphCache,
  onBatch?: (rows: number, tokens: number) => void,
): Promise<number[]> {
  const out = new Array<number>(rows.length);
  const grid = gridFor(rows);
  const order = rows.map((_, i) => i).sort((a, b) => rows[b]!.ids.length - rows[a]!.ids.length || a - b);
  for (let i = 0; i < rows.length; i += batchSize) {
    const idx = order.slice(i, i + batchSize);
    const prep = prepareBatch(m.cfg, adapter, packRows(idx.map((j) => rows[j]!), 0, grid));
    const { B, T, K } = prep.shape;
    const run = await cache.get(`logps:${B}x${T}x${K}:${adapter.id}`, () => buildSequenceLogps(m.cfg, adapter, prep.shape));
    const res = await run.run(graphFeeds(run, adapter, m.lm.weights, { ...prep.feeds, label_row: rowMatrix(prep.labelRows, B) }, null));
    idx.forEach((j, r) => (out[j] = (res.logps as Float32Array)[r]!));
    onBatch?.(idx.length, prep.tokens);
  }
  return out;
}

/** Sequence log-probabilities [n][chosen, rejected] under `adapter`. */
export async function sequenceLogps(
  m: LoadedModel,
  adapter: PeftAdapter,
  pairs: PairExample[],
  batchSize: number,
  cache: GraphCache,
  onBatch?: (rows: number, tokens: number) => void,
): Promise<[number, number][]> {
  const lp = await rowLogps(m, adapter, pairs.flatMap((p) => [p.chosen, p.rejected]), 2 * batchSize, cache, onBatch);
  return pairs.map((_, i) => [lp[2 * i]!, lp[2 * i + 1]!]);
}

/** Reference log-probabilities, cached in `file` for this set of pairs (keyed by a hash). */
export async function referenceLogps(
  m: LoadedModel,
  reference: PeftAdapter,
  pairs: PairExample[],
  batchSize: number,
  file: string,
  key: string,
  /** Told after each batch: rows done (two per pair) and their tokens. */
  onBatch?: (rows: number, tokens: number) => void,
): Promise<[number, number][]> {
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { key: string; logps: [number, number][] };
    if (saved.key === key && saved.logps.length === pairs.length) return saved.logps;
  }
  // shapes share malloc's memory (ArenaPolicy), and it all goes back before training starts
  const cache = GraphCache.forShapes(m.lm.backend);
  const logps = await sequenceLogps(m, reference, pairs, batchSize, cache, onBatch);
  await cache.releaseAll();
  writeJsonAtomic(file, { key, logps });
  return logps;
}

export function dpoObjective(
  m: LoadedModel,
  adapter: PeftAdapter,
  train: { pairs: PairExample[]; ref: [number, number][] },
  heldOut: { pairs: PairExample[]; ref: [number, number][] },
  o: DpoOptions,
): Objective<PairBatch> {
  const cache = GraphCache.forShapes(m.lm.backend);
  const padId = m.tokenizer.padId ?? m.eosIds[0] ?? 0;
  // row lengths fitted to all responses (as many as power-of-two buckets would use)
  const grid = gridFor([...train.pairs, ...heldOut.pairs].flatMap((p) => [p.chosen, p.rejected]));

  const run = async (pairs: PairExample[], ref: [number, number][], pb: PairBatch, step: number | null) => {
    const prep = prepareBatch(m.cfg, adapter, pb.batch);
    const P = pb.idx.length;
    const shape = { P, T: prep.shape.T, K: prep.shape.K };
    const withGrads = step !== null;
    const g = await cache.get(`pref:${withGrads ? 'train' : 'eval'}:${o.loss}:${o.beta}:${o.sftWeight ?? 0}:${P}x${shape.T}x${shape.K}:${adapter.id}`, () =>
      buildPreferenceStep(m.cfg, adapter, shape, { kind: o.loss, beta: o.beta, sftWeight: o.sftWeight }, withGrads, { recompute: o.recompute }),
    );
    const refArr = new Float32Array(2 * P);
    pb.idx.forEach((i, j) => {
      refArr[j] = ref[i]![0];
      refArr[P + j] = ref[i]![1];
    });
    const out = await g.run(graphFeeds(g, adapter, m.lm.weights, { ...prep.feeds, label_row: rowMatrix(prep.labelRows, 2 * P), ref_logps: refArr }, step));
    const lp = out.logps as Float32Array;
    const sums = { reward_chosen: 0, reward_rejected: 0, reward_acc: 0, margin: 0 };
    for (let j = 0; j < P; j++) {
      const rc = o.beta * (lp[j]! - refArr[j]!);
      const rr = o.beta * (lp[P + j]! - refArr[P + j]!);
      sums.reward_chosen += rc;
      sums.reward_rejected += rr;
      sums.reward_acc += rc > rr ? 1 : 0;
      sums.margin += rc - rr;
    }
    return { out, sums, P, tokens: prep.tokens };
  };

  return {
    batches: (epoch) => chunks(shuffled(train.pairs.map((_, i) => i), o.seed, epoch), o.batchSize).map((idx) => pairBatch(train.pairs, idx, padId, grid)),
    async step(pb, step): Promise<StepResult> {
      const r = await run(train.pairs, train.ref, pb, step);
      return { lossSum: (r.out.loss_sum as Float32Array)[0]!, weight: r.P, tokens: r.tokens, grads: gradsOf(r.out), gradSumSq: gradSumSqOf(r.out), sums: r.sums };
    },
    evaluate: heldOut.pairs.length
      ? async () => {
          const tot = { loss: 0, reward_acc: 0, margin: 0, n: 0 };
          for (const idx of chunks(heldOut.pairs.map((_, i) => i), o.batchSize)) {
            const r = await run(heldOut.pairs, heldOut.ref, pairBatch(heldOut.pairs, idx, padId, grid), null);
            tot.loss += (r.out.loss_sum as Float32Array)[0]!;
            tot.reward_acc += r.sums.reward_acc;
            tot.margin += r.sums.margin;
            tot.n += r.P;
          }
          return { eval_loss: tot.loss / tot.n, eval_reward_acc: tot.reward_acc / tot.n, eval_margin: tot.margin / tot.n };
        }
      : undefined,
  };
}

export const referenceFile = (outDir: string): string => join(outDir, 'reference_logps.json');
