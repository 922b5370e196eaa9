/**
 * Supervised fine-tuning objective: next-token cross-entropy on the labelled (assistant /
 * completion) tokens; held-out loss, token accuracy and exact match of greedy completions.
 */
import { type Batch, gridFor, makeBatches } from '../data/batches.js';
import type { SftExample } from '../data/dataset.js';
import { generate } from '../model/generate.js';
import type { LoadedModel } from '../model/load.js';
import type { PeftAdapter } from '../peft/types.js';
import { GraphCache } from '../runtime/backend.js';
import { prepareBatch } from './feeds.js';
import { buildSftStep } from './graph.js';
import type { Recompute } from '../model/decoder.js';
import type { Objective, StepResult } from './loop.js';
import { gradSumSqOf, gradsOf, graphFeeds } from './run.js';

export interface SftObjectiveOptions {
  batchSize: number;
  seed: number;
  lengthBuckets: boolean;
  /** Pack examples into rows of this many tokens (batchSize then counts rows); see makeBatches. */
  pack?: number;
  /** Held-out examples to check by greedy generation (0 = none). */
  exactMatchLimit: number;
  /** What the backward pass recomputes (default 'attention'; decoder.ts `Recompute`). */
  recompute?: Recompute;
}

/** Prompt (tokens before the first label) and expected completion (the first run of labels). */
export function promptAndTarget(e: { ids: number[]; labels: number[] }): { prompt: number[]; target: number[] } {
  const first = e.labels.findIndex((l) => l !== -100);
  if (first <= 0) return { prompt: e.ids.slice(0, 1), target: [] };
  let end = first;
  while (end < e.labels.length && e.labels[end] !== -100) end++;
  return { prompt: e.ids.slice(0, first), target: e.ids.slice(first, end) };
}

export function sftObjective(m: LoadedModel, adapter: PeftAdapter, train: SftExample[], heldOut: SftExample[], o: SftObjectiveOptions): Objective<Batch> {
  const cache = GraphCache.forShapes(m.lm.backend);
  const padId = m.tokenizer.padId ?? m.eosIds[0] ?? 0;
  const weights = m.lm.weights;
  // Row lengths fitted to the data (as many as power-of-two buckets would use, so no more
  // compiled graphs): training and evaluation batches pad to them.
  const grid = gridFor([...train, ...heldOut]);

  const runBatch = async (batch: Batch, step: number | null): Promise<{ out: Record<string, Float32Array>; tokens: number }> => {
    const prep = prepareBatch(m.cfg, adapter, batch);
    const { B, T, K } = prep.shape;
    const train = step !== null;
    const run = await cache.get(`sft:${train ? 'train' : 'eval'}:${B}x${T}x${K}:${adapter.id}`, () => buildSftStep(m.cfg, adapter, prep.shape, train, { recompute: o.recompute }));
    const out = (await run.run(graphFeeds(run, adapter, weights, prep.feeds, step))) as Record<string, Float32Array>;
    return { out, tokens: prep.tokens };
  };

  const exactMatch = async (): Promise<number> => {
    const sample = heldOut.slice(0, o.exactMatchLimit);
    let hits = 0;
    for (let i = 0; i < sample.length; i += 16) {
      const chunk = sample.slice(i, i + 16).map(promptAndTarget);
      const gens = await generate(m.lm, chunk.map((c) => c.prompt), {
        temperature: 0, topK: 0, topP: 1, seed: 0, eosIds: m.eosIds, adapter,
        maxTokens: Math.max(...chunk.map((c) => c.target.length)) + 4,
      });
      const text = (ids: number[]): string => m.tokenizer.decode(ids, { skipSpecialTokens: true }).trim();
      gens.forEach((g, j) => {
        if (text(g.tokens) === text(chunk[j]!.target)) hits++;
      });
    }
    return sample.length ? hits / sample.length : NaN;
  };

  return {
    batches: (epoch) => makeBatches(train, { batchSize: o.batchSize, seed: o.seed, epoch, lengthBuckets: o.lengthBuckets, pack: o.pack, grid, padId }),
    async step(batch, step): Promise<StepResult> {
      const { out, tokens } = await runBatch(batch, step);
      return { lossSum: out.loss_sum![0]!, weight: tokens, tokens, grads: gradsOf(out), gradSumSq: gradSumSqOf(out), sums: { token_acc: out.correct![0]! } };
    },
    evaluate: heldOut.length
      ? async () => {
          let loss = 0;
          let correct = 0;
          let tokens = 0;
          for (const b of makeBatches(heldOut, { batchSize: o.batchSize, seed: 0, epoch: 0, lengthBuckets: true, pack: o.pack, grid, padId })) {
            const r = await runBatch(b, null);
            loss += r.out.loss_sum![0]!;
            correct += r.out.correct![0]!;
            tokens += r.tokens;
          }
          const res: Record<string, number> = { eval_loss: loss / Math.max(tokens, 1), eval_token_acc: correct / Math.max(tokens, 1) };
          if (o.exactMatchLimit > 0) res.eval_exact_match = await exactMatch();
          return res;
        }
      : undefined,
  };
}
