/**
 * Preference pairs (a prompt, a chosen and a rejected reply) and the file formats they travel in.
 *
 * | format                   | one record                                                                                     |
 * | ------------------------ | ---------------------------------------------------------------------------------------------- |
 * | `prompt-chosen-rejected` | `{"prompt": "...", "chosen": "...", "rejected": "..."}`, or TRL's conversational form with     |
 * |                          | `"prompt": [{"role", "content"}, ...]`, `"chosen": [{"role": "assistant", "content"}]`       |
 * | `openai`                 | `{"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", "content"}],`      |
 * |                          | ` "non_preferred_output": [{"role": "assistant", "content"}]}` (OpenAI preference tuning)      |
 * | `hh-rlhf`                | `{"chosen": "\n\nHuman: ...\n\nAssistant: ...", "rejected": "..."}` (Anthropic HH-RLHF)         |
 * | `sharegpt`               | `{"conversations": [{"from": "human", "value"}], "chosen": {"from": "gpt", "value"},`         |
 * |                          | ` "rejected": {...}, "system"?}` (LLaMA-Factory DPO)                                           |
 * | `alpaca`                 | `{"instruction", "input"?, "chosen", "rejected", "system"?, "history"?}` (LLaMA-Factory DPO)   |
 *
 * Files are JSONL or a JSON array, optionally gzipped (`.gz`). Plum writes
 * `prompt-chosen-rejected` and `openai`.
 *
 * HH-RLHF stores two whole transcripts. The prompt is their longest common prefix cut back to the
 * last `\n\nAssistant:` in it (as TRL's HH script does); the rest of each transcript is the reply.
 * The prefix becomes `messages` (Human -> user, Assistant -> assistant).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { chatMessageSchema, type ChatMessage } from '../model/chat.js';
import { describeIssue, jsonType } from '../data/issues.js';
import { arrayElementLines } from '../data/read.js';
import { writeFileAtomic } from '../util/atomic.js';
import { fail } from '../util/errors.js';

export interface PreferencePair {
  /** The prompt text: the last user message when `messages` is given. */
  prompt: string;
  /** The conversation before the reply, when the pair comes from a chat. */
  messages?: ChatMessage[];
  chosen: string;
  rejected: string;
  promptId?: string;
  /** Where the pair was read from. */
  source?: { file: string; line: number };
}

export const PAIR_FORMATS = ['prompt-chosen-rejected', 'openai', 'hh-rlhf', 'sharegpt', 'alpaca'] as const;
export type PairFormat = (typeof PAIR_FORMATS)[number];
export const WRITE_FORMATS = ['prompt-chosen-rejected', 'openai'] as const;
export type WriteFormat = (typeof WRITE_FORMATS)[number];

type Parsed = { ok: true; pair: PreferencePair } | { ok: false; problem: string };

const assistantTurn = z.object({ role: z.literal('assistant'), content: z.string() });
const oneReply = z.array(assistantTurn).length(1, 'must hold exactly one {"role": "assistant", "content"} message');
const messageList = z.array(chatMessageSchema).min(1, 'is empty; add the conversation as {"role", "content"} objects');

const schemas = {
  'prompt-chosen-rejected': z.object({
    prompt: z.union([z.string(), messageList], { error: 'must be a string or a list of {"role", "content"} messages' }),
    chosen: z.union([z.string(), oneReply], { error: 'must be a string or [{"role": "assistant", "content": "..."}]' }),
    rejected: z.union([z.string(), oneReply], { error: 'must be a string or [{"role": "assistant", "content": "..."}]' }),
    prompt_id: z.string().optional(),
  }),
  openai: z.object({
    input: z.object({ messages: messageList }),
    preferred_output: oneReply,
    non_preferred_output: oneReply,
  }),
  'hh-rlhf': z.object({ chosen: z.string(), rejected: z.string() }),
  sharegpt: (() => {
    const turn = z.object({ from: z.enum(['human', 'user', 'gpt', 'assistant', 'system']), value: z.string() });
    return z.object({
      conversations: z.array(turn).min(1, 'is empty; add the conversation as {"from", "value"} objects'),
      chosen: turn,
      rejected: turn,
      system: z.string().nullish(),
    });
  })(),
  alpaca: z.object({
    instruction: z.string(),
    input: z.string().nullish(),
    chosen: z.string(),
    rejected: z.string(),
    system: z.string().nullish(),
    history: z.array(z.tuple([z.string(), z.string()])).nullish(),
  }),
} satisfies Record<PairFormat, z.ZodType>;

const SHAREGPT_ROLES: Record<string, string> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system' };

/** The last user message's content ('' when there is none). */
export function lastUserContent(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return messages[i]!.content;
  return '';
}

