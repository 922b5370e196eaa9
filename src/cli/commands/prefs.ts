import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { aggregate, type AggregateReport } from '../../prefs/aggregate.js';
import { readCandidates } from '../../prefs/candidates.js';
import { PAIR_FORMATS, WRITE_FORMATS, pairFormat, readPairs, writePairs, type WriteFormat } from '../../prefs/pairs.js';
import { VoteStore } from '../../prefs/store.js';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { fail } from '../../util/errors.js';
import { num, parseOptions } from '../options.js';

const exportSchema = z.object({
  candidates: z.string().min(1),
  store: z.string().min(1),
  out: z.string().min(1),
  format: z.enum(WRITE_FORMATS).default('prompt-chosen-rejected'),
  report: z.string().optional(),
  margin: num.pipe(z.number().gt(0)).optional(),
  prior: num.pipe(z.number().gt(0)).default(1),
  kto: z.string().optional(),
});

const convertSchema = z.object({
  in: z.string().min(1),
  out: z.string().min(1),
  from: z.string().optional(),
  to: z.string().default('prompt-chosen-rejected'),
});

const pct = (x: number | null): string => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);

/** One-paragraph summary of an aggregation report. */
export function summarise(r: AggregateReport): string {
  const judged = r.perPrompt.reduce((a, p) => a + p.judgedPairs, 0);
  const lines = [
    `${r.pairs} pairs from ${r.prompts} prompts (${r.promptsWithVotes} with votes, ${r.voters} voters)`,
    `  ties: ${r.ties} prompts skipped (top two tied); all-bad votes: ${r.allBad}; thumbs: ${r.thumbs}`,
    `  disagreement: ${pct(r.disagreement)} of ${judged} candidate pairs judged by several voters`,
  ];
  if (r.unknownPromptVotes || r.invalidVotes)
    lines.push(`  ignored: ${r.unknownPromptVotes} votes on prompts not in the candidates file, ${r.invalidVotes} votes that do not fit their candidates`);
  return lines.join('\n') + '\n';
}

function exportAction(raw: unknown): void {
  const o = parseOptions(exportSchema, raw, 'prefs export');
  const sets = readCandidates(o.candidates);
  if (!existsSync(o.store)) fail(`prefs export: ${o.store}: no such vote store; check --store (plum vote writes one)`);
  const store = VoteStore.open(o.store);
  let result;
  try {
    result = aggregate(sets, store.votes(), { prior: o.prior, margin: o.margin });
  } finally {
    store.close();
  }
  writePairs(o.out, result.pairs, o.format);
  if (o.report) writeJsonAtomic(o.report, result.report);
  if (o.kto) {
    const rows = result.thumbs.map((t) => ({ prompt: t.messages ?? t.prompt, completion: t.completion, label: t.label, prompt_id: t.promptId }));
    writeFileAtomic(o.kto, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  }
  process.stdout.write(`${o.out}: ${summarise(result.report)}`);
}

function convertAction(raw: unknown): void {
  const o = parseOptions(convertSchema, raw, 'prefs convert');
  const from = o.from === undefined ? undefined : pairFormat(o.from, 'prefs convert: --from');
  const to = pairFormat(o.to, 'prefs convert: --to', WRITE_FORMATS) as WriteFormat;
  const pairs = readPairs(o.in, { format: from });
  writePairs(o.out, pairs, to);
  process.stdout.write(`${o.out}: wrote ${pairs.length} pairs as ${to}\n`);
}

export function register(program: Command): void {
  const prefs = program.command('prefs').description('preference data: export voted pairs, convert between formats');
  prefs
    .command('export')
    .description('aggregate votes (Bradley-Terry per prompt) into chosen/rejected pairs')
    .requiredOption('--candidates <file>', 'candidates JSONL (from plum sample)')
    .requiredOption('--store <file>', 'vote store (SQLite)')
    .requiredOption('--out <file>', 'pairs JSONL to write')
    .option('--format <name>', `output format: ${WRITE_FORMATS.join('|')}`, 'prompt-chosen-rejected')
    .option('--report <file>', 'write the full per-prompt report as JSON')
    .option('--margin <m>', 'emit every pair whose score gap is at least m (default: best vs worst only)')
    .option('--prior <a>', 'Bradley-Terry prior: virtual games per candidate against a reference', '1')
    .option('--kto <file>', 'also write thumbs up/down as KTO JSONL {prompt, completion, label}')
    .action(exportAction);
  prefs
    .command('convert')
    .description('convert preference pairs between formats')
    .requiredOption('--in <file>', 'pairs file (JSONL or JSON array, .gz ok)')
    .requiredOption('--out <file>', 'pairs JSONL to write (.gz = gzip)')
    .option('--from <format>', `input format (default: detected): ${PAIR_FORMATS.join('|')}`)
    .option('--to <format>', `output format: ${WRITE_FORMATS.join('|')}`, 'prompt-chosen-rejected')
    .action(convertAction);
}
