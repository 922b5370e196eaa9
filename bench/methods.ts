/**
 * Training speed and peak memory of every PEFT method on SmolLM2-135M shapes, batch 4 x 128
 * (`npm run bench:methods [-- --model DIR --steps N --recompute none|attention|layers]`). Each method runs in its own process so
 * that its peak resident memory (VmHWM) is its own. A step = forward + backward of the real
 * SFT training graph (loss on every position) + gradient clipping (max norm 1, the norm from the
 * graph's grad_sumsq, as the training loop does) + the AdamW update.
 *
 * Useful FLOPs per step (T = B x 128 tokens):
 *   forward: every projection and the LM head (2 T K N each) + attention;
 *   activation gradients: the transposed GEMMs down to the lowest trainable tensor + 2x attention;
 *   weight gradients: 2 T K N for each trainable matrix (LoRA: its two low-rank factors).
 * A soft prompt's virtual positions count as rows of every projection (the method needs them: its
 * gradient flows back through them) and as keys and queries of the causal attention; a prefix's
 * keys count in every query's attention. Padding and masked attention pairs are never counted.
 * Compared with plain ORT MatMuls over the same GEMM shapes, FLOP-weighted, measured in the same
 * process (as `npm run bench` does for prefill and train): the ratio is GEMM efficiency, not the
 * rate of one favourable shape. Timing: 2 untimed steps, `--steps` timed steps (peak memory is
 * read after them), then `--steps` more, each after one baseline replay and an untimed step; step
 * time, baseline and ratio are the medians of those pairs. `--method dora` measures DoRA on the
 * same targets as the LoRA row (its row norms count as overhead, not as useful FLOPs).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { packRows } from '../src/data/batches.js';
import { loadModel } from '../src/model/load.js';
import { baseModelOf } from '../src/peft/base.js';
import { createAdapter } from '../src/peft/registry.js';
import type { MethodConfig, PeftAdapter } from '../src/peft/types.js';
import { GraphCache } from '../src/runtime/backend.js';
import { prepareBatch } from '../src/train/feeds.js';
import { buildSftStep } from '../src/train/graph.js';
import { RECOMPUTE, type Recompute } from '../src/model/decoder.js';
import { AdamW, clipFactor } from '../src/train/optimizer.js';
import { trainables } from '../src/train/loop.js';
import { gradSumSqOf, gradsOf, graphFeeds } from '../src/train/run.js';
import { relaunchWithTunedMalloc } from '../bin/allocator.js';
import { MatMulBaseline } from './baseline.js';
import { machineInfo, writeResult } from './machine.js';
import { median } from './timing.js';
import { benchModelDir } from './model.js';
import { type Gemm, gemmFlops, headGemm, layerGemms, transposed, attentionFlops } from './flops.js';

const METHODS: Record<string, MethodConfig> = {
  'soft-prompt (20 tokens)': { kind: 'soft-prompt', virtualTokens: 20, init: 'vocab' },
  'prefix (20 tokens)': { kind: 'prefix', virtualTokens: 20, init: 'random' },
  'lora r8 (all projections)': { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false },
  'last-layers (2)': { kind: 'last-layers', layers: 2, includeHead: true },
  full: { kind: 'full' },
};
/** Variants measured only on request (`--method dora`): not one of the methods. */
const EXTRA: Record<string, MethodConfig> = {
  dora: { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false, dora: true },
};

const { values } = parseArgs({ options: { model: { type: 'string' }, steps: { type: 'string', default: '5' }, method: { type: 'string' }, recompute: { type: 'string', default: 'attention' } } });
const recompute = values.recompute as Recompute;
if (!RECOMPUTE.includes(recompute)) throw new Error(`bench/methods.ts: --recompute must be one of ${RECOMPUTE.join(', ')}`);
const B = 4;
const T = 128;


