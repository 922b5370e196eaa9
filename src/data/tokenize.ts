/**
 * Tokenising a supervised record with a loss mask. `labels[t]` is `ids[t]` where the model is
 * trained to produce that token and IGNORE_INDEX (-100) elsewhere; labels are NOT shifted (the
 * loss compares the logits at t - 1 with labels[t], as in transformers).
 *
 * Chat records are rendered with the model's chat template (or Plum's default), with the record's
 * `tools` as the template's `tools`; assistant tool calls are learned like replies (a template
 * that does not render them is an error). Assistant turn i
 * is located by rendering messages[0..i) with the generation prompt (its start) and
 * messages[0..i] (its end); the loss covers the reply and the end-of-turn marker the template
 * writes after it: everything up to and including the first special token after the reply text
 * (`<|im_end|>`, `<|eot_id|>`, `</s>` ...), not the newline that follows. Templates that rewrite
 * earlier turns once later ones follow (Qwen3 drops the empty think block) are handled by finding
 * the reply text itself in the full render.
 *
 * The full text is tokenised once, and each span boundary is checked: the tokens of the text up
 * to the boundary must be a prefix of the full tokens. If the tokenizer merges across a boundary
 * (a reply starting with a newline after "...assistant\n", say), the text is instead tokenised
 * segment by segment and concatenated, so the loss mask stays exact; those ids may differ from
 * what tokenising the whole text gives (and a SentencePiece tokenizer whose normaliser prepends
 * "▁" adds one at each segment start). `segmented` reports it.
 *
 * BOS follows load.ts `encodePrompt`: it is prepended only if the text does not already start
 * with it (a template that writes bos_token) and the tokenizer adds BOS to plain text.
 */
import type { ChatMessage } from '../model/chat.js';
import type { PlumTokenizer } from '../model/tokenizer.js';
import { PlumError, fail } from '../util/errors.js';
import type { ChatRecord, SftRecord, TextRecord } from './records.js';

/** Label of a token that gets no loss (PyTorch's cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;

export interface TokenizeOptions {
  /** Further chat-template variables (enable_thinking, tools ...). */
  extra?: Record<string, unknown>;
  /** Token that ends a prompt/completion example (default: the tokenizer's first EOS id). */
  eosId?: number;
}

export interface TokenizedExample {
  ids: number[];
  /** Same length as ids: the token id where loss applies, IGNORE_INDEX elsewhere. */
  labels: number[];
  /** True when a boundary was not token-aligned and segments were tokenised separately. */
  segmented: boolean;
}

/** A labelled character range [start, end) of the rendered text. */
interface Span {
  start: number;
  end: number;
}

const PLAIN = { addSpecialTokens: false } as const;

/** Prepend BOS when the model adds it to plain text and `ids` lacks it (encodePrompt's rule). */
export function withBos(tok: PlumTokenizer, ids: number[]): number[] {
  const bos = tok.bosId;
  if (bos === null || ids[0] === bos || tok.encode('', { addSpecialTokens: true })[0] !== bos) return ids;
  return [bos, ...ids];
}

const isPrefix = (a: number[], b: number[]): boolean => a.length <= b.length && a.every((x, i) => x === b[i]);

/** Tokenise `text`, labelling the tokens of `spans` (sorted, non-overlapping). */
function encodeSpans(tok: PlumTokenizer, text: string, spans: Span[]): TokenizedExample {
  const cuts = [...new Set([0, ...spans.flatMap((s) => [s.start, s.end]), text.length])].sort((a, b) => a - b);
  const full = tok.encode(text, PLAIN);
  let at: number[] | null = [];
  for (const p of cuts) {
    const prefix = p === text.length ? full : tok.encode(text.slice(0, p), PLAIN);
    if (!isPrefix(prefix, full)) {
      at = null;
      break;
    }
    at.push(prefix.length);
  }
  let ids = full;
  const segmented = at === null;
  if (at === null) {
    ids = [];
    at = [0];
    for (let k = 0; k + 1 < cuts.length; k++) {
      ids.push(...tok.encode(text.slice(cuts[k], cuts[k + 1]), PLAIN));
      at.push(ids.length);
    }
  }
  const labels = new Array<number>(ids.length).fill(IGNORE_INDEX);
  for (let k = 0; k + 1 < cuts.length; k++) {
    if (!spans.some((s) => s.start <= cuts[k]! && cuts[k + 1]! <= s.end)) continue;
    for (let t = at[k]!; t < at[k + 1]!; t++) labels[t] = ids[t]!;
  }
  return { ids, labels, segmented };
}

/** Length of the common prefix of a[i..] and b[j..]. */
function commonLength(a: string, i: number, b: string, j: number): number {
  let n = 0;
  while (i + n < a.length && j + n < b.length && a[i + n] === b[j + n]) n++;
  return n;
}

/** End offset of the first special token (BOS/EOS/chat markers) in `text`, or null. */
function firstSpecialEnd(tok: PlumTokenizer, text: string): number | null {
  for (const id of tok.encode(text, PLAIN)) {
    const piece = tok.decode([id]);
    if (piece !== '' && tok.decode([id], { skipSpecialTokens: true }) === '') {
      const at = text.indexOf(piece);
      if (at >= 0) return at + piece.length;
    }
  }
  return null;
}

const where = (r: SftRecord): string => `${r.source.file}:${r.source.line}`;

