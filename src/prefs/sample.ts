/**
 * Sampling candidate sets: K completions per prompt, for voters to compare.
 *
 * Reproducible: row k of prompt P samples with seed `rowSeed(seed, P, k)`, so a candidate's text
 * depends only on (model, prompt, seed, k, sampling options), not on the batch it ran in or on
 * which prompts were already done when a run resumed.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { chatMessageSchema, type ChatMessage } from '../model/chat.js';
import { generate } from '../model/generate.js';
import { encodePrompt, type LoadedModel, encodeChat } from '../model/load.js';
import type { ModelAdapter } from '../model/adapter.js';
import { decodeContinuation, type PlumTokenizer } from '../model/tokenizer.js';
import { mixSeed } from '../data/rng.js';
import { describeIssue } from '../data/issues.js';
import { fail } from '../util/errors.js';
import type { Candidate, CandidateSet } from './candidates.js';
import { lastUserContent } from './pairs.js';

/** One prompt to sample for: plain text, or a conversation to continue. */
export interface PromptRecord {
  id: string;
  prompt: string;
  messages?: ChatMessage[];
  /** Line in the prompts file. */
  line: number;
}

/** Short content hash used as the id of a prompt given without one (12 hex digits of SHA-256). */
export function promptHash(content: string | ChatMessage[]): string {
  return createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 12);
}

const promptLine = z
  .object({
    id: z.union([z.string().min(1, 'is empty; give the prompt a non-empty id or leave "id" out'), z.number().int()]).optional(),
    prompt: z.string().optional(),
    messages: z.array(chatMessageSchema).min(1, 'is empty; add the conversation as {"role", "content"} objects').optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.prompt === undefined) === (r.messages === undefined))
      ctx.addIssue({ code: 'custom', path: [], message: 'needs exactly one of "prompt" (text) or "messages" (a conversation)' });
  });

/**
 * Read prompts: a `.txt` file holds one prompt per non-empty line; any other file is JSONL with
 * `{"prompt": "..."}` or `{"messages": [...]}` and an optional `"id"`. Ids default to
 * `promptHash` of the content; a repeated id is an error naming both lines.
 */
export function readPrompts(file: string): PromptRecord[] {
  if (!existsSync(file) || !statSync(file).isFile()) fail(`${file}: no such prompts file; check the path`);
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  const out: PromptRecord[] = [];
  const seen = new Map<string, number>();
  const isText = file.endsWith('.txt');
  text.split('\n').forEach((lineText, i) => {
    const line = i + 1;
    if (lineText.trim() === '') return;
    let rec: PromptRecord;
    if (isText) {
      const prompt = lineText.replace(/\r$/, '');
      rec = { id: promptHash(prompt), prompt, line };
    } else {
      let raw: unknown;
      try {
        raw = JSON.parse(lineText);
      } catch (e) {
        fail(`${file}:${line}: not valid JSON (${(e as Error).message.replace(/ in JSON at position \d+.*$/, '')}); write {"prompt": "..."} per line, or use a .txt file with one prompt per line`);
      }
      const r = promptLine.safeParse(raw);
      if (!r.success) {
        const issue = r.error.issues[0]!;
        fail(`${file}:${line}: ${issue.code === 'custom' && issue.path.length === 0 ? `the record ${issue.message}` : describeIssue(issue, raw)}`);
      }
      const { id, prompt, messages } = r.data;
      const content = messages ?? prompt!;
      rec = messages ? { id: '', prompt: lastUserContent(messages), messages, line } : { id: '', prompt: prompt!, line };
      rec.id = id !== undefined ? String(id) : promptHash(content);
    }
    const first = seen.get(rec.id);
    if (first !== undefined)
      fail(`${file}:${line}: prompt id ${JSON.stringify(rec.id)} repeats line ${first}${isText ? ' (same text)' : ''}; give each prompt its own "id" or remove the repeat`);
    seen.set(rec.id, line);
    out.push(rec);
  });
  if (!out.length) fail(`${file}: holds no prompts; add at least one`);
  return out;
}

/** FNV-1a over the UTF-8 bytes of a string. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/** Sampling seed of candidate k of a prompt. */
export function rowSeed(seed: number, promptId: string, k: number): number {
  return mixSeed(seed, hash32(promptId), k);
}

