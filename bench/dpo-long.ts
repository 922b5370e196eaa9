/**
 * `plum train dpo` end to end on long dialogues: the first 64 pairs of ../shared's HH-RLHF
 * harmless-base test set (`prefs convert`; up to ~1,400 tokens on the bench model's tokenizer),
 * LoRA, batch 2, on SmolLM2-135M shapes (or PLUM_BENCH_MODEL). Prints the command's peak resident
 * memory (GNU time's %M), its wall time, the median tokens/s of the steps after the first and the
 * final loss. `node --import tsx bench/dpo-long.ts [--recompute attention|layers|none]
 * [--steps 4]` (BENCHMARKS.md findings 44-45).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SHARED } from '../src/testing/shared.js';
import { benchModelDir } from './model.js';
import { median } from './timing.js';

const { values } = parseArgs({ options: { recompute: { type: 'string', default: 'attention' }, steps: { type: 'string', default: '4' } } });
const hh = join(SHARED, 'datasets', 'hh-rlhf', 'harmless-base-test.jsonl.gz');
if (!existsSync(hh)) throw new Error(`bench/dpo-long.ts: ${hh} is absent (it needs ../shared)`);
const plum = join(import.meta.dirname, '..', 'bin', 'plum.js');
const dir = mkdtempSync(join(tmpdir(), 'plum-dpo-long-'));
const all = join(dir, 'pairs.jsonl');
const conv = spawnSync(process.execPath, [plum, 'prefs', 'convert', '--in', hh, '--out', all], { encoding: 'utf8' });
if (conv.status !== 0) throw new Error(`plum prefs convert failed:\n${conv.stderr}`);
const pairs = join(dir, 'p64.jsonl');
writeFileSync(pairs, readFileSync(all, 'utf8').split('\n').slice(0, 64).join('\n') + '\n');
const out = join(dir, 'out');
const args = ['train', 'dpo', '--model', benchModelDir(process.env.PLUM_BENCH_MODEL), '--pairs', pairs, '--method', 'lora', '--beta', '0.1', '--batch-size', '2',
  '--max-steps', values.steps!, '--save-every', '1000', '--recompute', values.recompute!, '--out', out, '--quiet'];
const timed = existsSync('/usr/bin/time');
const t0 = performance.now();
const r = timed ? spawnSync('/usr/bin/time', ['-f', 'PEAK_KB %M', process.execPath, plum, ...args], { encoding: 'utf8' }) : spawnSync(process.execPath, [plum, ...args], { encoding: 'utf8' });
const wall = (performance.now() - t0) / 1000;
if (r.status !== 0) throw new Error(`plum train dpo failed (${r.status}):\n${r.stderr}`);
const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number; tokens_per_s?: number });
const steps = metrics.filter((x) => x.loss !== undefined);
const rates = steps.filter((x) => x.step > 1 && x.tokens_per_s !== undefined).map((x) => x.tokens_per_s!);
const peak = Number(/PEAK_KB (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024 / 1024;
console.log(`dpo, 64 HH-RLHF pairs, --recompute ${values.recompute}: peak ${timed ? peak.toFixed(2) + ' GB' : 'n/a (no /usr/bin/time)'}, ${wall.toFixed(0)} s for ${steps.length} steps (reference pass included), ` +
  `${rates.length ? median(rates).toFixed(0) : '-'} tok/s after step 1, final loss ${steps.at(-1)?.loss?.toFixed(4)}`);
rmSync(dir, { recursive: true, force: true });
