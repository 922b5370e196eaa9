/**
 * Request -> prompt token ids, plus how much of the prompt is worth keeping in the prefix cache,
 * and the context-length check.
 */
import type { ChatMessage } from '../model/chat.js';
import type { PlumTokenizer } from '../model/tokenizer.js';
import { PlumError } from '../util/errors.js';
import { ApiError } from './errors.js';
import type { ChatRequest, CompletionRequest } from './schemas.js';

export interface PromptSpec {
  ids: number[];
  /** Prompt tokens worth caching for later requests (the system part of a chat, else all but the last token). */
  cacheUpTo: number;
}

/** Encode a rendered chat as `encodePrompt` does: as is, plus BOS when the tokenizer adds one and the template did not. */
function encodeRendered(tok: PlumTokenizer, text: string): number[] {
  const ids = tok.encode(text, { addSpecialTokens: false });
  const bos = tok.bosId;
  if (bos !== null && ids[0] !== bos && tok.encode('', { addSpecialTokens: true })[0] === bos) return [bos, ...ids];
  return ids;
}

function render(tok: PlumTokenizer, messages: ChatMessage[], addGenerationPrompt: boolean, extra?: Record<string, unknown>): string {
  try {
    return tok.applyChatTemplate(messages, { addGenerationPrompt, ...(extra ? { extra } : {}) });
  } catch (e) {
    if (e instanceof PlumError) throw new ApiError(400, e.message, 'messages');
    throw e;
  }
}

const commonPrefix = (a: number[], b: number[]): number => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

/**
 * The chat's prompt, rendered with the model's chat template and a generation prompt, and
 * whether its replies are read for tool calls (`usesTools`).
 * `developer` messages are system messages (most templates know only system).
 */
export function chatPrompt(tok: PlumTokenizer, req: ChatRequest): PromptSpec & { toolCalls: boolean } {
  const messages: ChatMessage[] = req.messages.map(({ tool_calls, ...m }) => ({
    ...m,
    role: m.role === 'developer' ? 'system' : m.role,
    content: m.content,
    ...(tool_calls?.length ? { tool_calls } : {}), // null or [] = no calls (templates test `is defined`)
  }));
  const tools = usesTools(tok, req) ? { tools: req.tools } : undefined;
  const ids = encodeRendered(tok, render(tok, messages, true, tools));
  const system = messages.findIndex((m) => m.role !== 'system');
  let cacheUpTo = ids.length - 1;
  if (system > 0) {
    // Cache the rendered system part: it is what different conversations share.
    try {
      cacheUpTo = Math.min(cacheUpTo, commonPrefix(ids, encodeRendered(tok, render(tok, messages.slice(0, system), false, tools))));
    } catch {
      // A template that cannot render a system-only conversation: cache the whole prompt.
    }
  }
  return { ids, cacheUpTo, toolCalls: tools !== undefined };
}

/**
 * Whether the request's tools go to the template and replies are read for calls: tools given
 * and tool_choice "auto" (the default) — "none" leaves them out, as vLLM does. "required" and a
 * named function need constrained decoding, which Plum does not do: a 400 rather than a call
 * that is not guaranteed. A template that never mentions `tools` could not show them to the model.
 */
function usesTools(tok: PlumTokenizer, req: ChatRequest): boolean {
  if (!req.tools?.length || req.tool_choice === 'none') return false;
  if (req.tool_choice != null && req.tool_choice !== 'auto') {
    const what = req.tool_choice === 'required' ? '"required"' : `a named function (${req.tool_choice.function.name})`;
    throw new ApiError(400, `tool_choice ${what} is not supported: Plum does not constrain decoding to a call; use "auto" (the model may still answer in text) or "none"`, 'tool_choice');
  }
  if (!tok.chatTemplate?.includes('tools')) {
    throw new ApiError(400, "tools were given but this model's chat template does not render tools (it never mentions them); leave tools out or serve a model whose template supports function calling", 'tools');
  }
  return true;
}

/** One prompt per entry of `prompt` (a string, strings, token ids, or lists of token ids). */
export function completionPrompts(tok: PlumTokenizer, req: CompletionRequest, vocabSize: number): PromptSpec[] {
  const p = req.prompt;
  const list: Array<string | number[]> = typeof p === 'string' ? [p] : typeof p[0] === 'number' ? [p as number[]] : (p as Array<string | number[]>);
  return list.map((item, i) => {
    let ids: number[];
    if (typeof item === 'string') {
      ids = tok.encode(item, { addSpecialTokens: true });
      if (ids.length === 0 && tok.bosId !== null) ids = [tok.bosId];
      if (ids.length === 0) throw new ApiError(400, `prompt${list.length > 1 ? `.${i}` : ''}: empty prompt and the model has no BOS token`, 'prompt');
    } else {
      const bad = item.find((id) => id >= vocabSize);
      if (bad !== undefined) throw new ApiError(400, `prompt: token id ${bad} is outside the vocabulary (size ${vocabSize})`, 'prompt');
      ids = item;
    }
    return { ids, cacheUpTo: ids.length - 1 };
  });
}

/**
 * The completion budget of a prompt: `requested` if given, else `fallback` (null = the rest of
 * the context). A prompt that fills the context, or a request past it, is a 400
 * `context_length_exceeded` as with OpenAI. `extra` counts adapter tokens (virtual, prefix).
 */
export function completionBudget(promptTokens: number, extra: number, ctx: number, requested: number | null, fallback: number | null, param: string): number {
  const used = promptTokens + extra;
  const left = ctx - used;
  const what = extra ? `${used} tokens (${promptTokens} prompt tokens and ${extra} adapter tokens)` : `${used} tokens`;
  if (left <= 0) {
    throw new ApiError(400, `This model's maximum context length is ${ctx} tokens. However, your ${param} resulted in ${what}. Please reduce the length of the ${param}.`, param, 'context_length_exceeded');
  }
  if (requested !== null && requested > left) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${ctx} tokens. However, you requested ${used + requested} tokens (${what} in the ${param}, ${requested} in the completion). Please reduce the length of the ${param} or completion.`,
      param,
      'context_length_exceeded',
    );
  }
  return requested ?? Math.min(fallback ?? left, left);
}
