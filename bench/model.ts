/**
 * Model benchmarks on a SmolLM2-135M-shaped folder: prefill, decode, and one soft-prompt style
 * training step. Each returns a Row; the plain-ORT baseline is measured interleaved with the
 * model runs (one baseline pass after each model run) so both see the same machine load.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grad } from '../src/graph/autodiff.js';
import { Graph } from '../src/graph/ir.js';
import { crossEntropy } from '../src/graph/nn.js';
import * as op from '../src/graph/ops.js';
import type { ModelConfig } from '../src/model/config.js';
import { WeightInputs, decoder, lmHead } from '../src/model/decoder.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/lm.js';
import { attentionBias } from '../src/model/masks.js';
import { ropeTables } from '../src/model/rope.js';
import type { HostArray } from '../src/runtime/backend.js';
import { type CopyBandwidth, type MatMulBaseline, type ReadBandwidth } from './baseline.js';
import { type Work, decodeWeightBytes, decodeWork, gemmFlops, kvCacheBytes, prefillWork, trainWork } from './flops.js';

import { QuietSampler, type TimedBackend, median, seconds, settle } from './timing.js';

/** The benchmark model: `model` if given, else a seeded random SmolLM2-135M written once under the OS temp folder. */
export function benchModelDir(model?: string): string {
  if (model) return model;
  const dir = join(tmpdir(), 'plum-bench', 'smollm2-135m-seed0');
  if (!existsSync(join(dir, 'config.json'))) {
    process.stderr.write(`writing a random smollm2-135m to ${dir} (once)\n`);
    initModel({ preset: 'smollm2-135m', seed: 0, out: dir });
  }
  return dir;
}

export interface Row {
  name: string;
  shape: string;
  runs: number;
  /** Median wall time of one call (API call for prefill/decode, session run for train). */
  ms: number;
  /** Median time inside the ONNX Runtime session (the rest is host work in TypeScript). */
  graphMs: number;
  tokensPerSec: number;
  /** Useful GFLOPS (flops.ts) over the median wall time. */
  gflops: number;
  baseline: { what: string; value: number; unit: string };
  /** Achieved / baseline (GFLOPS ratio, or tokens/s over the bandwidth bound for decode). */
  ratio: number;
  target: number;
  extra: Record<string, number>;
}

/** What the baselines need: the same backend (threads) as the model. */
export interface Baselines {
  backend: TimedBackend;
  matmul: MatMulBaseline;
  copy: CopyBandwidth;
  read: ReadBandwidth;
}

export interface Ctx extends Baselines {
  cfg: ModelConfig;
  weights: Map<string, Float32Array>;
  lm: CausalLM;
}

function randomTokens(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s % vocab));
}

/**
 * Model runs alternated with plain-MatMul measurements of the same GEMM shapes (each judged
 * quiet or not on its own); medians of each.
 */
async function paired(ctx: Ctx, work: Work, runs: number, budgetS: number, step: () => Promise<unknown>) {
  await ctx.matmul.prepare(work.M, work.gemms);
  await ctx.matmul.run(work.M, work.gemms); // warm-up
  const model = new QuietSampler<{ wall: number; graph: number }>(budgetS);
  const base = new QuietSampler<number>(budgetS);
  for (let i = 0; i < 4 * runs && (model.quiet.length < runs || base.quiet.length < runs) && !(model.expired && base.expired); i++) {
    settle();
    if (model.quiet.length < runs) await model.sample(async () => ({ wall: await seconds(step), graph: ctx.backend.lastRunSeconds }));
    settle();
    if (base.quiet.length < runs) await base.sample(() => ctx.matmul.run(work.M, work.gemms));
  }
  const m = model.values(runs);
  const s = median(m.map((x) => x.wall));
  const baseS = median(base.values(runs));
  return {
    s,
    graphS: median(m.map((x) => x.graph)),
    gflops: work.flops / s / 1e9,
    baseGflops: gemmFlops(work.M, work.gemms) / baseS / 1e9,
    quiet: { ...model.stats(runs), baselineSamples: base.values(runs).length, baselineRejectedNoisy: base.all.length - base.quiet.length },
  };
}

