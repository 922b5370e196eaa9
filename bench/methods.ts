/**
 * Training speed and peak memory of every PEFT method on SmolLM2-135M shapes, batch 4 x 128
 * (`npm run bench:methods [-- --model DIR --steps N]`). Each method runs in its own process so
 * that its peak resident memory (VmHWM) is its own. A step = forward + backward of the real
 * SFT training graph (loss on every position) + the AdamW update.
 *
 * Useful FLOPs per step (T = B x 128 tokens):
 *   forward: every projection and the LM head (2 T K N each) + attention;
 *   activation gradients: the transposed GEMMs down to the lowest trainable tensor + 2x attention;
 *   weight gradients: 2 T K N for each trainable matrix (LoRA: its two low-rank factors).
 * Compared with the plain ORT MatMul rate measured in the same process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packRows } from '../src/data/batches.js';
import { initModel } from '../src/model/init.js';
import { loadModel } from '../src/model/load.js';
import { baseModelOf } from '../src/peft/base.js';
import { createAdapter } from '../src/peft/registry.js';
import type { MethodConfig, PeftAdapter } from '../src/peft/types.js';
import { GraphCache } from '../src/runtime/backend.js';
import { prepareBatch } from '../src/train/feeds.js';
import { buildSftStep } from '../src/train/graph.js';
import { AdamW } from '../src/train/optimizer.js';
import { trainables } from '../src/train/loop.js';
import { gradsOf, graphFeeds } from '../src/train/run.js';
import { MatMulBaseline } from './baseline.js';
import { gemmFlops, headGemm, layerGemms, transposed, attentionFlops } from './flops.js';

const METHODS: Record<string, MethodConfig> = {
  'soft-prompt (20 tokens)': { kind: 'soft-prompt', virtualTokens: 20, init: 'vocab' },
  'prefix (20 tokens)': { kind: 'prefix', virtualTokens: 20, init: 'random' },
  'lora r8 (all projections)': { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false },
  'last-layers (2)': { kind: 'last-layers', layers: 2, includeHead: true },
  full: { kind: 'full' },
};

const { values } = parseArgs({ options: { model: { type: 'string' }, steps: { type: 'string', default: '3' }, method: { type: 'string' } } });
const B = 4;
const T = 128;

function modelDir(): string {
  if (values.model) return values.model;
  const dir = join(tmpdir(), 'plum-bench', 'smollm2-135m-seed0');
  if (!existsSync(join(dir, 'config.json'))) initModel({ preset: 'smollm2-135m', seed: 0, out: dir });
  return dir;
}

function usefulFlops(a: PeftAdapter, cfg: ReturnType<typeof loadModel>['cfg'], tokens: number): number {
  const layers = layerGemms(cfg);
  const head = headGemm(cfg);
  const pairs = B * ((T * (T + 1)) / 2);
  let flops = gemmFlops(tokens, [...layers, head]) + attentionFlops(cfg, pairs); // forward
  const trainable = new Set(a.baseTrainable);
  const lowest = a.config.kind === 'last-layers' ? cfg.numLayers - a.config.layers : 0;
  const below = (name: string) => Number(/layers\.(\d+)\./.exec(name)?.[1] ?? cfg.numLayers) < lowest;
  flops += gemmFlops(tokens, [head, ...layers.filter((g) => !below(g.weight))].map(transposed)) + 2 * attentionFlops(cfg, pairs) * ((cfg.numLayers - lowest) / cfg.numLayers);
  flops += gemmFlops(tokens, [...layers, head].filter((g) => trainable.has(g.weight)));
  if (a.config.kind === 'lora') flops += a.params.reduce((s, p) => s + 2 * 2 * tokens * p.data.length, 0); // fwd-free: grads of A and B
  return flops;
}

async function runOne(name: string): Promise<void> {
  const m = loadModel(modelDir());
  const adapter = await createAdapter(METHODS[name]!, baseModelOf(m), 0);
  const rows = Array.from({ length: B }, (_, b) => {
    const ids = Array.from({ length: T }, (_, t) => 1 + ((t * 31 + b * 7) % (m.cfg.vocabSize - 1)));
    return { ids, labels: ids };
  });
  const prep = prepareBatch(m.cfg, adapter, packRows(rows, 0));
  const cache = new GraphCache(m.lm.backend);
  const t0 = performance.now();
  const run = await cache.get('step', () => buildSftStep(m.cfg, adapter, prep.shape));
  const compileS = (performance.now() - t0) / 1000;
  const params = trainables(adapter, m.lm.weights);
  const opt = new AdamW(params, { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const step = async (i: number) => {
    const out = await run.run(graphFeeds(run, adapter, m.lm.weights, prep.feeds, i));
    opt.update(gradsOf(out), 1e-5);
  };
  await step(0);
  const times: number[] = [];
  for (let i = 1; i <= Number(values.steps); i++) {
    const s = performance.now();
    await step(i);
    times.push((performance.now() - s) / 1000);
  }
  const sec = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  const matmul = new MatMulBaseline(availableParallelism());
  const gemm = [{ weight: '', K: 576, N: 1536 }];
  await matmul.run(B * T, gemm);
  const mt: number[] = [];
  for (let i = 0; i < 5; i++) mt.push(await matmul.run(B * T, gemm));
  const mSec = [...mt].sort((a, b) => a - b)[2]!;
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024 / 1024;
  const gflops = usefulFlops(adapter, m.cfg, B * T) / sec / 1e9;
  const matmulGflops = (2 * B * T * 576 * 1536) / mSec / 1e9;
  process.stdout.write(JSON.stringify({ name, sec, tokensPerSec: (B * T) / sec, gflops, matmulGflops, ratio: gflops / matmulGflops, peakGB: hwm, compileS, trainable: params.reduce((s, p) => s + p.data.length, 0) }) + '\n');
}

if (values.method) await runOne(values.method);
else {
  console.log(`| method | trainable params | step (s) | tokens/s | useful GFLOPS | MatMul GFLOPS (same run) | ratio | peak memory (GB) |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const name of Object.keys(METHODS)) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/methods.ts', '--method', name, '--steps', values.steps!, ...(values.model ? ['--model', values.model] : [])], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    console.log(`| ${name} | ${r.trainable.toLocaleString('en-US')} | ${r.sec.toFixed(2)} | ${r.tokensPerSec.toFixed(0)} | ${r.gflops.toFixed(0)} | ${r.matmulGflops.toFixed(0)} | ${r.ratio.toFixed(2)} | ${r.peakGB.toFixed(2)} |`);
  }
}
