/**
 * Decode variants A/B in one process: each variant is a CausalLM over the same weights with its
 * own options and KV-cache capacity, all holding the same 512-token context (SmolLM2-135M shapes,
 * or PLUM_BENCH_MODEL). Rounds alternate the variants, 4 timed steps each, every round from the
 * same length; prints the median ms per token of each (BENCHMARKS.md finding 34).
 * `node --import tsx bench/decode-ab.ts [VARIANT,...] [ROUNDS]`, VARIANT = `copy|plain:CAPACITY`,
 * e.g. `plain:1024,plain:640,copy:640` (copy = LmOptions.headCopy).
 */
import { loadModel } from '../src/model/load.js';
import { CausalLM } from '../src/model/lm.js';
import { copyRow } from '../src/serve/kv.js';
import { benchModelDir } from './model.js';
import { median, seconds } from './timing.js';

const m = loadModel(benchModelDir(process.env.PLUM_BENCH_MODEL));
const T = 512;
const variants = (process.argv[2] ?? 'plain:1024,plain:640,copy:640').split(',').map((s) => {
  const [kind, cap] = s.split(':');
  if ((kind !== 'copy' && kind !== 'plain') || !(Number(cap) > T)) throw new Error(`variant ${s}: expected copy|plain:CAPACITY with CAPACITY > ${T}`);
  return { name: s, headCopy: kind === 'copy', capacity: Number(cap) };
});
const rounds = Number(process.argv[3] ?? 20);
const prompt = Array.from({ length: T }, (_, i) => 1 + ((i * 7919) % (m.cfg.vocabSize - 1)));
const { cache: context } = await m.lm.prefill([prompt]);
const runs = await Promise.all(
  variants.map(async (v) => {
    const lm = new CausalLM(m.cfg, m.lm.weights, m.lm.backend, { headCopy: v.headCopy });
    const cache = lm.emptyCache(1, v.capacity, null);
    copyRow(m.cfg, context, 0, cache, 0);
    return { lm, cache };
  }),
);
for (const { lm, cache } of runs) for (let i = 0; i < 3; i++) await lm.decode(cache, [5]); // compile, warm up
let tok = 1;
const times = variants.map(() => [] as number[]);
for (let r = 0; r < rounds; r++) {
  runs.forEach(({ cache }) => (cache.len[0] = T + 3));
  for (const [j, { lm, cache }] of runs.entries()) {
    for (let i = 0; i < 4; i++) {
      tok = (tok * 31 + 7) % m.cfg.vocabSize;
      times[j]!.push(await seconds(() => lm.decode(cache, [tok])));
    }
  }
}
console.log(`decode after ${T} tokens, ${rounds} alternating rounds: ` + variants.map((v, j) => `${v.name} ${(median(times[j]!) * 1e3).toFixed(2)} ms`).join(', '));