const fromMessages = (messages: ChatMessage[], chosen: string, rejected: string): PreferencePair => ({
  prompt: lastUserContent(messages),
  messages,
  chosen,
  rejected,
});

/** Longest common prefix of two strings. */
function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

const HH_ASSISTANT = '\n\nAssistant:';

/** `\n\nHuman: a\n\nAssistant: b` -> [{user, a}, {assistant, b}] */
export function parseHhDialogue(text: string): ChatMessage[] | null {
  const parts = text.split(/\n\n(Human|Assistant):/);
  if (parts[0]!.trim() !== '') return null;
  const messages: ChatMessage[] = [];
  for (let i = 1; i < parts.length; i += 2) messages.push({ role: parts[i] === 'Human' ? 'user' : 'assistant', content: parts[i + 1]!.trim() });
  return messages.length ? messages : null;
}

/** Split an HH-RLHF record's two transcripts into the shared dialogue and the two final replies. */
export function splitHhRlhf(chosen: string, rejected: string): Parsed {
  const cut = commonPrefix(chosen, rejected).lastIndexOf(HH_ASSISTANT);
  if (cut < 0) return { ok: false, problem: 'chosen and rejected share no "\\n\\nAssistant:" turn; both must be the same dialogue with different final replies' };
  const messages = parseHhDialogue(chosen.slice(0, cut));
  if (!messages) return { ok: false, problem: 'chosen does not start with "\\n\\nHuman:"; write the dialogue as "\\n\\nHuman: ...\\n\\nAssistant: ..."' };
  const reply = (t: string): string => t.slice(cut + HH_ASSISTANT.length).trim();
  return { ok: true, pair: fromMessages(messages, reply(chosen), reply(rejected)) };
}

const reply = (r: string | { content: string }[]): string => (typeof r === 'string' ? r : r[0]!.content);

const NORMALISE: { [F in PairFormat]: (d: z.infer<(typeof schemas)[F]>) => Parsed } = {
  'prompt-chosen-rejected': (d) => {
    const base = typeof d.prompt === 'string' ? { prompt: d.prompt, chosen: reply(d.chosen), rejected: reply(d.rejected) } : fromMessages(d.prompt, reply(d.chosen), reply(d.rejected));
    return { ok: true, pair: d.prompt_id !== undefined ? { ...base, promptId: d.prompt_id } : base };
  },
  openai: (d) => ({ ok: true, pair: fromMessages(d.input.messages, reply(d.preferred_output), reply(d.non_preferred_output)) }),
  'hh-rlhf': (d) => splitHhRlhf(d.chosen, d.rejected),
  sharegpt: (d) => {
    const messages: ChatMessage[] = d.system ? [{ role: 'system', content: d.system }] : [];
    for (const t of d.conversations) messages.push({ role: SHAREGPT_ROLES[t.from]!, content: t.value });
    return { ok: true, pair: fromMessages(messages, d.chosen.value, d.rejected.value) };
  },
  alpaca: (d) => {
    const messages: ChatMessage[] = d.system ? [{ role: 'system', content: d.system }] : [];
    for (const [q, a] of d.history ?? []) messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
    messages.push({ role: 'user', content: d.input ? `${d.instruction}\n${d.input}` : d.instruction });
    return { ok: true, pair: fromMessages(messages, d.chosen, d.rejected) };
  },
};

/** Validate one raw record of `format` and normalise it to a pair (no location in the problem). */
export function parsePairRecord(format: PairFormat, raw: unknown): Parsed {
  const r = schemas[format].safeParse(raw);
  if (!r.success) return { ok: false, problem: describeIssue(r.error.issues[0]!, raw) };
  return (NORMALISE[format] as (d: unknown) => Parsed)(r.data);
}

/** The format a record's keys suggest, or null. */
export function detectPairFormat(raw: unknown): PairFormat | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  if ('conversations' in raw) return 'sharegpt';
  if ('instruction' in raw) return 'alpaca'; // before openai: Alpaca records have "input" too
  if ('preferred_output' in raw || 'input' in raw) return 'openai';
  if ('prompt' in raw) return 'prompt-chosen-rejected';
  if ('chosen' in raw && 'rejected' in raw) return 'hh-rlhf';
  return null;
}

/** Check a format name given by the user (e.g. --from); fails naming the allowed ones. */
export function pairFormat(name: string, what = 'format', allowed: readonly string[] = PAIR_FORMATS): PairFormat {
  if (!allowed.includes(name)) fail(`${what}: unknown preference format ${JSON.stringify(name)}; use one of ${allowed.join(', ')}`);
  return name as PairFormat;
}