export async function benchPrefill(ctx: Ctx, T: number, runs: number): Promise<Row> {
  const prompt = randomTokens(T, ctx.cfg.vocabSize, 7);
  // As in generation: each prefill's cache goes back to the pool when its generation ends.
  const call = async (): Promise<void> => ctx.lm.release((await ctx.lm.prefill([prompt])).cache);
  const compile = await seconds(call); // first call compiles
  await call();
  const work = prefillWork(ctx.cfg, T);
  const r = await paired(ctx, work, runs, 90, call);
  return {
    name: 'prefill',
    shape: `B=1 T=${T}`,
    runs: r.quiet.samples,
    ms: r.s * 1e3,
    graphMs: r.graphS * 1e3,
    tokensPerSec: T / r.s,
    gflops: r.gflops,
    baseline: { what: `plain ORT MatMul at the same GEMM shapes, FLOP-weighted (M=${T})`, value: r.baseGflops, unit: 'GFLOPS' },
    ratio: r.gflops / r.baseGflops,
    target: 0.8,
    extra: { firstCallMs: compile * 1e3, gflopPerCall: work.flops / 1e9, ...r.quiet },
  };
}

export async function benchDecode(ctx: Ctx, context: number, runs: number): Promise<Row> {
  // room for 128 new tokens, as a generation of up to 128 tokens would size its cache; every
  // sample decodes from the same length (the slots past it are masked), so the cache never grows
  const { cache } = await ctx.lm.prefill([randomTokens(context, ctx.cfg.vocabSize, 11)], null, 128);
  let tok = 1;
  const compile = await seconds(() => ctx.lm.decode(cache, [tok]));
  for (let i = 0; i < 3; i++) await ctx.lm.decode(cache, [tok]); // warm-up
  const past0 = cache.len[0]!;
  // A sample: 1 untimed + 4 timed steps back to back as in generation (~0.1 s, long enough to
  // tell quiet or not), then memory bandwidth, so that both see the same machine (the host's
  // other tenants move this VM's bandwidth by +-20%).
  const sampler = new QuietSampler<{ wall: number; graph: number; copy: number; read: number }>(90);
  const samples = await sampler.collect(runs, async () => {
    settle();
    cache.len[0] = past0;
    await ctx.lm.decode(cache, [tok]);
    let wall = 0;
    let graph = 0;
    for (let i = 0; i < 4; i++) {
      tok = (tok * 31 + 7) % ctx.cfg.vocabSize;
      wall += await seconds(() => ctx.lm.decode(cache, [tok]));
      graph += ctx.backend.lastRunSeconds;
    }
    settle();
    const copy = ctx.copy.sample();
    const read = Math.max(await ctx.read.sample(), await ctx.read.sample()); // best of two
    return { wall: wall / 4, graph: graph / 4, copy, read };
  });
  const s = median(samples.map((x) => x.wall));
  const work = decodeWork(ctx.cfg, past0 + 3);
  const bytes = decodeWeightBytes(ctx.cfg);
  const copy = median(samples.map((x) => x.copy));
  const read = median(samples.map((x) => x.read));
  const bw = Math.max(copy, read); // the tightest bound we can justify
  const bound = bw / bytes;
  return {
    name: 'decode',
    shape: `B=1 after ${context} (cache ${cache.capacity})`,
    runs: samples.length * 4,
    ms: s * 1e3,
    graphMs: median(samples.map((x) => x.graph)) * 1e3,
    tokensPerSec: 1 / s,
    gflops: work.flops / s / 1e9,
    baseline: { what: `bandwidth bound: ${(bytes / 1e6).toFixed(0)} MB weights / ${(bw / 1e9).toFixed(1)} GB/s`, value: bound, unit: 'tok/s' },
    ratio: 1 / s / bound,
    target: 0.7,
    extra: {
      firstCallMs: compile * 1e3,
      weightBytes: bytes,
      headCopy: ctx.lm.opts.headCopy ? 1 : 0,
      kvBytesRead: kvCacheBytes(ctx.cfg, cache.capacity),
      copyGBps: copy / 1e9,
      readGBps: read / 1e9,
      achievedGBps: bytes / s / 1e9,
      ...sampler.stats(runs),
    },
  };
}

