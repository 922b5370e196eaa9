/**
 * Sums an ORT profile (the chrome-trace JSON that PLUM_ORT_PROFILE=PREFIX writes) by kernel:
 * time per run of each op type, the first run left out (it sizes ORT's arena and faults memory
 * in; BENCHMARKS.md finding 17). With a regular expression, rows are op type + input shapes,
 * filtered by it. `node bench/profile-sum.mjs /tmp/prof_<date>.json ['^Gemm']`
 */
import { readFileSync } from 'node:fs';

const [file, pattern] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-sum.mjs PROFILE.json [REGEX]');
  process.exit(1);
}
const events = JSON.parse(readFileSync(file, 'utf8'));
const runs = events.filter((e) => e.name === 'model_run');
if (runs.length < 2) {
  console.error(`${file}: ${runs.length} model_run event(s); the profile needs at least 2 runs (the first is left out)`);
  process.exit(1);
}
const firstEnd = Math.min(...runs.map((e) => e.ts + e.dur));
const re = pattern ? new RegExp(pattern) : null;
const shapes = (e) => e.args.input_type_shape.map((o) => Object.values(o)[0].join('x')).join(' ');
const by = new Map();
let total = 0;
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < firstEnd) continue;
  const key = re ? `${e.args.op_name} ${shapes(e)}` : e.args.op_name;
  if (re && !re.test(key)) continue;
  const row = by.get(key) ?? { us: 0, n: 0 };
  row.us += e.dur;
  row.n++;
  by.set(key, row);
  total += e.dur;
}
const n = runs.length - 1;
console.log(`${n} runs after the first; kernel time per run ${(total / n / 1e3).toFixed(1)} ms`);
for (const [key, r] of [...by].sort((a, b) => b[1].us - a[1].us).slice(0, 30))
  console.log(`${(r.us / n / 1e3).toFixed(1).padStart(8)} ms ${((100 * r.us) / total).toFixed(1).padStart(5)}%  x${r.n / n}  ${key}`);
