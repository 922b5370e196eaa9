/**
 * A supervised fine-tuning dataset: read + validate every record of one or more files, tokenise
 * with loss masks, apply the over-long policy, and split off a held-out set.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import type { PlumTokenizer } from '../model/tokenizer.js';
import { fail } from '../util/errors.js';
import { parseOrFail } from './issues.js';
import { readSftFile } from './read.js';
import { SFT_FORMATS, type SftFormat, type SourceRef } from './records.js';
import { shuffled } from './rng.js';
import { IGNORE_INDEX, tokenizeExample } from './tokenize.js';

export const OVERLONG_POLICIES = ['error', 'truncate', 'drop'] as const;
export type OverlongPolicy = (typeof OVERLONG_POLICIES)[number];

export interface SftExample {
  ids: number[];
  /** IGNORE_INDEX (-100) where there is no loss, else the token id (unshifted). */
  labels: number[];
  source: SourceRef;
}

export interface LoadSftOptions {
  /** Record format; detected per file from its first record when absent. */
  format?: SftFormat;
  /** Longest example in tokens (BOS and EOS included); no limit when absent. */
  maxLength?: number;
  /** What to do with longer examples (default 'error'): fail, keep the first maxLength tokens, or leave them out. */
  overlong?: OverlongPolicy;
  /** Further chat-template variables (enable_thinking ...). */
  extra?: Record<string, unknown>;
  /** Token that ends prompt/completion examples (default: the tokenizer's EOS). */
  eosId?: number;
}
const loadOptionsSchema = z.object({
  format: z.enum(SFT_FORMATS).optional(),
  maxLength: z.number().int().positive().optional(),
  overlong: z.enum(OVERLONG_POLICIES).default('error'),
  extra: z.record(z.string(), z.unknown()).optional(),
  eosId: z.number().int().nonnegative().optional(),
});

export interface SftStats {
  /** Records read (before dropping). */
  records: number;
  /** Tokens in the kept examples. */
  tokens: number;
  /** Tokens with loss in the kept examples. */
  lossTokens: number;
  /** Over-long examples left out ('drop', or 'truncate' leaving no loss tokens). */
  dropped: number;
  /** Examples cut to maxLength. */
  truncated: number;
  /** Examples tokenised segment by segment because the tokenizer merged across a loss boundary. */
  segmented: number;
}

export interface SftDataset {
  examples: SftExample[];
  stats: SftStats;
  /** The format of each file, in order. */
  formats: SftFormat[];
}

const lossCount = (labels: number[]): number => labels.reduce((n, l) => n + (l === IGNORE_INDEX ? 0 : 1), 0);

/** One line: how many are too long, the longest, and the flag that chooses a policy. */
function overlongMessage(over: SftExample[], total: number, maxLength: number): string {
  const longest = over.reduce((a, b) => (b.ids.length > a.ids.length ? b : a));
  const n = over.length;
  return (
    `${n} of ${total} examples ${n > 1 ? 'are' : 'is'} longer than --max-length ${maxLength} tokens (the longest, ` +
    `${longest.source.file}:${longest.source.line}, has ${longest.ids.length}); raise --max-length, or pass --overlong truncate ` +
    `(keep the first ${maxLength} tokens) or --overlong drop (leave them out)`
  );
}

/**
 * Read, validate and tokenise `file` (or several files, in order).
 *
 * @example
 * const { examples, stats } = loadSftDataset('train.jsonl', tok, { maxLength: 1024, overlong: 'truncate' });
 */
export function loadSftDataset(file: string | string[], tok: PlumTokenizer, opts: LoadSftOptions = {}): SftDataset {
  const o = parseOrFail(loadOptionsSchema, opts, 'SFT data options');
  const files = typeof file === 'string' ? [file] : file;
  if (files.length === 0) fail('no data file given; pass at least one JSONL or JSON file');
  const formats: SftFormat[] = [];
  const all: SftExample[] = [];
  let segmented = 0;
  for (const f of files) {
    const { format, records } = readSftFile(f, { format: o.format });
    formats.push(format);
    for (const record of records) {
      const ex = tokenizeExample(tok, record, { extra: o.extra, eosId: o.eosId });
      if (ex.segmented) segmented++;
      all.push({ ids: ex.ids, labels: ex.labels, source: record.source });
    }
  }
  const stats: SftStats = { records: all.length, tokens: 0, lossTokens: 0, dropped: 0, truncated: 0, segmented };
  let examples = all;
  const max = o.maxLength;
  if (max !== undefined) {
    const over = all.filter((e) => e.ids.length > max);
    if (over.length > 0 && o.overlong === 'error') fail(`${files.join(', ')}: ${overlongMessage(over, all.length, max)}`);
    examples = [];
    for (const e of all) {
      if (e.ids.length <= max) examples.push(e);
      else if (o.overlong === 'truncate' && lossCount(e.labels.slice(0, max)) > 0) {
        examples.push({ ids: e.ids.slice(0, max), labels: e.labels.slice(0, max), source: e.source });
        stats.truncated++;
      } else stats.dropped++;
    }
  }
  for (const e of examples) {
    stats.tokens += e.ids.length;
    stats.lossTokens += lossCount(e.labels);
  }
  return { examples, stats, formats };
}

export interface HeldOutOptions {
  /** Share of the examples to hold out, in (0, 1); at least one example and never all of them. */
  fraction?: number;
  /** Hold out exactly the examples read from this file (instead of `fraction`). */
  file?: string;
  /** Seed of the random choice (fraction only). */
  seed: number;
}
const heldOutSchema = z
  .object({ fraction: z.number().gt(0).lt(1).optional(), file: z.string().min(1).optional(), seed: z.number().int() })
  .refine((o) => (o.fraction === undefined) !== (o.file === undefined), 'give exactly one of fraction and file (--held-out-fraction or --held-out-file)');

/**
 * Split examples into train and held-out sets; both keep the input order. The same seed gives
 * the same split.
 *
 * @example
 * const { train, heldOut } = splitHeldOut(examples, { fraction: 0.1, seed: 0 });
 */
export function splitHeldOut<E extends { source: SourceRef }>(examples: E[], opts: HeldOutOptions): { train: E[]; heldOut: E[] } {
  const { fraction, file, seed } = parseOrFail(heldOutSchema, opts, 'held-out split');
  let held: Set<number>;
  if (file !== undefined) {
    const target = resolve(file);
    held = new Set(examples.flatMap((e, i) => (resolve(e.source.file) === target ? [i] : [])));
    if (held.size === 0) fail(`${file}: no examples come from this file; load it together with the training data`);
  } else {
    if (examples.length < 2) fail(`held-out split: ${examples.length} example(s) cannot be split; add more data or leave out --held-out-fraction`);
    const k = Math.min(examples.length - 1, Math.max(1, Math.round(fraction! * examples.length)));
    held = new Set(shuffled(examples.map((_, i) => i), seed).slice(0, k));
  }
  if (held.size === examples.length) fail(`held-out split: every example is held out, none is left to train on; add training data`);
  return { train: examples.filter((_, i) => !held.has(i)), heldOut: examples.filter((_, i) => held.has(i)) };
}
