/**
 * Open a Hugging Face model folder: config, weights, tokenizer, generation defaults.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../runtime/backend.js';
import { ortBackend } from '../runtime/ort.js';
import { fail } from '../util/errors.js';
import { type ModelConfig, loadConfig } from './config.js';
import { CausalLM, type LmOptions } from './lm.js';
import { type PlumTokenizer, loadTokenizer } from './tokenizer.js';
import type { ChatMessage } from './chat.js';
import { loadWeights } from './weights.js';

export interface LoadedModel {
  dir: string;
  cfg: ModelConfig;
  lm: CausalLM;
  tokenizer: PlumTokenizer;
  /** Ids that end generation: the tokenizer's and config.json's EOS ids. */
  eosIds: number[];
}

export function loadModel(dir: string, backend: Backend = ortBackend(), opts: LmOptions = {}): LoadedModel {
  if (!existsSync(dir)) fail(`${dir}: model folder not found`);
  const cfg = loadConfig(dir);
  const tokenizer = loadTokenizer(dir);
  const weights = loadWeights(dir, cfg);
  const eosIds = [...new Set([...tokenizer.eosIds, ...cfg.eosTokenIds])];
  return { dir, cfg, lm: new CausalLM(cfg, weights, backend, opts), tokenizer, eosIds };
}

/** generation_config.json values Plum uses as defaults (absent file = {}). */
export function loadGenerationDefaults(dir: string): { temperature?: number; topP?: number; topK?: number; minP?: number; repetitionPenalty?: number } {
  const file = join(dir, 'generation_config.json');
  if (!existsSync(file)) return {};
  try {
    const g = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const num = (k: string): number | undefined => (typeof g[k] === 'number' ? (g[k] as number) : undefined);
    return { temperature: g.do_sample === false ? 0 : num('temperature'), topP: num('top_p'), topK: num('top_k'), minP: num('min_p'), repetitionPenalty: num('repetition_penalty') };
  } catch {
    return fail(`${file}: invalid JSON`);
  }
}

/**
 * Token ids for a prompt. Plain text gets the tokenizer's special tokens (e.g. BOS);
 * a rendered chat template is encoded as is, plus BOS when the template did not write it.
 */
export function encodePrompt(tok: PlumTokenizer, text: string, chat?: { system?: string }): number[] {
  if (!chat) {
    const ids = tok.encode(text, { addSpecialTokens: true });
    if (ids.length === 0 && tok.bosId !== null) return [tok.bosId];
    return ids;
  }
  const messages = chat.system ? [{ role: 'system', content: chat.system }] : [];
  messages.push({ role: 'user', content: text });
  return encodeChat(tok, messages);
}

/** Token ids of a conversation rendered with the chat template and the generation prompt (BOS as encodePrompt). */
export function encodeChat(tok: PlumTokenizer, messages: ChatMessage[]): number[] {
  const rendered = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
  const ids = tok.encode(rendered, { addSpecialTokens: false });
  if (tok.bosId !== null && ids[0] !== tok.bosId && tok.encode('', { addSpecialTokens: true })[0] === tok.bosId) return [tok.bosId, ...ids];
  return ids;
}
