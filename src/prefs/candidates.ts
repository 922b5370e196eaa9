/**
 * Candidate sets: several completions of one prompt, waiting for votes. Stored as JSONL, one set
 * per line, so that `plum sample` can append a set as soon as it is generated and resume after a
 * crash:
 *
 * ```json
 * {"promptId":"3f2a9c1b0d4e","prompt":"Tell a story","candidates":[{"id":"3f2a9c1b0d4e-0","text":"Once ...","finishReason":"stop","tokens":41}]}
 * ```
 *
 * An append is one write followed by fsync, so a crash leaves at most a partial last line (no
 * newline, not valid JSON). Reading reports it on one line; `repair` cuts it off instead.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { chatMessageSchema, type ChatMessage } from '../model/chat.js';
import { describeIssue } from '../data/issues.js';
import { fail } from '../util/errors.js';

export interface Candidate {
  /** Unique within its set; `plum sample` writes `${promptId}-${k}`. */
  id: string;
  text: string;
  /** 'stop' (EOS or stop string) or 'length' (hit --max-tokens). */
  finishReason?: string;
  /** Number of generated tokens. */
  tokens?: number;
}

export interface CandidateSet {
  promptId: string;
  /** The prompt text (the last user message when `messages` is given). */
  prompt: string;
  /** The conversation the model answered (with --chat or a messages prompt). */
  messages?: ChatMessage[];
  candidates: Candidate[];
  /** How the candidates were made (model, sampling options ...). */
  meta?: Record<string, unknown>;
}

const candidateSchema = z.object({
  id: z.string().min(1, 'is empty; give every candidate an id'),
  text: z.string(),
  finishReason: z.string().optional(),
  tokens: z.number().int().min(0).optional(),
});

export const candidateSetSchema = z.object({
  promptId: z.string().min(1, 'is empty; give every prompt an id'),
  prompt: z.string(),
  messages: z.array(chatMessageSchema).optional(),
  candidates: z.array(candidateSchema).min(1, 'is empty; a set needs at least one candidate'),
  meta: z.record(z.string(), z.unknown()).optional(),
});

export interface ReadCandidatesOptions {
  /**
   * Cut off a partial last line (left by a crash during an append) instead of failing; the file
   * is truncated so that the next append starts on a fresh line.
   */
  repair?: boolean;
  /** Told about a repair (e.g. to print it). */
  onRepair?: (message: string) => void;
}

/**
 * Read and validate every candidate set of a JSONL file. Fails on the first bad line with
 * `file:line: problem; fix`: invalid JSON, a missing field, a duplicate prompt id (in the file)
 * or a duplicate candidate id (in a set).
 *
 * @example
 * readCandidates('candidates.jsonl'); // [{ promptId: '3f2a9c1b0d4e', prompt: 'Tell a story', candidates: [...] }]
 */
export function readCandidates(file: string, opts: ReadCandidatesOptions = {}): CandidateSet[] {
  if (!existsSync(file) || !statSync(file).isFile()) fail(`${file}: no such candidates file; check the path (plum sample writes one)`);
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const sets: CandidateSet[] = [];
  const firstLine = new Map<string, number>();
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineText = lines[i]!;
    const lineNo = i + 1;
    const start = offset;
    offset += Buffer.byteLength(lineText, 'utf8') + 1;
    if (lineText.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(lineText);
    } catch (e) {
      const partial = i === lines.length - 1; // no newline after it: an append cut short
      if (partial && opts.repair) {
        truncateSync(file, start);
        opts.onRepair?.(`${file}:${lineNo}: dropped a partial last line (left by an interrupted write)`);
        break;
      }
      if (partial)
        fail(`${file}:${lineNo}: incomplete last line (an interrupted write); rerun plum sample with this --out to drop it, or delete the line`);
      fail(`${file}:${lineNo}: not valid JSON (${(e as Error).message.replace(/ in JSON at position \d+.*$/, '')}); each line must be one candidate set object`);
    }
    const r = candidateSetSchema.safeParse(raw);
    if (!r.success) fail(`${file}:${lineNo}: ${describeIssue(r.error.issues[0]!, raw)}`);
    const set = r.data as CandidateSet;
    const seen = firstLine.get(set.promptId);
    if (seen !== undefined) fail(`${file}:${lineNo}: duplicate promptId ${JSON.stringify(set.promptId)} (first on line ${seen}); keep one of the two lines`);
    firstLine.set(set.promptId, lineNo);
    const ids = new Set<string>();
    set.candidates.forEach((c, k) => {
      if (ids.has(c.id)) fail(`${file}:${lineNo}: candidates[${k}].id ${JSON.stringify(c.id)} appears twice in this set; candidate ids must be unique`);
      ids.add(c.id);
    });
    sets.push(set);
  }
  return sets;
}

/** True when the file is non-empty and its last byte is not a newline. */
function lacksFinalNewline(file: string): boolean {
  if (!existsSync(file)) return false;
  const size = statSync(file).size;
  if (size === 0) return false;
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

/**
 * Append one set as a line and fsync, creating the file (and its folder) if needed. The set is
 * validated first; the caller keeps prompt ids unique (readCandidates checks on reading).
 */
export function appendCandidates(file: string, set: CandidateSet): void {
  const r = candidateSetSchema.safeParse(set);
  if (!r.success) fail(`appendCandidates: ${describeIssue(r.error.issues[0]!, set)}`);
  mkdirSync(dirname(file), { recursive: true });
  const line = (lacksFinalNewline(file) ? '\n' : '') + JSON.stringify(set) + '\n';
  const fd = openSync(file, 'a');
  try {
    const buf = Buffer.from(line, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
