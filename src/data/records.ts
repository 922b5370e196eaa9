/**
 * Supervised records: the zod schema of each input format and its normalisation to one of two
 * shapes, a chat (`messages` + optional per-message loss `weights`) or a prompt/completion text.
 *
 * | format              | one record                                                                   |
 * | ------------------- | ---------------------------------------------------------------------------- |
 * | `openai-chat`       | `{"messages": [{"role": "system"|"user"|"assistant", "content", "weight"?}]}` |
 * |                     | (content a string or text parts; "developer" is read as "system")            |
 * | `prompt-completion` | `{"prompt": "...", "completion": "..."}`                                      |
 * | `alpaca`            | `{"instruction", "input"?, "output", "system"?, "history"?: [[q, a], ...]}`   |
 * | `sharegpt`          | `{"conversations": [{"from": "human"|"gpt"|"system", "value"}], "system"?}`   |
 * |                     | or the `{"messages": [{"role", "content"}]}` variant                          |
 *
 * Alpaca: the user turn is `instruction`, then a newline and `input` when `input` is non-empty
 * (LLaMA-Factory's convention). `weight` (OpenAI) is 0 or 1 and only on assistant messages.
 */
import { z } from 'zod';
import type { ChatMessage } from '../model/chat.js';
import { describeIssue } from './issues.js';

export const SFT_FORMATS = ['openai-chat', 'prompt-completion', 'alpaca', 'sharegpt', 'corpus'] as const;
export type SftFormat = (typeof SFT_FORMATS)[number];
export const ROLES = ['system', 'user', 'assistant'] as const;

/** Where a record came from: `line` is the JSONL line, or the line where a JSON array element starts. */
export interface SourceRef {
  file: string;
  line: number;
  /** Position in a JSON array (absent for JSONL). */
  index?: number;
}

export interface ChatRecord {
  kind: 'chat';
  messages: ChatMessage[];
  /** Loss weight per message (0 or 1; system/user are always 0). Absent: every assistant turn is 1. */
  weights?: number[];
  source: SourceRef;
}
export interface TextRecord {
  kind: 'text';
  prompt: string;
  completion: string;
  source: SourceRef;
}
export type SftRecord = ChatRecord | TextRecord;

const NO_ASSISTANT = 'has no assistant turn; add {"role": "assistant", "content": "..."} with the reply to learn';
const ALL_WEIGHT_0 = 'gives every assistant turn weight 0, so there is nothing to learn; set "weight": 1 on one of them or remove the record';

/**
 * OpenAI content: a string, or an array of text parts (joined, as the API concatenates them).
 * Other part types (images, audio) have no place in a text model's data and are refused.
 */
const openaiContent = z.preprocess((c, ctx) => {
  if (!Array.isArray(c)) return c; // a string, or the usual "must be a string" error
  let text = '';
  c.forEach((p: unknown, j) => {
    const part = (p ?? {}) as { type?: unknown; text?: unknown };
    if (part.type !== 'text') ctx.addIssue({ code: 'custom', path: [j, 'type'], message: `is ${JSON.stringify(part.type ?? null)}; only text parts ({"type": "text", "text": "..."}) can be learned by a text model` });
    else if (typeof part.text !== 'string') ctx.addIssue({ code: 'custom', path: [j, 'text'], message: "must be a string with the part's text" });
    else text += part.text;
  });
  return text;
}, z.string());

const openaiMessage = z.object({
  // "developer" is OpenAI's newer name for the system message
  role: z.enum([...ROLES, 'developer']),
  content: openaiContent,
  weight: z.literal([0, 1]).optional(),
});
const openaiRecord = z
  .object({ messages: z.array(openaiMessage).min(1, 'is empty; add the conversation as {"role", "content"} objects') })
  .superRefine((r, ctx) => {
    r.messages.forEach((m, i) => {
      if (m.weight !== undefined && m.role !== 'assistant')
        ctx.addIssue({ code: 'custom', path: ['messages', i, 'weight'], message: `is only allowed on assistant messages (this one is ${m.role}); remove it` });
    });
    const replies = r.messages.filter((m) => m.role === 'assistant');
    if (replies.length === 0) ctx.addIssue({ code: 'custom', path: ['messages'], message: NO_ASSISTANT });
    else if (replies.every((m) => m.weight === 0)) ctx.addIssue({ code: 'custom', path: ['messages'], message: ALL_WEIGHT_0 });
  });

const promptCompletionRecord = z.object({ prompt: z.string(), completion: z.string() });

const alpacaRecord = z.object({
  instruction: z.string(),
  input: z.string().nullish(),
  output: z.string(),
  system: z.string().nullish(),
  history: z.array(z.tuple([z.string(), z.string()])).nullish(),
});

