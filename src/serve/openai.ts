/**
 * OpenAI's response objects: chat.completion / chat.completion.chunk and text_completion, field
 * for field as the API returns them (the official client parses these).
 */
import { randomUUID } from 'node:crypto';
import type { FinishReason } from './scheduler.js';
import type { ParsedReply, ToolCall } from './tools.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

type OpenAIFinish = 'stop' | 'length' | 'tool_calls';
/** A reply cut off by length stays 'length', even when it holds calls. */
const finishOf = (r: FinishReason, madeCalls = false): OpenAIFinish => (r === 'length' ? 'length' : madeCalls ? 'tool_calls' : 'stop');

/** How one endpoint shapes its choices; the envelopes are shared. */
export interface Shape {
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** The first chunk of a streamed choice (chat sends the role), or null. */
  start(index: number): Record<string, unknown> | null;
  delta(index: number, text: string): Record<string, unknown>;
  end(index: number, reason: FinishReason): Record<string, unknown>;
  full(index: number, text: string, reason: FinishReason): Record<string, unknown>;
}

export const chatShape: Shape = {
  idPrefix: 'chatcmpl',
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  start: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  delta: (index, text) => ({ index, delta: { content: text }, logprobs: null, finish_reason: null }),
  end: (index, reason) => ({ index, delta: {}, logprobs: null, finish_reason: finishOf(reason) }),
  full: (index, text, reason) => ({
    index,
    message: { role: 'assistant', content: text, refusal: null },
    logprobs: null,
    finish_reason: finishOf(reason),
  }),
};

/** A chat choice whose reply made tool calls (`parseToolCalls`). */
export function toolCallChoice(index: number, reply: ParsedReply, reason: FinishReason): Record<string, unknown> {
  return {
    index,
    message: { role: 'assistant', content: reply.content, refusal: null, tool_calls: reply.calls },
    logprobs: null,
    finish_reason: finishOf(reason, true),
  };
}

/** The streamed calls of a choice, whole, in one delta (each with its index, as OpenAI streams them). */
export const toolCallDelta = (index: number, calls: ToolCall[]): Record<string, unknown> => ({
  index,
  delta: { tool_calls: calls.map((c, k) => ({ index: k, ...c })) },
  logprobs: null,
  finish_reason: null,
});

/** The last chunk of a streamed choice that made tool calls. */
export const toolCallEnd = (index: number, reason: FinishReason): Record<string, unknown> => ({ ...chatShape.end(index, reason), finish_reason: finishOf(reason, true) });

export const textShape: Shape = {
  idPrefix: 'cmpl',
  object: 'text_completion',
  chunkObject: 'text_completion',
  start: () => null,
  delta: (index, text) => ({ index, text, logprobs: null, finish_reason: null }),
  end: (index, reason) => ({ index, text: '', logprobs: null, finish_reason: finishOf(reason) }),
  full: (index, text, reason) => ({ index, text, logprobs: null, finish_reason: finishOf(reason) }),
};

/** Envelope fields shared by every object of one response. */
export interface Envelope {
  id: string;
  created: number;
  model: string;
}

export const newEnvelope = (shape: Shape, model: string): Envelope => ({
  id: `${shape.idPrefix}-${randomUUID().replaceAll('-', '')}`,
  created: Math.floor(Date.now() / 1000),
  model,
});

export function chunk(shape: Shape, env: Envelope, choices: Record<string, unknown>[], usage?: Usage | null): Record<string, unknown> {
  return { id: env.id, object: shape.chunkObject, created: env.created, model: env.model, choices, ...(usage !== undefined ? { usage } : {}) };
}

export function completion(shape: Shape, env: Envelope, choices: Record<string, unknown>[], usage: Usage): Record<string, unknown> {
  return { id: env.id, object: shape.object, created: env.created, model: env.model, choices, usage };
}

export function modelObject(id: string, created: number, parent: string | null): Record<string, unknown> {
  return { id, object: 'model', created, owned_by: 'plum', root: parent ?? id, parent };
}
