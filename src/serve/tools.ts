/**
 * Function calling: the request's `tools` go to the chat template, and the model's reply is read
 * back into OpenAI `tool_calls`. Replies are parsed in the formats the chat templates of the
 * supported families teach:
 *
 * | format                  | reply                                                              |
 * | ----------------------- | ------------------------------------------------------------------ |
 * | Hermes (Qwen2.5, Qwen3) | `text <tool_call>{"name": .., "arguments": {..}}</tool_call> ...`  |
 * | Llama 3.1+ JSON         | `{"name": .., "parameters": {..}}` (several joined by `;`)         |
 * | Mistral                 | `[{"name": .., "arguments": {..}}, ...]` (after [TOOL_CALLS])      |
 *
 * A reply that does not parse as calls is returned as text, as it is.
 */
import { randomUUID } from 'node:crypto';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ParsedReply {
  /** Text outside the calls (null when there is none and there are calls). */
  content: string | null;
  calls: ToolCall[];
}

const OPEN = '<tool_call>';
const HERMES = /<tool_call>\s*([\s\S]*?)\s*(?:<\/tool_call>|$)/g;

const newId = (): string => `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

/** {"name", "arguments" | "parameters"} -> a call, or null. */
function asCall(v: unknown): ToolCall | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name.length === 0) return null;
  let args = o.arguments ?? o.parameters ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return null;
    }
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return null;
  return { id: newId(), type: 'function', function: { name: o.name, arguments: JSON.stringify(args) } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Calls from a whole reply that is JSON: one object, a list of them, or objects joined by `;`. */
function bareCalls(text: string): ToolCall[] | null {
  const t = text.trim().replace(/^\[TOOL_CALLS\]\s*/, '');
  if (!t.startsWith('{') && !t.startsWith('[')) return null;
  const whole = parseJson(t);
  const items = whole !== undefined ? (Array.isArray(whole) ? whole : [whole]) : t.split(/\s*;\s*/).map(parseJson);
  const calls = items.map(asCall);
  return calls.length > 0 && calls.every((c) => c !== null) ? (calls as ToolCall[]) : null;
}

/** Read a reply into text and tool calls (no calls: the reply as it is). */
export function parseToolCalls(text: string): ParsedReply {
  const at = text.indexOf(OPEN);
  if (at >= 0) {
    const calls: ToolCall[] = [];
    for (const m of text.slice(at).matchAll(HERMES)) {
      const call = asCall(parseJson(m[1]!));
      if (!call) return { content: text, calls: [] };
      calls.push(call);
    }
    const before = text.slice(0, at).trim();
    return { content: before.length > 0 ? before : null, calls };
  }
  const calls = bareCalls(text);
  return calls ? { content: null, calls } : { content: text, calls: [] };
}

/**
 * The streamed side of `parseToolCalls`: `push` returns the text that is surely not part of a
 * call (held back: a reply that starts as JSON, anything from `<tool_call>` on, and a tail that
 * could begin that marker); `finish` parses the whole reply and returns the calls and whatever
 * text was held back but turned out not to be one.
 */
export class ToolCallStream {
  private text = '';
  private emitted = 0;
  private holding = false;

  push(delta: string): string {
    this.text += delta;
    if (this.holding) return '';
    if (this.emitted === 0) {
      const lead = this.text.trimStart();
      if (lead.length === 0) return '';
      if (lead.startsWith('{') || lead.startsWith('[')) {
        this.holding = true;
        return '';
      }
    }
    const at = this.text.indexOf(OPEN, this.emitted);
    let end = at;
    if (at >= 0) this.holding = true;
    else {
      end = this.text.length;
      for (let k = Math.min(OPEN.length - 1, this.text.length - this.emitted); k > 0; k--) {
        if (OPEN.startsWith(this.text.slice(this.text.length - k))) {
          end = this.text.length - k;
          break;
        }
      }
    }
    const out = this.text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }

  finish(): { text: string; calls: ToolCall[] } {
    const parsed = parseToolCalls(this.text);
    if (parsed.calls.length === 0) return { text: this.text.slice(this.emitted), calls: [] };
    return { text: '', calls: parsed.calls };
  }
}
