/**
 * One SFT training-graph run (soft prompt or prefix of 20 tokens, LoRA r8 on q/v or on all projections, or full fine-tuning) at
 * B rows of T tokens on SmolLM2-135M shapes (or the model folder in PLUM_BENCH_MODEL), loss on
 * the last 64 positions of each row (all of them with `full`); median of 5 runs after one
 * warm-up (`node --import tsx bench/sft-step.ts B T [soft-prompt|prefix|lora|lora-all|full]`). Used for the
 * sequence-length A/Bs in BENCHMARKS.md (finding 10); run it on the code before and after.
 */
import { packRows } from '../src/data/batches.js';
import { loadModel } from '../src/model/load.js';
import { baseModelOf } from '../src/peft/base.js';
import { createAdapter } from '../src/peft/registry.js';
import { prepareBatch } from '../src/train/feeds.js';
import { buildSftStep } from '../src/train/graph.js';
import { graphFeeds } from '../src/train/run.js';
import { GraphCache } from '../src/runtime/backend.js';
import type { MethodConfig } from '../src/peft/types.js';
import { benchModelDir } from './model.js';
import { median } from './timing.js';
const m = loadModel(benchModelDir(process.env.PLUM_BENCH_MODEL));
const [B, T] = [Number(process.argv[2] ?? 2), Number(process.argv[3] ?? 500)];
const kind = process.argv[4] ?? 'soft-prompt';
const cfg: MethodConfig =
  kind === 'lora' ? { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'], rslora: false }
  : kind === 'lora-all' ? { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false }
  : kind === 'full' ? { kind: 'full' }
  : kind === 'prefix' ? { kind: 'prefix', virtualTokens: 20, init: 'random' }
  : { kind: 'soft-prompt', virtualTokens: 20, init: 'vocab' };
const lossFrom = kind === 'full' ? 0 : T - 64;
const adapter = await createAdapter(cfg, baseModelOf(m), 0);
const rows = Array.from({ length: B }, (_, b) => { const ids = Array.from({ length: T }, (_, t) => 1 + ((t * 31 + b * 7) % (m.cfg.vocabSize - 1))); return { ids, labels: ids.map((x, t) => (t > lossFrom ? x : -100)) }; });
const prep = prepareBatch(m.cfg, adapter, packRows(rows, 0));
const run = await new GraphCache(m.lm.backend).get('x', () => buildSftStep(m.cfg, adapter, prep.shape));
const feeds = graphFeeds(run, adapter, m.lm.weights, prep.feeds, 0);
const ts: number[] = [];
for (let i = 0; i < 6; i++) { const t = performance.now(); await run.run(feeds); ts.push(performance.now() - t); }
ts.shift(); // the warm-up
console.log(`B=${B} T=${prep.shape.T} ${kind}: ${median(ts).toFixed(0)} ms`);
await run.release?.(); // writes the ORT profile when PLUM_ORT_PROFILE is set
