/**
 * Chat templates: a model's Jinja `chat_template` (from tokenizer_config.json or
 * chat_template.jinja), rendered with @huggingface/jinja exactly as transformers'
 * `apply_chat_template` does, or Plum's plain default for models without one.
 */
import { Template } from '@huggingface/jinja';
import { z } from 'zod';
import { fail } from '../util/errors.js';

/** One turn of a conversation. Templates may read extra fields (tool_calls, reasoning_content ...). */
export interface ChatMessage {
  role: string;
  content: string;
  [extra: string]: unknown;
}

/** Schema for messages arriving from outside (files, HTTP): role and content are strings. */
export const chatMessageSchema = z.object({ role: z.string().min(1), content: z.string() }).passthrough();

/** An assistant's function call, as OpenAI writes it (arguments a JSON string) or as HF templates take it (an object). */
export const toolCallSchema = z.object({
  id: z.string().optional(),
  type: z.literal('function').default('function'),
  function: z.object({
    name: z.string().min(1),
    // parsed here, once: HF chat templates take a call's arguments as an object
    arguments: z
      .union([z.string(), z.record(z.string(), z.unknown())])
      .default({})
      .transform((a, ctx): Record<string, unknown> => {
        if (typeof a !== 'string') return a;
        try {
          const v: unknown = JSON.parse(a);
          if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
          return v as Record<string, unknown>;
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: `is not a JSON object (${(e as Error).message}); write the call's arguments as a JSON object string` });
          return z.NEVER;
        }
      }),
  }),
});
/** A tool the conversation may call (OpenAI's record-level "tools"), handed to the chat template. */
export const toolSpecSchema = z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }).passthrough() }).passthrough();

/**
 * Plum's default chat template, used when a tokenizer has no `chat_template`
 * (base models such as llama2.c's stories260K). Plain text, so any vocabulary can encode it:
 *
 * ```text
 * ### System:
 * {system content}
 *
 * ### User:
 * {user content}
 *
 * ### Assistant:
 * {assistant content}{eos_token}
 *
 * ```
 *
 * Each turn is `### <Role>:\n<content>\n\n`; an assistant turn ends with the EOS token text
 * before the blank line so that fine-tuning teaches the model to stop. With
 * `addGenerationPrompt` the prompt ends with `### Assistant:\n`. The template does not
 * include `bos_token`: encode the rendered text with `addSpecialTokens` and the tokenizer adds
 * BOS when the model wants it. Roles other than system/user/assistant are an error.
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{%- for message in messages -%}" +
  "{%- if message['role'] == 'system' -%}{{ '### System:\\n' + message['content'] + '\\n\\n' }}" +
  "{%- elif message['role'] == 'user' -%}{{ '### User:\\n' + message['content'] + '\\n\\n' }}" +
  "{%- elif message['role'] == 'assistant' -%}{{ '### Assistant:\\n' + message['content'] + (eos_token or '') + '\\n\\n' }}" +
  "{%- else -%}{{ raise_exception('the default chat template supports the roles system, user and assistant, not ' + message['role']) }}" +
  '{%- endif -%}' +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '### Assistant:\\n' }}{%- endif -%}";

export interface RenderOptions {
  /** Append the header that asks the model for the next assistant turn. */
  addGenerationPrompt?: boolean;
  /** Special-token strings the template may use (bos_token, eos_token, unk_token, pad_token). */
  specialTokens?: Record<string, string | undefined>;
  /** Further template variables (tools, documents, enable_thinking ...). */
  extra?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      fail(`chat template: cannot parse (${(e as Error).message}); fix chat_template in tokenizer_config.json`);
    }
    compiled.set(source, t);
  }
  return t;
}

/**
 * Render `messages` with a Jinja chat template.
 *
 * @example
 * renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })
 * // => '### User:\nHi\n\n### Assistant:\n'
 */
export function renderChatTemplate(source: string, messages: ChatMessage[], opts: RenderOptions = {}): string {
  const template = compile(source);
  const vars: Record<string, unknown> = {
    ...opts.extra,
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
  };
  for (const [k, v] of Object.entries(opts.specialTokens ?? {})) if (v !== undefined) vars[k] = v;
  try {
    return template.render(vars);
  } catch (e) {
    return fail(`chat template: ${(e as Error).message}`);
  }
}
