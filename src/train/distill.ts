/**
 * Context distillation: teacher = the model with the full system prompt; student = the model
 * with a few trainable virtual tokens (soft prompt or KV prefix) in its place. The loss is
 * KL(teacher || student) at every position of continuations sampled from the teacher.
 *
 * Teacher distributions are kept sparse: the top J tokens per position, renormalised (J = V
 * for vocabularies up to 1024 tokens, where the KL is exact; 64 otherwise).
 */
import { type Batch, gridFor, packRows } from '../data/batches.js';
import { shuffled } from '../data/rng.js';
import { generate } from '../model/generate.js';
import type { LoadedModel } from '../model/load.js';
import { noAdapter } from '../peft/registry.js';
import type { PeftAdapter } from '../peft/types.js';
import { GraphCache } from '../runtime/backend.js';
import { createProgress } from '../util/progress.js';
import { prepareBatch } from './feeds.js';
import { buildDistillStep, buildLogitsAt } from './graph.js';
import type { Recompute } from '../model/decoder.js';
import type { Objective, StepResult } from './loop.js';
import { gradSumSqOf, gradsOf, graphFeeds } from './run.js';

export interface DistillPrompt {
  /** Token ids of the user prompt as the student sees it. */
  student: number[];
  /** The same prompt with the system prompt, as the teacher sees it. */
  teacher: number[];
}

/** One continuation with the teacher's next-token distributions at each of its positions. */
export interface DistillExample {
  ids: number[];
  labels: number[]; // -100 on the prompt, the continuation's tokens after it
  teacherIdx: number[][]; // per continuation position: J token ids, most likely first
  teacherP: number[][];
  teacherEntropy: number; // sum over positions of H(teacher) (renormalised top-J)
}

export interface TeacherOptions {
  samples: number;
  maxTokens: number;
  temperature: number;
  seed: number;
  batchSize: number;
  quiet?: boolean;
}

export const sparseWidth = (V: number): number => (V <= 1024 ? V : 64);

function topJ(logits: Float32Array, J: number): { idx: number[]; p: number[]; entropy: number } {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!).slice(0, J);
  const m = logits[order[0]!]!;
  const e = order.map((i) => Math.exp(logits[i]! - m));
  const z = e.reduce((s, x) => s + x, 0);
  const p = e.map((x) => x / z);
  const entropy = -p.reduce((s, x) => (x > 0 ? s + x * Math.log(x) : s), 0);
  return { idx: order, p, entropy };
}

/** Sample continuations from the teacher and record its distributions along them. */
export async function teacherExamples(m: LoadedModel, prompts: DistillPrompt[], o: TeacherOptions): Promise<DistillExample[]> {
  const cache = GraphCache.forShapes(m.lm.backend);
  const none = noAdapter();
  const J = sparseWidth(m.cfg.vocabSize);
  const out: DistillExample[] = [];
  const jobs = prompts.flatMap((p, i) => Array.from({ length: o.samples }, (_, s) => ({ p, seed: o.seed * 1_000_003 + i * 101 + s })));
  const progress = createProgress({ total: jobs.length, label: 'teacher', unit: 'seq', stream: o.quiet ? { write: () => true } : process.stderr });
  for (let i = 0; i < jobs.length; i += o.batchSize) {
    const chunk = jobs.slice(i, i + o.batchSize);
    const gens = await generate(m.lm, chunk.map((j) => j.p.teacher), {
      temperature: o.temperature, topK: 0, topP: 1, seed: 0, seeds: chunk.map((j) => j.seed), maxTokens: o.maxTokens, eosIds: m.eosIds,
    });
    const rows = chunk.map((j, b) => {
      const cont = gens[b]!.tokens.length ? gens[b]!.tokens : [m.eosIds[0] ?? 0];
      return { ...j, cont, ids: [...j.p.teacher, ...cont], labels: [...j.p.teacher.map(() => -100), ...cont] };
    });
    const batch = packRows(rows, 0);
    const prep = prepareBatch(m.cfg, none, batch);
    const run = await cache.get(`teacher:${prep.shape.B}x${prep.shape.T}x${prep.shape.K}`, () => buildLogitsAt(m.cfg, none, prep.shape));
    const logits = (await run.run(graphFeeds(run, none, m.lm.weights, prep.feeds, null))).logits as Float32Array;
    const V = m.cfg.vocabSize;
    let k = 0;
    for (const r of rows) {
      const ex: DistillExample = { ids: [...r.p.student, ...r.cont], labels: [...r.p.student.map(() => -100), ...r.cont], teacherIdx: [], teacherP: [], teacherEntropy: 0 };
      for (let t = 0; t < r.cont.length; t++, k++) {
        const d = topJ(logits.subarray(k * V, (k + 1) * V), J);
        ex.teacherIdx.push(d.idx);
        ex.teacherP.push(d.p);
        ex.teacherEntropy += d.entropy;
      }
      out.push(ex);
    }
    progress.tick(chunk.length);
  }
  progress.done();
  await cache.releaseAll(); // the teacher's graphs are done before the student's start
  return out;
}

