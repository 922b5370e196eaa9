import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { loadModel } from '../../model/load.js';
import { type LatencyRow, measureLatency } from '../../eval/latency.js';
import { writeJsonAtomic, writeFileAtomic } from '../../util/atomic.js';
import { fail } from '../../util/errors.js';
import { writeLineChartPng } from '../../util/plot.js';
import { NO_HEAD_COPY_HELP, int, parseOptions } from '../options.js';

const schema = z.object({
  model: z.string().min(1),
  systemPromptTokens: z.string().regex(/^\d+(,\d+)*$/, 'must be comma-separated token counts, e.g. 0,250,500').transform((s) => s.split(',').map(Number)),
  virtualTokens: int.pipe(z.number().int().min(1)).default(16),
  userTokens: int.pipe(z.number().int().min(1)).default(32),
  decodeTokens: int.pipe(z.number().int().min(1)).default(64),
  repeats: int.pipe(z.number().int().min(1)).default(3),
  out: z.string().default('bench-results/latency'),
  headCopy: z.boolean().default(true),
});

export function latencyTable(rows: LatencyRow[]): string {
  const lines = ['| system prompt tokens | setup | time to first token (ms) | decode tokens/s |', '|---:|---|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.setup === 'soft prompt' ? '-' : r.systemTokens} | ${r.setup} | ${r.ttftMs.toFixed(1)} | ${r.decodeTokPerS.toFixed(1)} |`);
  return lines.join('\n');
}

export function register(program: Command): void {
  const bench = program.command('bench').description('measurements: latency of system prompts vs soft prompts');
  bench
    .command('latency')
    .description('time to first token and decode speed: long system prompt vs prefix-cache hit vs soft prompt')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--system-prompt-tokens <list>', 'system prompt lengths to measure, e.g. 0,250,500,1000,2000')
    .option('--virtual-tokens <n>', 'soft prompt length (default 16)')
    .option('--user-tokens <n>', 'user prompt length (default 32)')
    .option('--decode-tokens <n>', 'tokens generated per measurement (default 64)')
    .option('--repeats <n>', 'measurements per setup; the median is reported (default 3)')
    .option('--out <dir>', 'where to write latency.json, latency.md and the PNG charts (default bench-results/latency)')
    .option('--no-head-copy', NO_HEAD_COPY_HELP)
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'bench latency');
      const m = loadModel(o.model, undefined, { headCopy: o.headCopy });
      const longest = Math.max(...o.systemPromptTokens) + o.userTokens + o.decodeTokens + 1;
      if (longest > m.cfg.maxPositionEmbeddings) fail(`bench latency: --system-prompt-tokens up to ${Math.max(...o.systemPromptTokens)} exceeds the model's context (${m.cfg.maxPositionEmbeddings} tokens)`);
      process.stderr.write(`bench latency: ${o.model}, user prompt ${o.userTokens} tokens, ${o.decodeTokens} generated tokens, median of ${o.repeats}\n`);
      const rows = await measureLatency(m, { systemTokens: o.systemPromptTokens, virtualTokens: o.virtualTokens, userTokens: o.userTokens, decodeTokens: o.decodeTokens, repeats: o.repeats }, (r) =>
        process.stderr.write(`  ${r.setup.padEnd(16)} system ${String(r.systemTokens).padStart(5)}: TTFT ${r.ttftMs.toFixed(1)} ms, decode ${r.decodeTokPerS.toFixed(1)} tok/s\n`),
      );
      const table = latencyTable(rows);
      process.stdout.write(table + '\n');
      mkdirSync(o.out, { recursive: true });
      writeJsonAtomic(join(o.out, 'latency.json'), { model: o.model, options: o, rows });
      writeFileAtomic(join(o.out, 'latency.md'), table + '\n');
      const soft = rows.find((r) => r.setup === 'soft prompt')!;
      const series = (setup: LatencyRow['setup'], key: 'ttftMs' | 'decodeTokPerS') =>
        setup === 'soft prompt'
          ? o.systemPromptTokens.map((n) => [n, soft[key]] as const)
          : rows.filter((r) => r.setup === setup).map((r) => [r.systemTokens, r[key]] as const);
      const names = ['system prompt', 'prefix cache hit', 'soft prompt'] as const;
      const label = (s: string) => (s === 'soft prompt' ? `soft prompt (${o.virtualTokens} tokens)` : s);
      writeLineChartPng(join(o.out, 'ttft.png'), {
        title: 'Time to first token', xLabel: 'system prompt tokens', yLabel: 'ms',
        series: names.map((s) => ({ name: label(s), points: series(s, 'ttftMs') })),
      });
      writeLineChartPng(join(o.out, 'decode.png'), {
        title: 'Decode speed', xLabel: 'system prompt tokens', yLabel: 'tokens/s',
        series: names.map((s) => ({ name: label(s), points: series(s, 'decodeTokPerS') })),
      });
      process.stderr.write(`bench latency: wrote ${join(o.out, 'latency.md')}, ttft.png, decode.png\n`);
    });
}