/**
 * The training graph: input embeddings [B, T, C] are a graph input (what soft-prompt training
 * differentiates), weights are fed inputs, loss = mean cross-entropy over every position, and
 * the only gradient is d loss / d embeds.
 */
export function trainGraph(cfg: ModelConfig, B: number, T: number) {
  const g = new Graph();
  const w = new WeightInputs(g, cfg);
  const C = cfg.hiddenSize;
  const embeds = g.input('embeds', [B, T, C]);
  const cos = g.input('cos', [B, T, cfg.headDim]);
  const sin = g.input('sin', [B, T, cfg.headDim]);
  const bias = g.input('bias', [B, 1, T, T]);
  const targets = g.input('targets', [B * T], 'int64');
  const { hidden } = decoder(w, { embeds, cos, sin, bias }); // [B, T, C]
  const loss = crossEntropy(lmHead(w, op.reshape(hidden, [B * T, C])), targets);
  const [dEmbeds] = grad(loss, [embeds]);
  return { outputs: { loss, dEmbeds: dEmbeds! }, weights: w };
}

/** Feeds for trainGraph: embedding rows of random tokens, causal mask, RoPE at 0..T-1. */
export function trainFeeds(ctx: Pick<Ctx, 'cfg' | 'weights'>, B: number, T: number, names: Iterable<string>): Record<string, HostArray> {
  const { cfg, weights } = ctx;
  const C = cfg.hiddenSize;
  const ids = randomTokens(B * (T + 1), cfg.vocabSize, 3);
  const table = weights.get('model.embed_tokens.weight')!;
  const embeds = new Float32Array(B * T * C);
  const targets = new BigInt64Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = ids[b * (T + 1) + t]!;
      embeds.set(table.subarray(id * C, (id + 1) * C), (b * T + t) * C);
      targets[b * T + t] = BigInt(ids[b * (T + 1) + t + 1]!);
    }
  }
  const pos = Int32Array.from({ length: T }, (_, t) => t);
  const { cos, sin } = ropeTables(cfg, Int32Array.from({ length: B * T }, (_, i) => i % T));
  const bias = attentionBias(Array.from({ length: B }, () => ({ keyPos: pos, queryPos: pos })), T, T, cfg.slidingWindow);
  const feeds: Record<string, HostArray> = { embeds, cos, sin, bias, targets };
  for (const n of names) feeds[n] = weights.get(n)!;
  return feeds;
}

export async function benchTrain(ctx: Ctx, B: number, T: number, runs: number): Promise<Row> {
  const { outputs, weights } = trainGraph(ctx.cfg, B, T);
  let run!: Awaited<ReturnType<TimedBackend['compile']>>;
  const compile = await seconds(async () => (run = await ctx.backend.compile(outputs)));
  const feeds = trainFeeds(ctx, B, T, weights.used().keys());
  const first = await seconds(() => run.run(feeds));
  const work = trainWork(ctx.cfg, B, T);
  const r = await paired(ctx, work, runs, 150, () => run.run(feeds));
  return {
    name: 'train',
    shape: `B=${B} T=${T}, d/d embeds`,
    runs: r.quiet.samples,
    ms: r.s * 1e3,
    graphMs: r.graphS * 1e3,
    tokensPerSec: (B * T) / r.s,
    gflops: r.gflops,
    baseline: { what: `plain ORT MatMul at the same GEMM shapes, FLOP-weighted (M=${B * T})`, value: r.baseGflops, unit: 'GFLOPS' },
    ratio: r.gflops / r.baseGflops,
    target: 0.8,
    extra: { compileMs: compile * 1e3, firstRunMs: first * 1e3, gflopPerCall: work.flops / 1e9, ...r.quiet },
  };
}
