/**
 * `CausalLM.decode` at batch 1 after a prompt of T tokens on SmolLM2-135M shapes (or
 * PLUM_BENCH_MODEL): median of 40 steps after 4 warm-up steps
 * (`node --import tsx bench/decode-step.ts [T] [ROOM] [copy]`: ROOM new tokens' room in the cache,
 * default 0 as findings 31 and 33 ran it; `copy` turns on LmOptions.headCopy; `512 128 copy` is
 * how `npm run bench` decodes, finding 34). With PLUM_ORT_PROFILE set, the sessions are
 * released at the end so that their profiles are written (sum them with bench/profile-sum.mjs).
 */
import { loadModel } from '../src/model/load.js';
import { benchModelDir } from './model.js';
import { medianMs } from './timing.js';

const m = loadModel(benchModelDir(process.env.PLUM_BENCH_MODEL), undefined, { headCopy: process.argv[4] === 'copy' });
const T = Number(process.argv[2] ?? 512);
const prompt = Array.from({ length: T }, (_, i) => 1 + ((i * 7919) % (m.cfg.vocabSize - 1)));
const { cache } = await m.lm.prefill([prompt], null, Number(process.argv[3] ?? 0));
let tok = 1;
const step = async () => {
  tok = (tok * 31 + 7) % m.cfg.vocabSize;
  await m.lm.decode(cache, [tok]);
};
for (let i = 0; i < 4; i++) await step();
console.log(`decode after T=${T}: ${(await medianMs(step, 40)).toFixed(2)} ms/token`);
m.lm.release(cache);
await m.lm.graphs.releaseAll();