export interface SampleOptions {
  /** Candidates per prompt (K). */
  n: number;
  temperature: number;
  topP: number;
  topK: number;
  /** HF min_p and repetition_penalty (off when absent). */
  minP?: number;
  repetitionPenalty?: number;
  seed: number;
  maxTokens: number;
  /** Apply the chat template to plain prompts (messages prompts always use it). */
  chat?: boolean;
  /** System message for chats (put first unless the conversation has one). */
  system?: string;
  /** Rows (prompt x candidate) per generate call. */
  batchSize: number;
  adapter?: ModelAdapter | null;
  /** Stored in every set's `meta`. */
  meta?: Record<string, unknown>;
  /** Called after each generate call with its rows and generated tokens (for progress). */
  onBatch?: (rows: number, tokens: number) => void;
}

/** The conversation the model sees for a prompt (undefined: plain text). */
export function chatFor(p: PromptRecord, chat: boolean, system?: string): ChatMessage[] | undefined {
  const sys = system !== undefined ? [{ role: 'system', content: system }] : [];
  if (p.messages) return p.messages[0]?.role === 'system' ? p.messages : [...sys, ...p.messages];
  return chat ? [...sys, { role: 'user', content: p.prompt }] : undefined;
}

/**
 * Sample `n` candidates for each prompt, in batches of `batchSize` rows, yielding each prompt's
 * set (in prompt order) as soon as all its candidates are done. Candidate k of prompt P has id
 * `${P}-${k}`.
 *
 * @example
 * for await (const set of sampleCandidates(model, readPrompts('p.jsonl'), { n: 4, temperature: 1, topP: 1, topK: 0, seed: 0, maxTokens: 64, batchSize: 8 }))
 *   appendCandidates('candidates.jsonl', set);
 */
export async function* sampleCandidates(m: LoadedModel, prompts: PromptRecord[], o: SampleOptions): AsyncGenerator<CandidateSet> {
  const tok = m.tokenizer;
  const chats = prompts.map((p) => chatFor(p, o.chat ?? false, o.system));
  const encoded = prompts.map((p, i) => (chats[i] ? encodeChat(tok, chats[i]) : encodePrompt(tok, p.prompt)));
  const rows = prompts.flatMap((_, pi) => Array.from({ length: o.n }, (_, k) => ({ pi, k })));
  const done: (Candidate | undefined)[][] = prompts.map(() => new Array<Candidate | undefined>(o.n).fill(undefined));
  const decode = (ids: number[]): string => tok.decode(ids, { skipSpecialTokens: true });
  // Plain prompts keep the completion's leading space (prompt + text re-tokenises like the
  // sampled tokens); chats keep the reply alone.
  const completionText = (pi: number, gen: number[]): string => (chats[pi] ? decode(gen) : decodeContinuation(tok, encoded[pi]!, gen));
  let next = 0;
  for (let start = 0; start < rows.length; start += o.batchSize) {
    const batch = rows.slice(start, start + o.batchSize);
    const res = await generate(m.lm, batch.map((r) => encoded[r.pi]!), {
      temperature: o.temperature,
      topP: o.topP,
      topK: o.topK,
      minP: o.minP ?? 0,
      repetitionPenalty: o.repetitionPenalty ?? 1,
      seed: o.seed,
      seeds: batch.map((r) => rowSeed(o.seed, prompts[r.pi]!.id, r.k)),
      maxTokens: o.maxTokens,
      eosIds: m.eosIds,
      adapter: o.adapter ?? null,
    });
    batch.forEach((r, b) => {
      const g = res[b]!;
      done[r.pi]![r.k] = { id: `${prompts[r.pi]!.id}-${r.k}`, text: completionText(r.pi, g.tokens), finishReason: g.finishReason, tokens: g.tokens.length };
    });
    o.onBatch?.(batch.length, res.reduce((a, g) => a + g.tokens.length, 0));
    while (next < prompts.length && done[next]!.every(Boolean)) {
      const p = prompts[next]!;
      const set: CandidateSet = { promptId: p.id, prompt: p.prompt, candidates: done[next] as Candidate[] };
      if (chats[next]) set.messages = chats[next];
      if (o.meta) set.meta = o.meta;
      yield set;
      done[next] = []; // free the texts
      next++;
    }
  }
}