function readText(file: string): string {
  if (!existsSync(file) || !statSync(file).isFile()) fail(`${file}: no such preference file; check the path`);
  let bytes: Buffer = readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      fail(`${file}: cannot gunzip (${(e as Error).message}); the file is damaged or not gzip`);
    }
  }
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

/** Raw records with their line: JSONL, or the elements of a JSON array. */
function rawRecords(file: string, text: string): { raw: unknown; line: number; bad?: string }[] {
  const start = text.trimStart()[0];
  if (start === undefined) fail(`${file}: the file is empty; put one preference pair per line (JSONL) or a JSON array of pairs in it`);
  if (start === '[') {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      fail(`${file}: not valid JSON (${(e as Error).message}); fix the file so that it is one JSON array of records`);
    }
    const lines = arrayElementLines(text);
    return (json as unknown[]).map((raw, i) => ({ raw, line: lines[i] ?? 1 }));
  }
  const out: { raw: unknown; line: number; bad?: string }[] = [];
  text.split('\n').forEach((lineText, i) => {
    if (lineText.trim() === '') return;
    try {
      out.push({ raw: JSON.parse(lineText), line: i + 1 });
    } catch (e) {
      out.push({ raw: null, line: i + 1, bad: `not valid JSON (${(e as Error).message.replace(/ in JSON at position \d+.*$/, '')}); each line must be one JSON object` });
    }
  });
  return out;
}

export interface ReadPairsOptions {
  /** Record format; detected from the first record when absent. */
  format?: PairFormat;
}

/**
 * Read and validate every pair of a preference file. A bad file fails with one line: the first
 * problem as `file:line: field problem; fix`, plus how many other records are bad.
 *
 * @example
 * readPairs('harmless-base-test.jsonl.gz'); // [{ prompt, messages: [{ role: 'user', ... }], chosen, rejected, source }, ...]
 */
export function readPairs(file: string, opts: ReadPairsOptions = {}): PreferencePair[] {
  const records = rawRecords(file, readText(file));
  const first = records.find((r) => !r.bad);
  let format = opts.format;
  if (format !== undefined) pairFormat(format, 'readPairs');
  if (!format && first) {
    format = detectPairFormat(first.raw) ?? undefined;
    if (!format) {
      const keys = first.raw !== null && typeof first.raw === 'object' ? Object.keys(first.raw).join(', ') : jsonType(first.raw);
      fail(
        `${file}:${first.line}: cannot tell the preference format from this record (${keys || 'no keys'}); expected "prompt" + "chosen" + "rejected", ` +
          `"input" + "preferred_output" (OpenAI), "chosen" + "rejected" transcripts (HH-RLHF), "conversations" (ShareGPT) or "instruction" (Alpaca), ` +
          `or pass --from ${PAIR_FORMATS.join('|')}`,
      );
    }
  }
  const pairs: PreferencePair[] = [];
  const problems: string[] = [];
  for (const r of records) {
    const p = r.bad ? { ok: false as const, problem: r.bad } : parsePairRecord(format!, r.raw);
    if (p.ok) pairs.push({ ...p.pair, source: { file, line: r.line } });
    else problems.push(`${file}:${r.line}: ${p.problem}`);
  }
  if (problems.length) {
    const more = problems.length - 1;
    fail(`${problems[0]}${more ? ` (and ${more} more invalid record${more > 1 ? 's' : ''})` : ''}`);
  }
  if (!pairs.length) fail(`${file}: holds no preference pairs; add at least one`);
  return pairs;
}

/** One pair as a record of `format` (a writable one). */
export function pairRecord(pair: PreferencePair, format: WriteFormat): Record<string, unknown> {
  const reply = (content: string) => [{ role: 'assistant', content }];
  const messages = pair.messages?.map(({ role, content }) => ({ role, content }));
  if (format === 'openai')
    return { input: { messages: messages ?? [{ role: 'user', content: pair.prompt }] }, preferred_output: reply(pair.chosen), non_preferred_output: reply(pair.rejected) };
  const rec: Record<string, unknown> = messages
    ? { prompt: messages, chosen: reply(pair.chosen), rejected: reply(pair.rejected) }
    : { prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected };
  if (pair.promptId !== undefined) rec.prompt_id = pair.promptId;
  return rec;
}

/** Write pairs as JSONL of `format`, atomically; a `.gz` name gets gzip. */
export function writePairs(file: string, pairs: PreferencePair[], format: WriteFormat): void {
  pairFormat(format, 'writePairs', WRITE_FORMATS);
  const text = pairs.map((p) => JSON.stringify(pairRecord(p, format)) + '\n').join('');
  writeFileAtomic(file, file.endsWith('.gz') ? gzipSync(Buffer.from(text, 'utf8')) : text);
}