/** Teacher inputs laid out in the label-slot order of prepareBatch (row-major). */
function teacherFeeds(examples: DistillExample[], K: number, J: number): { teacher_idx: BigInt64Array; teacher_p: Float32Array } {
  const idx = new BigInt64Array(K * J);
  const p = new Float32Array(K * J);
  let k = 0;
  for (const e of examples) {
    e.teacherIdx.forEach((row, t) => {
      row.forEach((id, j) => {
        idx[(k + t) * J + j] = BigInt(id);
        p[(k + t) * J + j] = e.teacherP[t]![j]!;
      });
    });
    k += e.teacherIdx.length;
  }
  return { teacher_idx: idx, teacher_p: p };
}

export interface DistillStats {
  kl: number; // mean KL(teacher || student) per token
  agree: number; // greedy next-token agreement
  tokens: number;
}

/** Loss and gradients (training) or statistics (evaluation) for a group of examples. */
export class DistillRunner {
  private readonly cache: GraphCache;
  readonly J: number;
  /** Row lengths to pad to (lengthGrid over every example the runner will see); powers of two without. */
  private readonly grid: number[] | undefined;
  constructor(
    private readonly m: LoadedModel,
    examples: readonly DistillExample[] = [],
    /** What the backward pass recomputes (default 'attention'; decoder.ts `Recompute`). */
    private readonly recompute?: Recompute,
  ) {
    this.cache = GraphCache.forShapes(m.lm.backend);
    this.J = sparseWidth(m.cfg.vocabSize);
    this.grid = gridFor(examples);
  }

  async run(adapter: PeftAdapter, examples: DistillExample[], step: number | null) {
    const batch: Batch = packRows(examples, 0, this.grid);
    const prep = prepareBatch(this.m.cfg, adapter, batch);
    const { B, T, K } = prep.shape;
    const train = step !== null;
    const g = await this.cache.get(`distill:${train}:${B}x${T}x${K}:${adapter.id}`, () => buildDistillStep(this.m.cfg, adapter, prep.shape, this.J, train, { recompute: this.recompute }));
    const out = await g.run(graphFeeds(g, adapter, this.m.lm.weights, { ...prep.feeds, ...teacherFeeds(examples, K, this.J) }, step));
    const ce = (out.loss_sum as Float32Array)[0]!;
    const entropy = examples.reduce((s, e) => s + e.teacherEntropy, 0);
    const agree = (out.agree as Float32Array).subarray(0, prep.tokens).reduce((s, x) => s + x, 0);
    return { out, ce, kl: ce - entropy, agree, tokens: prep.tokens };
  }

  async stats(adapter: PeftAdapter | null, examples: DistillExample[], batchSize: number): Promise<DistillStats> {
    let kl = 0;
    let agree = 0;
    let tokens = 0;
    for (let i = 0; i < examples.length; i += batchSize) {
      const r = await this.run(adapter ?? noAdapter(), examples.slice(i, i + batchSize), null);
      kl += r.kl;
      agree += r.agree;
      tokens += r.tokens;
    }
    return { kl: kl / Math.max(tokens, 1), agree: agree / Math.max(tokens, 1), tokens };
  }
}

export function distillObjective(
  m: LoadedModel,
  adapter: PeftAdapter,
  train: DistillExample[],
  heldOut: DistillExample[],
  o: { batchSize: number; seed: number; baselineKl: number | null; recompute?: Recompute },
): Objective<DistillExample[]> {
  const runner = new DistillRunner(m, [...train, ...heldOut], o.recompute);
  const chunks = (xs: DistillExample[]): DistillExample[][] => Array.from({ length: Math.ceil(xs.length / o.batchSize) }, (_, i) => xs.slice(i * o.batchSize, (i + 1) * o.batchSize));
  return {
    batches: (epoch) => chunks(shuffled(train, o.seed, epoch)),
    async step(examples, step): Promise<StepResult> {
      const r = await runner.run(adapter, examples, step);
      return { lossSum: r.kl, weight: r.tokens, tokens: r.tokens, grads: gradsOf(r.out), gradSumSq: gradSumSqOf(r.out), sums: { agree: r.agree } };
    },
    evaluate: heldOut.length
      ? async () => {
          const s = await runner.stats(adapter, heldOut, o.batchSize);
          const res: Record<string, number> = { eval_loss: s.kl, eval_kl: s.kl, eval_agree: s.agree };
          if (o.baselineKl !== null) res.eval_kl_reduction = 1 - s.kl / o.baselineKl;
          return res;
        }
      : undefined,
  };
}
