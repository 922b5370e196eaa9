/**
 * Supervised records: the zod schema of each input format and its normalisation to one of two
 * shapes, a chat (`messages` + optional per-message loss `weights`) or a prompt/completion text.
 *
 * | format              | one record                                                                   |
 * | ------------------- | ---------------------------------------------------------------------------- |
 * | `openai-chat`       | `{"messages": [{"role": "system"|"user"|"assistant", "content", "weight"?}]}` |
 * |                     | (content a string or text parts; "developer" is read as "system"; assistant   |
 * |                     | tool_calls, "tool" results and a record-level "tools" go to the template)      |
 * | `prompt-completion` | `{"prompt": "...", "completion": "..."}`                                      |
 * | `alpaca`            | `{"instruction", "input"?, "output", "system"?, "history"?: [[q, a], ...]}`   |
 * | `sharegpt`          | `{"conversations": [{"from": "human"|"gpt"|"system", "value"}], "system"?}`   |
 * |                     | (LLaMA-Factory's "function_call" / "observation" turns and "tools" too)       |
 * |                     | or the `{"messages": [{"role", "content"}]}` variant                          |
 *
 * Alpaca: the user turn is `instruction`, then a newline and `input` when `input` is non-empty
 * (LLaMA-Factory's convention). `weight` (OpenAI) is 0 or 1 and only on assistant messages.
 */
import { z } from 'zod';
import { type ChatMessage, toolCallSchema as toolCall, toolSpecSchema as toolSpec } from '../model/chat.js';
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
  /** May carry tool_calls (assistant), tool_call_id / name (tool results), as HF templates read them. */
  messages: ChatMessage[];
  /** Tools offered in this conversation (OpenAI's "tools"), the chat template's `tools`. */
  tools?: unknown[];
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
  // "developer" is OpenAI's newer name for the system message; "tool" carries a call's result
  role: z.enum([...ROLES, 'developer', 'tool']),
  // null / absent only on an assistant message that makes tool calls
  content: openaiContent.nullish(),
  tool_calls: z.array(toolCall).nullish(), // [] or null (some exports write them) = no calls
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
  weight: z.literal([0, 1]).optional(),
});
const openaiRecord = z
  .object({
    messages: z.array(openaiMessage).min(1, 'is empty; add the conversation as {"role", "content"} objects'),
    tools: z.array(toolSpec).optional(),
  })
  .superRefine((r, ctx) => {
    r.messages.forEach((m, i) => {
      if (m.weight !== undefined && m.role !== 'assistant')
        ctx.addIssue({ code: 'custom', path: ['messages', i, 'weight'], message: `is only allowed on assistant messages (this one is ${m.role}); remove it` });
      if (m.tool_calls?.length && m.role !== 'assistant')
        ctx.addIssue({ code: 'custom', path: ['messages', i, 'tool_calls'], message: `is only allowed on assistant messages (this one is ${m.role}); remove it` });
      if (m.content == null && !(m.role === 'assistant' && m.tool_calls?.length))
        ctx.addIssue({ code: 'custom', path: ['messages', i, 'content'], message: 'is missing; add "content": "..."' });
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

// LLaMA-Factory's ShareGPT: "function_call" is an assistant turn whose value is a JSON call
// {"name", "arguments"} (or a list of them), "observation" a tool's result; "tools" a JSON string.
const SHAREGPT_ROLES = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system', function_call: 'assistant', observation: 'tool' } as const;
const sharegptCall = z.object({ name: z.string().min(1), arguments: z.union([z.record(z.string(), z.unknown()), z.string()]).default({}) });
/** A function_call turn's value -> HF tool_calls (parsed once, here), or an issue on `value`. */
const sharegptTurn = z
  .object({
    from: z.enum(Object.keys(SHAREGPT_ROLES) as [keyof typeof SHAREGPT_ROLES]),
    value: z.string(),
  })
  .transform((t, ctx): { from: keyof typeof SHAREGPT_ROLES; value: string; calls?: unknown[] } => {
    if (t.from !== 'function_call') return t;
    const problem = (message: string) => {
      ctx.addIssue({ code: 'custom', path: ['value'], message });
      return z.NEVER;
    };
    let v: unknown;
    try {
      v = JSON.parse(t.value);
    } catch (e) {
      return problem(`is not JSON (${(e as Error).message}); write the call as {"name": "...", "arguments": {...}}`);
    }
    const list = z.array(sharegptCall).safeParse(Array.isArray(v) ? v : [v]);
    if (!list.success) return problem('must be {"name": "...", "arguments": {...}} or a list of them');
    try {
      return { ...t, calls: list.data.map((c) => ({ type: 'function', function: { name: c.name, arguments: typeof c.arguments === 'string' ? (JSON.parse(c.arguments) as unknown) : c.arguments } })) };
    } catch (e) {
      return problem(`has arguments that are not JSON (${(e as Error).message})`);
    }
  });
/** LLaMA-Factory writes tools as a JSON string of a list: parsed once, here. */
const sharegptTools = z.preprocess((v, ctx) => {
  if (typeof v !== 'string') return v;
  if (!v.trim()) return [];
  try {
    const list: unknown = JSON.parse(v);
    if (!Array.isArray(list)) throw new Error('not a JSON list');
    return list;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `is not a JSON list of tools (${(e as Error).message})` });
    return z.NEVER;
  }
}, z.array(z.unknown()).nullish());
const sharegptRecord = z
  .object({
    conversations: z.array(sharegptTurn).min(1, 'is empty; add the conversation as {"from", "value"} objects'),
    system: z.string().nullish(),
    tools: sharegptTools,
  })
  .superRefine((r, ctx) => {
    if (!r.conversations.some((t) => SHAREGPT_ROLES[t.from] === 'assistant'))
      ctx.addIssue({ code: 'custom', path: ['conversations'], message: 'has no assistant turn; add {"from": "gpt", "value": "..."} with the reply to learn' });
  });

/** LLaMA-Factory writes tools as bare function schemas; HF templates take {"type": "function", "function": ...}. */
const asToolSpec = (t: unknown): unknown => (t !== null && typeof t === 'object' && 'function' in t ? t : { type: 'function', function: t });

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
  const messages = r.data.messages.map((m): ChatMessage => {
    const out: ChatMessage = { role: m.role === 'developer' ? 'system' : m.role, content: m.content ?? '' };
    if (m.tool_calls?.length) out.tool_calls = m.tool_calls.map((c) => ({ ...(c.id !== undefined ? { id: c.id } : {}), type: c.type, function: c.function }));
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    if (m.name !== undefined) out.name = m.name;
    return out;
  });
  const weighted = r.data.messages.some((m) => m.weight !== undefined);
  const weights = weighted ? r.data.messages.map((m) => (m.role === 'assistant' ? (m.weight ?? 1) : 0)) : undefined;
  const record = chat(messages, source, weights);
  if (r.data.tools) record.tools = r.data.tools;
  return { ok: true, record };
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
  for (const t of r.data.conversations) messages.push(t.calls ? { role: 'assistant', content: '', tool_calls: t.calls } : { role: SHAREGPT_ROLES[t.from], content: t.value });
  const record = chat(messages, source);
  if (r.data.tools?.length) record.tools = r.data.tools.map(asToolSpec);
  return { ok: true, record };
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
