/**
 * `npm run bench -- [matmul] [memory] [prefill] [decode] [train] [--model DIR] [--threads N]
 *   [--runs N] [--markdown] [--no-head-copy]`
 *
 * Speed of Plum on a SmolLM2-135M-shaped model against baselines measured in the same run with
 * the same thread count: plain ONNX Runtime MatMul GFLOPS, and memory bandwidth for decode.
 * With no names, runs all. Prints a table and writes bench/results/<date>.json.
 * Without --model, a random model is written once by `plum init` under the OS temp folder.
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/model/load.js';
import { OrtBackend } from '../src/runtime/ort.js';
import { machineInfo, writeResult } from './machine.js';
import { CopyBandwidth, MatMulBaseline, ReadBandwidth } from './baseline.js';
import { type Baselines, type Row, benchDecode, benchModelDir, benchPrefill, benchTrain } from './model.js';
import { QuietSampler, TimedBackend, median, seconds } from './timing.js';

const ALL = ['matmul', 'memory', 'prefill', 'decode', 'train'] as const;
type BenchName = (typeof ALL)[number];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    threads: { type: 'string' },
    runs: { type: 'string' },
    markdown: { type: 'boolean' },
    'no-head-copy': { type: 'boolean' },
  },
});
const unknown = positionals.filter((p) => !(ALL as readonly string[]).includes(p));
if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}; choose from ${ALL.join(' ')}`);
const selected = new Set<BenchName>(positionals.length ? (positionals as BenchName[]) : ALL);
const threads = values.threads ? Number(values.threads) : availableParallelism();
const runsOverride = values.runs ? Number(values.runs) : undefined;
const runs = (n: number): number => runsOverride ?? n;

/** Reference rows: plain MatMul at the doc's shapes, and memory bandwidth. */
async function referenceRows(ctx: Baselines): Promise<Row[]> {
  const rows: Row[] = [];
  const n = runs(7);
  // Each sample repeats f to last >= 50 ms: /proc/stat counts in 10 ms ticks, so shorter
  // samples cannot be told quiet or not.
  const measure = async (f: () => Promise<number>) => {
    await f(); // warm-up (and session creation)
    const reps = Math.ceil(0.05 / (await f()));
    const many = async () => {
      let t = 0;
      for (let i = 0; i < reps; i++) t += await f();
      return t / reps;
    };
    const q = new QuietSampler<number>(10);
    return { s: median(await q.collect(n, many)), stats: q.stats(n) };
  };
  const ref = (name: string, shape: string, m: { s: number; stats: Record<string, number> }, gflops: number, extra = {}): Row => ({
    name, shape, runs: m.stats.samples!, ms: m.s * 1e3, graphMs: m.s * 1e3, tokensPerSec: NaN, gflops,
    baseline: { what: '', value: NaN, unit: '' }, ratio: NaN, target: NaN, extra: { ...extra, ...m.stats },
  });
  if (selected.has('matmul')) {
    for (const [M, K, N] of [[512, 576, 1536], [512, 1536, 576], [2048, 576, 576], [512, 576, 49152], [1, 576, 49152]] as const) {
      const m = await measure(() => ctx.matmul.run(M, [{ weight: '', K, N }], 0));
      rows.push(ref('matmul', `${M}x${K}x${N}`, m, (2 * M * K * N) / m.s / 1e9));
    }
  }
  if (selected.has('memory')) {
    const copy = await measure(async () => ctx.copy.bytes / ctx.copy.sample());
    rows.push(ref('memcpy 1 thread', `${ctx.copy.bytes / 2 ** 20} MiB`, copy, NaN, { GBps: ctx.copy.bytes / copy.s / 1e9 }));
    const read = await measure(async () => ctx.read.bytes / (await ctx.read.sample()));
    rows.push(ref(`ORT read ${threads} thr`, `${ctx.read.bytes / 2 ** 20} MiB`, read, NaN, { GBps: ctx.read.bytes / read.s / 1e9 }));
  }
  return rows;
}

const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

function printTable(rows: Row[], markdown: boolean): void {
  const head = ['bench', 'shape', 'quiet runs', 'median ms', 'graph ms', 'tok/s', 'GFLOPS', 'baseline', 'ratio', 'target'];
  const body = rows.map((r) => [
    r.name,
    r.shape,
    `${r.runs}${r.extra.noisy ? ` NOISY (${r.extra.rejectedNoisy} rejected)` : ''}`,
    fmt(r.ms),
    fmt(r.graphMs),
    fmt(r.tokensPerSec),
    Number.isFinite(r.gflops) ? fmt(r.gflops) : r.extra.GBps !== undefined ? `${fmt(r.extra.GBps)} GB/s` : '-',
    Number.isFinite(r.baseline.value) ? `${fmt(r.baseline.value)} ${r.baseline.unit}` : '-',
    Number.isFinite(r.ratio) ? `${fmt(100 * r.ratio)}%` : '-',
    Number.isFinite(r.target) ? `>=${fmt(100 * r.target, 0)}% ${r.ratio >= r.target ? 'met' : 'MISSED'}` : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = markdown
    ? (cells: string[]) => `| ${cells.join(' | ')} |`
    : (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(head));
  console.log(markdown ? `|${head.map(() => '---').join('|')}|` : widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  for (const r of rows) if (r.baseline.what) console.log(`  ${r.name}: baseline = ${r.baseline.what}`);
}

async function main(): Promise<void> {
  const info = { ...machineInfo(threads), date: new Date().toISOString(), loadavgBefore: loadavg()[0]! };
  console.log(`${info.cpu}, ${info.cores} cores, ${threads} ORT threads, Node ${info.node}, onnxruntime-node ${info.ort}`);
  if (info.loadavgBefore > 0.5) console.log(`warning: load average ${info.loadavgBefore.toFixed(2)}: other processes share the CPU; figures will be noisy`);
  const backend = new TimedBackend(new OrtBackend({ threads }));
  const base: Baselines = { backend, matmul: new MatMulBaseline(threads), copy: new CopyBandwidth(), read: new ReadBandwidth(threads) };
  const rows = await referenceRows(base);
  let dir = '';
  let loadS = 0;
  const t0 = performance.now();
  if (['prefill', 'decode', 'train'].some((n) => selected.has(n as BenchName))) {
    dir = benchModelDir(values.model);
    let model!: ReturnType<typeof loadModel>;
    loadS = await seconds(() => (model = loadModel(dir, backend, { headCopy: !values['no-head-copy'] }))); // as plum generate / serve
    const ctx = { ...base, cfg: model.cfg, weights: model.lm.weights, lm: model.lm };
    if (selected.has('prefill')) rows.push(await benchPrefill(ctx, 512, runs(5)));
    if (selected.has('decode')) rows.push(await benchDecode(ctx, 512, runs(8)));
    if (selected.has('train')) rows.push(await benchTrain(ctx, 4, 128, runs(5)));
  }
  console.log();
  printTable(rows, values.markdown ?? false);
  const result = { machine: { ...info, loadavgAfter: loadavg()[0]! }, model: dir, modelLoadMs: loadS * 1e3, modelSeconds: (performance.now() - t0) / 1e3, rows };
  const file = writeResult('', info.date, result);
  console.log(`\nwrote ${file}`);
}

await main();