function render(tok: PlumTokenizer, r: ChatRecord, messages: ChatMessage[], addGenerationPrompt: boolean, extra?: Record<string, unknown>): string {
  try {
    return tok.applyChatTemplate(messages, { addGenerationPrompt, extra });
  } catch (e) {
    if (e instanceof PlumError) fail(`${where(r)}: ${e.message}`);
    throw e;
  }
}

/** The rendered conversation and the character span of each assistant turn with loss. */
function chatSpans(tok: PlumTokenizer, r: ChatRecord, extra?: Record<string, unknown>): { text: string; spans: Span[] } {
  const { messages } = r;
  const text = render(tok, r, messages, false, extra);
  if (messages.some((m) => m.tool_calls)) {
    // a template that ignores tool_calls would train the calls' turns on an empty reply
    const without = messages.map(({ tool_calls: _, ...m }) => m as ChatMessage);
    if (render(tok, r, without, false, extra) === text)
      fail(`${where(r)}: the chat template does not render tool_calls, so the calls cannot be learned; use a model whose chat template supports tools (Qwen2.5/3, Llama 3.1 ...)`);
  }
  const spans: Span[] = [];
  let prevEnd = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const prompt = render(tok, r, messages.slice(0, i), true, extra);
    if (!text.startsWith(prompt) || prompt.length < prevEnd)
      fail(
        `${where(r)}: the chat template renders messages[0..${i - 1}] with the generation prompt differently from the start of the whole ` +
          `conversation, so the reply messages[${i}] cannot be located; use a template whose earlier turns do not depend on later ones`,
      );
    const start = prompt.length;
    const upToReply = render(tok, r, messages.slice(0, i + 1), false, extra);
    let end = upToReply.startsWith(prompt) ? start + commonLength(text, start, upToReply, prompt.length) : start;
    const reply = m.content.trim();
    let at = reply ? text.lastIndexOf(reply, end - reply.length) : -1;
    if (reply && at < start) {
      // The template renders this turn differently once later turns follow: find the reply itself.
      at = text.indexOf(reply, start);
      // still inside this turn: no chat marker between the generation prompt and the reply
      if (at >= 0 && firstSpecialEnd(tok, text.slice(start, at)) !== null) at = -1;
      if (at < 0) fail(`${where(r)}: the chat template changes the reply messages[${i}], so it cannot be found in the rendered conversation; check the template`);
      const tail = upToReply.slice(upToReply.lastIndexOf(reply) + reply.length);
      end = at + reply.length + commonLength(text, at + reply.length, tail, 0);
    }
    const calls = m.tool_calls as { function: { name: string } }[] | undefined;
    const lastName = calls?.at(-1)?.function.name;
    if (lastName) {
      // A tool-call turn (templates may render it differently as the last message): it ends with
      // the first chat marker after its last call, whose name the template writes.
      const k = text.indexOf(lastName, Math.max(start, reply ? at + reply.length : start));
      const marker = k >= 0 ? firstSpecialEnd(tok, text.slice(k + lastName.length)) : null;
      if (marker === null) fail(`${where(r)}: the tool call "${lastName}" of messages[${i}] is not followed by an end-of-turn marker in the rendered conversation; check the chat template`);
      end = k + lastName.length + marker;
    } else {
      const tailStart = reply ? at + reply.length : start;
      const marker = firstSpecialEnd(tok, text.slice(tailStart, end));
      if (marker !== null) end = tailStart + marker;
    }
    if ((r.weights?.[i] ?? 1) !== 0) spans.push({ start, end });
    prevEnd = end;
  });
  return { text, spans };
}

function tokenizeChat(tok: PlumTokenizer, r: ChatRecord, opts: TokenizeOptions): TokenizedExample {
  const { text, spans } = chatSpans(tok, r, r.tools ? { ...opts.extra, tools: r.tools } : opts.extra);
  const ex = encodeSpans(tok, text, spans);
  const ids = withBos(tok, ex.ids);
  const labels = ids.length > ex.ids.length ? [IGNORE_INDEX, ...ex.labels] : ex.labels;
  return { ids, labels, segmented: ex.segmented };
}

function tokenizeText(tok: PlumTokenizer, r: TextRecord, eosId?: number): TokenizedExample {
  const eos = eosId ?? tok.eosIds[0];
  if (eos === undefined) fail(`${where(r)}: the tokenizer has no EOS token to end the completion with; set eos_token in tokenizer_config.json`);
  const text = r.prompt + r.completion;
  const ex = encodeSpans(tok, text, [{ start: r.prompt.length, end: text.length }]);
  const ids = withBos(tok, ex.ids);
  const labels = ids.length > ex.ids.length ? [IGNORE_INDEX, ...ex.labels] : ex.labels;
  return { ids: [...ids, eos], labels: [...labels, eos], segmented: ex.segmented };
}

/**
 * Token ids and loss labels of one record.
 *
 * @example
 * tokenizeExample(tok, { kind: 'text', prompt: 'Q: 2+2?\nA:', completion: ' 4', source });
 * // ids = [BOS?] + tokens of the prompt + tokens of ' 4' + [EOS]; labels are -100 up to ' 4'
 */
export function tokenizeExample(tok: PlumTokenizer, record: SftRecord, opts: TokenizeOptions = {}): TokenizedExample {
  return record.kind === 'chat' ? tokenizeChat(tok, record, opts) : tokenizeText(tok, record, opts.eosId);
}