const SHAREGPT_ROLES = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system' } as const;
const sharegptTurn = z.object({
  from: z.enum(Object.keys(SHAREGPT_ROLES) as [keyof typeof SHAREGPT_ROLES]),
  value: z.string(),
});
const sharegptRecord = z
  .object({
    conversations: z.array(sharegptTurn).min(1, 'is empty; add the conversation as {"from", "value"} objects'),
    system: z.string().nullish(),
  })
  .superRefine((r, ctx) => {
    if (!r.conversations.some((t) => SHAREGPT_ROLES[t.from] === 'assistant'))
      ctx.addIssue({ code: 'custom', path: ['conversations'], message: 'has no assistant turn; add {"from": "gpt", "value": "..."} with the reply to learn' });
  });

/** Validation outcome for one raw record: the normalised record, or a one-line problem (no location). */
export type ParseResult = { ok: true; record: SftRecord } | { ok: false; problem: string };

function check<T>(schema: z.ZodType<T>, raw: unknown): { ok: true; data: T } | { ok: false; problem: string } {
  const r = schema.safeParse(raw);
  return r.success ? { ok: true, data: r.data } : { ok: false, problem: describeIssue(r.error.issues[0]!, raw) };
}

function chat(messages: ChatMessage[], source: SourceRef, weights?: number[]): ChatRecord {
  return weights ? { kind: 'chat', messages, weights, source } : { kind: 'chat', messages, source };
}

function fromOpenai(raw: unknown, source: SourceRef): ParseResult {
  const r = check(openaiRecord, raw);
  if (!r.ok) return r;
  const messages = r.data.messages.map(({ role, content }) => ({ role: role === 'developer' ? ('system' as const) : role, content }));
  const weighted = r.data.messages.some((m) => m.weight !== undefined);
  const weights = weighted ? r.data.messages.map((m) => (m.role === 'assistant' ? (m.weight ?? 1) : 0)) : undefined;
  return { ok: true, record: chat(messages, source, weights) };
}

function fromPromptCompletion(raw: unknown, source: SourceRef): ParseResult {
  const r = check(promptCompletionRecord, raw);
  return r.ok ? { ok: true, record: { kind: 'text', prompt: r.data.prompt, completion: r.data.completion, source } } : r;
}

function fromAlpaca(raw: unknown, source: SourceRef): ParseResult {
  const r = check(alpacaRecord, raw);
  if (!r.ok) return r;
  const { instruction, input, output, system, history } = r.data;
  const messages: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
  for (const [q, a] of history ?? []) messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
  messages.push({ role: 'user', content: input ? `${instruction}\n${input}` : instruction }, { role: 'assistant', content: output });
  return { ok: true, record: chat(messages, source) };
}

function fromSharegpt(raw: unknown, source: SourceRef): ParseResult {
  const isObject = raw !== null && typeof raw === 'object' && !Array.isArray(raw);
  if (isObject && !('conversations' in raw) && 'messages' in raw) return fromOpenai(raw, source);
  const r = check(sharegptRecord, raw);
  if (!r.ok) return r;
  const messages: ChatMessage[] = r.data.system ? [{ role: 'system', content: r.data.system }] : [];
  for (const t of r.data.conversations) messages.push({ role: SHAREGPT_ROLES[t.from], content: t.value });
  return { ok: true, record: chat(messages, source) };
}

const textRecord = z.object({ text: z.string().min(1, 'is empty') });

/**
 * Pretraining corpora: plain text records `{"text"}` (loss on every token) mixed with OpenAI
 * chat records `{"messages"}` (loss on assistant turns).
 */
function fromCorpus(raw: unknown, source: SourceRef): ParseResult {
  const isObject = raw !== null && typeof raw === 'object' && !Array.isArray(raw);
  if (isObject && 'messages' in raw) return fromOpenai(raw, source);
  const r = check(textRecord, raw);
  return r.ok ? { ok: true, record: { kind: 'text', prompt: '', completion: r.data.text, source } } : r;
}

const PARSERS: Record<SftFormat, (raw: unknown, source: SourceRef) => ParseResult> = {
  corpus: fromCorpus,
  'openai-chat': fromOpenai,
  'prompt-completion': fromPromptCompletion,
  alpaca: fromAlpaca,
  sharegpt: fromSharegpt,
};

/** Validate one raw JSON record of `format` and normalise it. */
export function parseRecord(format: SftFormat, raw: unknown, source: SourceRef): ParseResult {
  return PARSERS[format](raw, source);
}

/** The format a record's keys suggest, or null. `messages` reads as OpenAI chat (ShareGPT's variant is the same shape). */
export function detectFormat(raw: unknown): SftFormat | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  if ('text' in raw) return 'corpus';
  if ('messages' in raw) return 'openai-chat';
  if ('conversations' in raw) return 'sharegpt';
  if ('instruction' in raw) return 'alpaca';
  if ('prompt' in raw || 'completion' in raw) return 'prompt-completion';
  return null;
}
