/**
 * Request bodies of the OpenAI endpoints Plum serves, validated with zod. Unknown fields are
 * accepted and ignored (clients send many optional ones); known fields are checked against
 * OpenAI's documented ranges.
 */
import { z } from 'zod';
import { toolCallSchema, toolSpecSchema } from '../model/chat.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

/** Message content: a string or text parts (joined); null only for assistant turns. */
const content = z
  .union([z.string(), z.array(textPart).min(1), z.null()])
  .transform((c) => (c === null ? '' : typeof c === 'string' ? c : c.map((p) => p.text).join('')));

export const chatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content,
  name: z.string().optional(),
  // an assistant's calls (arguments parsed to objects, as HF chat templates take them) and a tool's result
  tool_calls: z.array(toolCallSchema).nullish(),
  tool_call_id: z.string().optional(),
});

const stop = z
  .union([z.string(), z.array(z.string()).max(4), z.null()])
  .optional()
  .transform((s) => (s == null ? [] : typeof s === 'string' ? [s] : s).filter((x) => x.length > 0));

/** Fields shared by both endpoints. */
const common = {
  model: z.string().min(1, 'model is required'),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  stop,
  seed: z.number().int().nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  // vLLM's sampling extensions beyond the OpenAI fields
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  user: z.string().optional(),
};

export const chatRequest = z.looseObject({
  ...common,
  messages: z.array(chatMessage).min(1, 'messages must hold at least one message'),
  max_completion_tokens: z.number().int().min(1).nullish(),
  tools: z.array(toolSpecSchema).nullish(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }) })])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});
export type ChatRequest = z.infer<typeof chatRequest>;

const tokenIds = z.array(z.number().int().min(0)).min(1);

export const completionRequest = z.looseObject({
  ...common,
  /** A string, several strings, token ids, or several lists of token ids (one choice set each). */
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  echo: z.boolean().nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequest>;

/** The sampling settings both endpoints turn into. */
export interface Sampling {
  temperature: number;
  topP: number;
  seed: number;
  maxTokens: number | null;
  stop: string[];
  n: number;
}
