/**
 * `plum train sft` end to end on chat data whose lengths are not powers of two, as a user's are:
 * what padding and ORT's arenas cost outside the fixed 4 x 128 steps of `npm run bench:methods`.
 * Writes a deterministic dataset (`uniform`: 64 records of 261-337 tokens on the bench model's
 * tokenizer; `varied`: 48 records of 41-485 tokens, four length buckets), runs the real command on
 * SmolLM2-135M shapes (12 steps, batch 4, no held-out set) and prints the steady-state tokens/s
 * (median of metrics.jsonl's steps 4-12), the wall time and the command's peak resident memory
 * (GNU time's %M, of the training process). `node --import tsx bench/sft-data.ts [uniform|varied]
 * [--method full]`; PLUM_ORT_ARENA=on|off passes through for A/B runs (BENCHMARKS.md findings
 * 40-41).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelDir } from './model.js';
import { median } from './timing.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { method: { type: 'string', default: 'full' } } });
const kind = positionals[0] ?? 'uniform';
if (kind !== 'uniform' && kind !== 'varied') throw new Error(`bench/sft-data.ts: unknown dataset "${kind}" (uniform or varied)`);
const words = 'the cat sat on a mat and the dog ran to the park where children played with a red ball under the tall green tree'.split(' ');
let s = kind === 'uniform' ? 1 : 2;
const rand = (n: number): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s % n);
const text = (n: number): string => Array.from({ length: n }, () => words[rand(words.length)]).join(' ');
const records = Array.from({ length: kind === 'uniform' ? 64 : 48 }, () => {
  const [u, a] = kind === 'uniform' ? [40, 60] : [[5, 15, 40, 80][rand(4)]!, [5, 15, 40, 80][rand(4)]!];
  return JSON.stringify({ messages: [{ role: 'user', content: text(u) }, { role: 'assistant', content: text(a) }] });
});
const dir = mkdtempSync(join(tmpdir(), 'plum-sft-data-'));
const data = join(dir, 'data.jsonl');
writeFileSync(data, records.join('\n') + '\n');
const out = join(dir, 'out');
const model = benchModelDir(process.env.PLUM_BENCH_MODEL);
const plum = join(import.meta.dirname, '..', 'bin', 'plum.js');
const args = ['train', 'sft', '--model', model, '--data', data, '--method', values.method!, '--out', out, '--max-steps', '12', '--save-every', '1000', '--exact-match', '0', '--quiet'];
const timed = existsSync('/usr/bin/time');
const t0 = performance.now();
const r = timed ? spawnSync('/usr/bin/time', ['-f', 'PEAK_KB %M', process.execPath, plum, ...args], { encoding: 'utf8' }) : spawnSync(process.execPath, [plum, ...args], { encoding: 'utf8' });
const wall = (performance.now() - t0) / 1000;
if (r.status !== 0) throw new Error(`plum train sft failed (${r.status}):\n${r.stderr}`);
const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; tokens_per_s?: number });
const steady = metrics.filter((m) => m.step >= 4 && m.tokens_per_s !== undefined).map((m) => m.tokens_per_s!);
const peak = Number(/PEAK_KB (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024 / 1024;
console.log(`${kind} data, ${values.method}: ${median(steady).toFixed(0)} tok/s (steps 4-12), ${wall.toFixed(1)} s for 12 steps, peak ${timed ? peak.toFixed(2) + ' GB' : 'n/a (no /usr/bin/time)'}${process.env.PLUM_ORT_ARENA ? `, PLUM_ORT_ARENA=${process.env.PLUM_ORT_ARENA}` : ''}`);
rmSync(dir, { recursive: true, force: true });
