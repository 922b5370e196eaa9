/**
 * Activation recomputation (src/graph/remat.ts; decoder.ts `Recompute`): nothing, each layer's
 * attention, or each whole layer recomputed in the backward pass. One SFT training-graph run at
 * B rows of T tokens on SmolLM2-135M shapes (or the folder in PLUM_BENCH_MODEL), LoRA r8 on all
 * projections by default (methods and rows as bench/sft-setup.ts makes them). The
 * graphs are compiled in one process and run alternately (15 rounds after a warm-up at up to 256
 * tokens, else 5), so all see the same machine; then each runs alone in a child process for its
 * peak resident memory (GNU time's %M). Times are given as ratios to the first variant listed.
 * `node --import tsx bench/remat.ts B T [lora-all|lora|full|soft-prompt|prefix] [none,attention,layers]`
 * (BENCHMARKS.md, finding 45).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Recompute } from '../src/model/decoder.js';
import { loadModel } from '../src/model/load.js';
import { GraphCache } from '../src/runtime/backend.js';
import { buildSftStep } from '../src/train/graph.js';
import { graphFeeds } from '../src/train/run.js';
import { benchModelDir } from './model.js';
import { benchStep } from './sft-setup.js';
import { median } from './timing.js';

const [B, T] = [Number(process.argv[2] ?? 4), Number(process.argv[3] ?? 1024)];
const kind = process.argv[4] ?? 'lora-all';
const listed = (process.argv[5] ?? 'none,attention,layers').split(',') as Recompute[];
for (const v of listed) if (!['none', 'attention', 'layers'].includes(v)) throw new Error(`bench/remat.ts: unknown variant "${v}" (none, attention or layers)`);
const only = process.argv[6] === 'child' ? listed[0] : undefined; // child mode: one variant, a few runs
const m = loadModel(benchModelDir(process.env.PLUM_BENCH_MODEL));
const { adapter, prep } = await benchStep(m, kind, B, T);
const cache = new GraphCache(m.lm.backend);
const variants = only ? [only] : listed;
const runs = await Promise.all(
  variants.map(async (v) => {
    const run = await cache.get(v, () => buildSftStep(m.cfg, adapter, prep.shape, true, { recompute: v }));
    return { v, run, feeds: graphFeeds(run, adapter, m.lm.weights, prep.feeds, 0), ms: [] as number[] };
  }),
);
const rounds = only ? 2 : T <= 256 ? 16 : 6; // short steps: more rounds against the machine's noise
for (let i = 0; i < rounds; i++) {
  for (const r of runs) {
    const t = performance.now();
    await r.run.run(r.feeds);
    if (i > 0) r.ms.push(performance.now() - t);
  }
}
if (only) process.exit(0);
const peak = (v: string): string => {
  if (!existsSync('/usr/bin/time')) return 'n/a';
  const r = spawnSync('/usr/bin/time', ['-f', 'PEAK_KB %M', process.execPath, '--import', 'tsx', import.meta.filename, String(B), String(T), kind, v, 'child'], { encoding: 'utf8' });
  const kb = Number(/PEAK_KB (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return `${(kb / 1024 / 1024).toFixed(2)} GB`;
};
const base = median(runs[0]!.ms);
const parts = runs.map((r) => `${r.v} ${median(r.ms).toFixed(0)} ms (${(median(r.ms) / base).toFixed(3)}), peak ${peak(r.v)}`);
console.log(`B=${B} T=${prep.shape.T} ${kind}: ${parts.join('; ')}`);
