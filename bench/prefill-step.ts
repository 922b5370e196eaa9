/**
 * `CausalLM.prefill` of one prompt of T tokens on SmolLM2-135M shapes (or PLUM_BENCH_MODEL),
 * its cache returned to the pool as in generation; median of 7 calls after one warm-up
 * (`node --import tsx bench/prefill-step.ts [T]`). With PLUM_ORT_PROFILE set, the sessions are
 * released at the end so that their profiles are written (sum them with bench/profile-sum.mjs).
 */
import { loadModel } from '../src/model/load.js';
import { benchModelDir } from './model.js';
import { medianMs } from './timing.js';

const m = loadModel(benchModelDir(process.env.PLUM_BENCH_MODEL));
const T = Number(process.argv[2] ?? 512);
const prompt = Array.from({ length: T }, (_, i) => 1 + ((i * 7919) % (m.cfg.vocabSize - 1)));
const call = async () => m.lm.release((await m.lm.prefill([prompt])).cache);
await call();
console.log(`prefill T=${T}: ${(await medianMs(call, 7)).toFixed(1)} ms`);
await m.lm.graphs.releaseAll();
