/**
 * Reading a supervised data file: JSONL (one record per line) or a JSON array, told apart by the
 * first non-blank character. The record format comes from the first record's keys unless given.
 *
 * Every record is validated before anything else happens; a bad file fails with ONE line: the
 * first problem as `file:line: field problem; fix`, plus how many other records are bad.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { fail } from '../util/errors.js';
import { jsonType, parseOrFail } from './issues.js';
import { SFT_FORMATS, detectFormat, parseRecord, type SftFormat, type SftRecord, type SourceRef } from './records.js';

export interface ReadOptions {
  /** Record format; detected from the first record when absent. */
  format?: SftFormat;
}
const readOptionsSchema = z.object({ format: z.enum(SFT_FORMATS).optional() });

export interface ReadResult {
  format: SftFormat;
  records: SftRecord[];
}

interface RawRecord {
  raw: unknown;
  source: SourceRef;
}
interface Problem {
  file: string;
  line: number;
  text: string;
}

/**
 * Line (1-based) where each top-level element of a JSON array starts. `text` must be valid JSON
 * whose top level is an array.
 */
export function arrayElementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let expectElement = false;
  for (const c of text) {
    if (c === '\n') line++;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (depth === 1 && expectElement && c !== ']') lines.push(line);
    expectElement = false;
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') expectElement = ++depth === 1;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectElement = true;
  }
  return lines;
}

/** Line of a JSON.parse error: V8 says "... at position N" (Node 20) and sometimes "(line L column C)". */
function parseErrorLine(text: string, message: string): number | null {
  const lc = /line (\d+) column/.exec(message);
  if (lc) return Number(lc[1]);
  const pos = /at position (\d+)/.exec(message);
  if (!pos) return null;
  let line = 1;
  for (let i = 0; i < Math.min(Number(pos[1]), text.length); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The parser's message without the position (the line is in the prefix). */
const parseErrorText = (e: unknown): string => (e as Error).message.replace(/ in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)$/, '');

function readJsonl(file: string, text: string, problems: Problem[]): RawRecord[] {
  const out: RawRecord[] = [];
  text.split('\n').forEach((lineText, i) => {
    if (lineText.trim() === '') return;
    try {
      out.push({ raw: JSON.parse(lineText), source: { file, line: i + 1 } });
    } catch (e) {
      problems.push({ file, line: i + 1, text: `not valid JSON (${parseErrorText(e)}); each line must be one complete JSON object` });
    }
  });
  return out;
}

function readJsonArray(file: string, text: string): RawRecord[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const line = parseErrorLine(text, (e as Error).message);
    fail(`${file}${line ? `:${line}` : ''}: not valid JSON (${parseErrorText(e)}); fix the file so that it is one JSON array of records`);
  }
  if (!Array.isArray(json)) fail(`${file}: a JSON file must hold an array of records (got ${jsonType(json)}); wrap the records in [ ... ]`);
  if (json.length === 0) fail(`${file}: the JSON array is empty; add at least one record`);
  const lines = arrayElementLines(text);
  return json.map((raw, index) => ({ raw, source: { file, line: lines[index] ?? 1, index } }));
}

/** True for a pretty-printed JSON object: the first line alone is not JSON but the whole text is. */
function isSpreadObject(text: string): boolean {
  const firstLine = text.split('\n').find((l) => l.trim() !== '')!;
  try {
    JSON.parse(firstLine);
    return false;
  } catch {
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  }
}

/** Throw the first problem, with how many more there are. */
function report(problems: Problem[]): never {
  const first = problems[0]!;
  const more = problems.length - 1;
  return fail(`${first.file}:${first.line}: ${first.text}${more > 0 ? ` (and ${more} more invalid record${more > 1 ? 's' : ''})` : ''}`);
}

const location = (s: SourceRef): string => `${s.file}:${s.line}`;
/** JSON array records name their index in the field path: `[3].output`. */
const withIndex = (s: SourceRef, problem: string): string =>
  s.index === undefined ? problem : problem.startsWith('the record') ? `[${s.index}]${problem.slice('the record'.length)}` : `[${s.index}].${problem}`;

/**
 * Read and validate every record of `file`.
 *
 * @example
 * readSftFile('data/train.jsonl'); // { format: 'openai-chat', records: [{ kind: 'chat', messages: [...], source: { file, line: 1 } }, ...] }
 */
export function readSftFile(file: string, opts: ReadOptions = {}): ReadResult {
  const { format: given } = parseOrFail(readOptionsSchema, opts, 'data options');
  if (!existsSync(file) || !statSync(file).isFile()) fail(`${file}: no such data file; check the path`);
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  const start = text.trimStart()[0];
  if (start === undefined) fail(`${file}: the file is empty; put one JSON record per line (JSONL) or a JSON array of records in it`);
  if (start !== '[' && start !== '{')
    fail(`${file}:1: not JSON (starts with ${JSON.stringify(start)}); write one JSON object per line (JSONL) or a JSON array of records`);

  if (start === '{' && isSpreadObject(text))
    fail(`${file}: holds one JSON object spread over several lines; write one record per line (JSONL) or wrap the records in [ ... ]`);
  const problems: Problem[] = [];
  const raws = start === '[' ? readJsonArray(file, text) : readJsonl(file, text, problems);
  const first = raws[0];
  let format = given;
  if (!format && first) {
    format = detectFormat(first.raw) ?? undefined;
    // A corpus mixes {"text"} and {"messages"} records: any text record makes the file a corpus.
    if (format === 'openai-chat' && raws.some((r) => detectFormat(r.raw) === 'corpus')) format = 'corpus';
    if (!format && problems.length > 0) report(problems);
    if (!format) {
      const keys = first.raw !== null && typeof first.raw === 'object' ? Object.keys(first.raw).join(', ') : jsonType(first.raw);
      fail(
        `${location(first.source)}: cannot tell the data format from this record (${keys || 'no keys'}); expected "messages" (OpenAI chat), ` +
          `"prompt" + "completion", "instruction" + "output" (Alpaca), "conversations" (ShareGPT) or "text" (corpus), or pass --format ${SFT_FORMATS.join('|')}`,
      );
    }
  }
  const records: SftRecord[] = [];
  for (const { raw, source } of raws) {
    const r = parseRecord(format!, raw, source);
    if (r.ok) records.push(r.record);
    else problems.push({ file, line: source.line, text: withIndex(source, r.problem) });
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line);
    report(problems);
  }
  return { format: format!, records };
}