/**
 * The useful GEMMs of one step (see the header): their FLOPs are the step's useful FLOPs (with
 * attention), and the same list, replayed as plain ORT MatMuls, is the baseline.
 */
function usefulWork(a: PeftAdapter, cfg: ReturnType<typeof loadModel>['cfg'], tokens: number): { gemms: Gemm[]; flops: number } {
  // A soft prompt's virtual positions run through every layer (the prompt's gradient flows back
  // through them), so they are useful rows of each projection; logits are computed at the real
  // positions only. A prefix adds its keys to every query's attention.
  const rows = B * (T + a.virtualTokens);
  const layers = layerGemms(cfg).map((g) => (a.virtualTokens ? { ...g, M: rows } : g));
  const head = headGemm(cfg);
  const S = T + a.virtualTokens;
  const pairs = B * ((S * (S + 1)) / 2 + S * a.prefixLength);
  const trainable = new Set(a.baseTrainable);
  const lowest = a.config.kind === 'last-layers' ? cfg.numLayers - a.config.layers : 0;
  const below = (name: string) => Number(/layers\.(\d+)\./.exec(name)?.[1] ?? cfg.numLayers) < lowest;
  const gemms: Gemm[] = [...layers, head]; // forward
  gemms.push(...[head, ...layers.filter((g) => !below(g.weight))].map((g) => ({ ...transposed(g), ...(g.M ? { M: g.M } : {}) }))); // activation gradients
  // weight gradients dW [N, K] = dy^T [N, M] x [M, K]
  gemms.push(...[...layers, head].filter((g) => trainable.has(g.weight)).map((g) => ({ weight: g.weight, M: g.N, K: g.M ?? tokens, N: g.K })));
  if (a.config.kind === 'lora') {
    // per target: x A^T [M, r] and (x A^T) B^T; dx through B then A; the gradients of A [r, K] and B [N, r]
    const r = a.config.r;
    for (const g of layers.filter((l) => a.params.some((p) => p.name === `lora.${l.weight.replace(/\.weight$/, '')}.A`)))
      gemms.push(
        { weight: g.weight, K: g.K, N: r }, { weight: g.weight, K: r, N: g.N },
        { weight: g.weight, K: g.N, N: r }, { weight: g.weight, K: r, N: g.K },
        { weight: g.weight, M: r, K: tokens, N: g.K }, { weight: g.weight, M: g.N, K: tokens, N: r },
      );
  }
  const attention = attentionFlops(cfg, pairs) * (1 + 2 * ((cfg.numLayers - lowest) / cfg.numLayers));
  return { gemms, flops: gemmFlops(tokens, gemms) + attention };
}

