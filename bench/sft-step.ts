/**
 * One SFT training-graph run (soft prompt or prefix of 20 tokens, LoRA r8 on q/v or on all projections, or full fine-tuning) at
 * B rows of T tokens on SmolLM2-135M shapes (or the model folder in PLUM_BENCH_MODEL), loss on
 * the last 64 positions of each row (all of them with `full`); median of 5 runs after one
 * warm-up (`node --import tsx bench/sft-step.ts B T [soft-prompt|prefix|lora|lora-all|full]`). Used for the
 * sequence-length A/Bs in BENCHMARKS.md (finding 10); run it on the code before and after.
 */
import { loadModel } from '../src/model/load.js';
import { buildSftStep } from '../src/train/graph.js';
import { graphFeeds } from '../src/train/run.js';
import { GraphCache } from '../src/runtime/backend.js';
import { benchModelDir } from './model.js';
import { benchStep } from './sft-setup.js';
import { median } from './timing.js';
const m = loadModel(benchModelDir(process.env.PLUM_BENCH_MODEL));
const [B, T] = [Number(process.argv[2] ?? 2), Number(process.argv[3] ?? 500)];
const kind = process.argv[4] ?? 'soft-prompt';
const { adapter, prep } = await benchStep(m, kind, B, T);
const run = await new GraphCache(m.lm.backend).get('x', () => buildSftStep(m.cfg, adapter, prep.shape));
const feeds = graphFeeds(run, adapter, m.lm.weights, prep.feeds, 0);
const ts: number[] = [];
for (let i = 0; i < 6; i++) { const t = performance.now(); await run.run(feeds); ts.push(performance.now() - t); }
ts.shift(); // the warm-up
console.log(`B=${B} T=${prep.shape.T} ${kind}: ${median(ts).toFixed(0)} ms`);
await run.release?.(); // writes the ORT profile when PLUM_ORT_PROFILE is set