async function runOne(wanted: string): Promise<void> {
  // a row's full name, or its method kind (`--method lora`)
  const all = { ...METHODS, ...EXTRA };
  const name = Object.keys(all).find((k) => k === wanted || (k in METHODS && METHODS[k]!.kind === wanted));
  if (!name) {
    console.error(`bench:methods: unknown --method "${wanted}"; use one of ${[...new Set([...Object.values(METHODS).map((c) => c.kind), ...Object.keys(EXTRA)])].join(', ')}`);
    process.exit(1);
  }
  const m = loadModel(benchModelDir(values.model));
  const adapter = await createAdapter(all[name]!, baseModelOf(m), 0);
  const rows = Array.from({ length: B }, (_, b) => {
    const ids = Array.from({ length: T }, (_, t) => 1 + ((t * 31 + b * 7) % (m.cfg.vocabSize - 1)));
    return { ids, labels: ids };
  });
  const prep = prepareBatch(m.cfg, adapter, packRows(rows, 0));
  const cache = new GraphCache(m.lm.backend);
  const t0 = performance.now();
  const run = await cache.get('step', () => buildSftStep(m.cfg, adapter, prep.shape, true, { recompute }));
  const compileS = (performance.now() - t0) / 1000;
  const params = trainables(adapter, m.lm.weights);
  const opt = new AdamW(params, { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const step = async (i: number) => {
    const out = await run.run(graphFeeds(run, adapter, m.lm.weights, prep.feeds, i));
    // as the training loop does for one micro-batch: the clipping norm from the graph's grad_sumsq
    opt.update(gradsOf(out), 1e-5, clipFactor(Math.sqrt(gradSumSqOf(out)!), 1));
  };
  // two untimed steps: the first compiles and sizes ORT's arena, the second still faults in memory
  // that later steps reuse (full fine-tuning: 3.1 s, then 1.6-1.7 s)
  await step(0);
  await step(1);
  const times: number[] = [];
  for (let i = 2; i < 2 + Number(values.steps); i++) {
    const s = performance.now();
    await step(i);
    times.push((performance.now() - s) / 1000);
  }
  const stepsOnly = median(times);
  // peak memory of the training steps, before the baseline's sessions and arrays exist
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024 / 1024;
  // Then steps alternate with the baseline (plain MatMuls over the same GEMMs), so that each ratio
  // compares like with like: the host moves MatMul speed by 10-20% within minutes.
  const work = usefulWork(adapter, m.cfg, B * T);
  const matmul = new MatMulBaseline(availableParallelism());
  await matmul.prepare(B * T, work.gemms);
  await matmul.run(B * T, work.gemms);
  const paired: Array<{ step: number; base: number }> = [];
  for (let i = 0; i < Number(values.steps); i++) {
    const base = await matmul.run(B * T, work.gemms);
    // one untimed step first: the one right after the baseline's sessions faults memory in again
    // (full fine-tuning 1.85-1.98 s instead of 1.57-1.60 s)
    await step(200 + i);
    const t = performance.now();
    await step(100 + i);
    paired.push({ step: (performance.now() - t) / 1000, base });
  }
  const sec = median(paired.map((p) => p.step));
  const mSec = median(paired.map((p) => p.base));
  const gflops = work.flops / sec / 1e9;
  // the baseline's rate on the same GEMMs (attention is not replayed: its FLOPs are left out of both)
  const gemmOnly = gemmFlops(B * T, work.gemms);
  const matmulGflops = gemmOnly / mSec / 1e9;
  const ratio = median(paired.map((p) => work.flops / p.step / (gemmOnly / p.base)));
  process.stdout.write(JSON.stringify({ name, sec, stepsOnlySec: stepsOnly, tokensPerSec: (B * T) / sec, gflops, matmulGflops, ratio, peakGB: hwm, allocator: process.env.PLUM_ALLOCATOR === 'child' ? 'tuned' : 'system', compileS, trainable: params.reduce((s, p) => s + p.data.length, 0) }) + '\n');
}

// the glibc malloc settings of `plum train` (bin/allocator.js; PLUM_ALLOCATOR=system for an A/B)
if (values.method) {
  if (!(await relaunchWithTunedMalloc())) await runOne(values.method);
}
else {
  console.log(`| method | trainable params | step (s) | tokens/s | useful GFLOPS | MatMul GFLOPS (same run) | ratio | peak memory (GB) |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  const machine = { ...machineInfo(), date: new Date().toISOString() };
  const rows = [];
  for (const name of Object.keys(METHODS)) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/methods.ts', '--method', name, '--steps', values.steps!, '--recompute', recompute, ...(values.model ? ['--model', values.model] : [])], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    rows.push(r);
    console.log(`| ${name} | ${r.trainable.toLocaleString('en-US')} | ${r.sec.toFixed(2)} | ${r.tokensPerSec.toFixed(0)} | ${r.gflops.toFixed(0)} | ${r.matmulGflops.toFixed(0)} | ${r.ratio.toFixed(2)} | ${r.peakGB.toFixed(2)} |`);
  }
  console.log(`\nwrote ${writeResult('methods-', machine.date, { machine, B, T, steps: Number(values.steps), rows })}`);
}
