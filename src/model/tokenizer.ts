/**
 * A model folder's tokenizer: tokenizer.json (run by @huggingface/tokenizers) plus the special
 * token conventions from tokenizer_config.json, generation_config.json and config.json.
 *
 * Special tokens are added here, not by tokenizer.json's post_processor, so that one rule
 * decides BOS/EOS: `add_bos_token` / `add_eos_token` in tokenizer_config.json when present,
 * otherwise whatever the post_processor's TemplateProcessing puts around the text.
 *
 * Decoding never applies `clean_up_tokenization_spaces` (it rewrites " 's" to "'s" etc. and
 * breaks exact round trips); decode(encode(text)) === text for the byte-level and byte-fallback
 * vocabularies Plum supports.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { fail } from '../util/errors.js';
import { DEFAULT_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from './chat.js';

export interface EncodeOptions {
  /** Add BOS / EOS as the model's tokenizer_config says (default true). */
  addSpecialTokens?: boolean;
}
export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, chat markers ...); default false. */
  skipSpecialTokens?: boolean;
}
export interface DecodeStream {
  /** Add one generated id; returns the text that became final (possibly ''). */
  push(id: number): string;
  /** Return whatever text is still held back (an incomplete UTF-8 sequence renders as U+FFFD). */
  flush(): string;
}

export interface PlumTokenizer {
  encode(text: string, opts?: EncodeOptions): number[];
  /** Ids that the vocabulary lacks (padded embedding rows) decode to ''. */
  decode(ids: number[], opts?: DecodeOptions): string;
  bosId: number | null;
  /** Ids that end generation: tokenizer_config eos_token, then generation_config / config eos_token_id. */
  eosIds: number[];
  padId: number | null;
  /** Number of ids the tokenizer knows (largest id + 1); config.json vocab_size may be larger. */
  vocabSize: number;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** The model's own chat template, or null (applyChatTemplate then uses DEFAULT_CHAT_TEMPLATE). */
  chatTemplate: string | null;
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean; extra?: Record<string, unknown> }): string;
  /** Streaming decode helper; special tokens are skipped unless `skipSpecialTokens: false`. */
  createDecodeStream(opts?: DecodeOptions & { context?: number[] }): DecodeStream;
}

const specialToken = z.union([z.string(), z.object({ content: z.string() }).passthrough()]).nullish();
const tokenizerConfigSchema = z
  .object({
    add_bos_token: z.boolean().nullish(),
    add_eos_token: z.boolean().nullish(),
    bos_token: specialToken,
    eos_token: specialToken,
    pad_token: specialToken,
    unk_token: specialToken,
    chat_template: z.union([z.string(), z.array(z.object({ name: z.string(), template: z.string() }))]).nullish(),
  })
  .passthrough();
type TokenizerConfig = z.infer<typeof tokenizerConfigSchema>;

const tokenId = z.number().int().nonnegative();
const idsSchema = z
  .object({
    bos_token_id: tokenId.nullish(),
    eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
    pad_token_id: tokenId.nullish(),
  })
  .passthrough();
type Ids = z.infer<typeof idsSchema>;

const templateItem = z.union([
  z.object({ SpecialToken: z.object({ id: z.string() }).passthrough() }),
  z.object({ Sequence: z.object({ id: z.string() }).passthrough() }),
]);
const postProcessorSchema: z.ZodType<PostProcessor> = z.lazy(() =>
  z.union([
    z.object({
      type: z.literal('TemplateProcessing'),
      single: z.array(templateItem),
      special_tokens: z.record(z.string(), z.object({ ids: z.array(tokenId) }).passthrough()),
    }),
    z.object({ type: z.literal('Sequence'), processors: z.array(postProcessorSchema) }),
    z.object({ type: z.string() }).passthrough(),
  ]),
);
type PostProcessor =
  | { type: 'TemplateProcessing'; single: z.infer<typeof templateItem>[]; special_tokens: Record<string, { ids: number[] }> }
  | { type: 'Sequence'; processors: PostProcessor[] }
  | { type: string };

const tokenizerJsonSchema = z
  .object({
    model: z.object({ type: z.string().optional() }).passthrough(),
    added_tokens: z.array(z.unknown()).default([]),
    post_processor: postProcessorSchema.nullish(),
  })
  .passthrough();

/** Read and parse a JSON file; a missing optional file gives undefined. */
function readJson<T>(file: string, schema: z.ZodType<T>, required: string | null): T | undefined {
  if (!existsSync(file)) {
    if (required !== null) fail(required);
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: invalid JSON (${(e as Error).message}); fix or replace the file`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    fail(`${file}: field "${issue.path.join('.')}": ${issue.message}`);
  }
  return r.data;
}

const tokenText = (t: TokenizerConfig['bos_token']): string | null | undefined =>
  t == null ? t : typeof t === 'string' ? t : t.content;

/** The special-token ids the post_processor's TemplateProcessing puts before and after a single text. */
function templateSpecials(pp: PostProcessor | null | undefined): { prefix: number[]; suffix: number[] } {
  const out = { prefix: [] as number[], suffix: [] as number[] };
  if (!pp) return out;
  if (pp.type === 'Sequence' && 'processors' in pp) {
    for (const p of pp.processors) {
      const s = templateSpecials(p);
      out.prefix.push(...s.prefix);
      out.suffix.push(...s.suffix);
    }
    return out;
  }
  if (pp.type !== 'TemplateProcessing' || !('single' in pp)) return out;
  let seenSequence = false;
  for (const item of pp.single) {
    if ('Sequence' in item) seenSequence = true;
    else (seenSequence ? out.suffix : out.prefix).push(...(pp.special_tokens[item.SpecialToken.id]?.ids ?? []));
  }
  return out;
}

/** A model folder's chat template: tokenizer_config.json, else chat_template.jinja / chat_template.json. */
function findChatTemplate(dir: string, cfg: TokenizerConfig): string | null {
  const t = cfg.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x.name === 'default') ?? t[0])?.template ?? null;
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const json = readJson(join(dir, 'chat_template.json'), z.object({ chat_template: z.string() }).passthrough(), null);
  return json?.chat_template ?? null;
}

/**
 * Load `<dir>/tokenizer.json` and its companions.
 *
 * @example
 * const tok = loadTokenizer('models/stories260K-hf');
 * tok.encode('Once upon a time'); // [1, 403, 407, 261, 378]
 */
export function loadTokenizer(dir: string): PlumTokenizer {
  const file = join(dir, 'tokenizer.json');
  const json = readJson(
    file,
    tokenizerJsonSchema,
    `${file}: not found; a model folder needs tokenizer.json (convert the model with \`plum convert\` or copy it from the original model)`,
  )!;
  const cfgFile = join(dir, 'tokenizer_config.json');
  const cfg = readJson(cfgFile, tokenizerConfigSchema, null) ?? tokenizerConfigSchema.parse({});
  const gen: Ids = readJson(join(dir, 'generation_config.json'), idsSchema, null) ?? {};
  const modelCfg: Ids = readJson(join(dir, 'config.json'), idsSchema, null) ?? {};

  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, { ...cfg, clean_up_tokenization_spaces: false });
  } catch (e) {
    return fail(`${file}: cannot build the tokenizer (${(e as Error).message})`);
  }
  const model = tok.model!;

  const idOf = (key: 'bos_token' | 'eos_token' | 'pad_token'): number | null | undefined => {
    const text = tokenText(cfg[key]);
    if (text == null) return text;
    const id = tok.token_to_id(text);
    if (id === undefined) fail(`${cfgFile}: ${key} "${text}" is not in the vocabulary of ${file}; fix ${key}`);
    return id;
  };
  const asList = (v: Ids['eos_token_id']): number[] => (v == null ? [] : Array.isArray(v) ? v : [v]);

  const bosFromCfg = idOf('bos_token');
  const bosId = bosFromCfg !== undefined ? bosFromCfg : (gen.bos_token_id ?? modelCfg.bos_token_id ?? null);
  const eosFromCfg = idOf('eos_token');
  const eosIds = [...new Set([...(eosFromCfg != null ? [eosFromCfg] : []), ...asList(gen.eos_token_id), ...asList(modelCfg.eos_token_id)])];
  const padId = idOf('pad_token') ?? gen.pad_token_id ?? modelCfg.pad_token_id ?? null;

  const fromTemplate = templateSpecials(json.post_processor);
  const prefix = cfg.add_bos_token != null ? (cfg.add_bos_token && bosId !== null ? [bosId] : []) : fromTemplate.prefix;
  const suffix = cfg.add_eos_token != null ? (cfg.add_eos_token && eosFromCfg != null ? [eosFromCfg] : []) : fromTemplate.suffix;

  const vocabSize = model.vocab.length;
  const chatTemplate = findChatTemplate(dir, cfg);
  const specialTokens: Record<string, string | undefined> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const) {
    specialTokens[key] = tokenText(cfg[key]) ?? undefined;
  }

  const decode = (ids: number[], opts: DecodeOptions = {}): string => {
    const known = ids.filter((id) => model.vocab[id] !== undefined);
    if (known.length === 0) return '';
    return tok.decode(known, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  };

  return {
    encode(text, opts = {}) {
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      return opts.addSpecialTokens ?? true ? [...prefix, ...ids, ...suffix] : ids;
    },
    decode,
    bosId,
    eosIds,
    padId,
    vocabSize,
    idToToken: (id) => tok.id_to_token(id),
    tokenToId: (t) => tok.token_to_id(t),
    chatTemplate,
    applyChatTemplate(messages, opts = {}) {
      return renderChatTemplate(chatTemplate ?? DEFAULT_CHAT_TEMPLATE, messages, {
        addGenerationPrompt: opts.addGenerationPrompt,
        specialTokens,
        extra: opts.extra,
      });
    },
    createDecodeStream: (opts = {}) => createDecodeStream(decode, { skipSpecialTokens: opts.skipSpecialTokens ?? true }, opts.context),
  };
}

/**
 * Incremental detokenisation (the text-generation-inference scheme). Decoding ids one by one is
 * wrong: a character may span several byte tokens, and decoders strip or merge spaces
 * depending on context. So each step decodes a small window `ids[prefixStart..]` and emits
 * what it adds beyond `ids[prefixStart..readStart]`, but only once that text does not end in
 * U+FFFD (an incomplete UTF-8 sequence that later bytes will finish).
 */
/**
 * `context`: the last prompt ids, so that the first generated piece decodes as it would after
 * the prompt (keeping its leading space) — the streamed text then equals decodeContinuation.
 */
export function createDecodeStream(decode: (ids: number[], opts?: DecodeOptions) => string, opts: DecodeOptions, context: number[] = []): DecodeStream {
  const ids: number[] = context.slice(-4);
  let prefixStart = 0; // window start: gives the decoder context for the first new token
  let readStart = ids.length; // ids before this are emitted
  const step = (final: boolean): string => {
    const prefixText = decode(ids.slice(prefixStart, readStart), opts);
    const fullText = decode(ids.slice(prefixStart), opts);
    if (fullText.length <= prefixText.length || (!final && fullText.endsWith('\uFFFD'))) return '';
    prefixStart = readStart;
    readStart = ids.length;
    return fullText.slice(prefixText.length);
  };
  return {
    push(id) {
      ids.push(id);
      return step(false);
    },
    flush: () => step(true),
  };
}

/**
 * The text a generation adds after its prompt: decode(prompt + generated) minus decode(prompt).
 * Decoding the generated ids alone would drop a leading space (SentencePiece strips the first
 * piece's space at the start of a text), so re-tokenising prompt + text would not give back
 * the generated tokens.
 */
export function decodeContinuation(tok: PlumTokenizer, prompt: number[], generated: number[]): string {
  const opts = { skipSpecialTokens: true };
  if (generated.length === 0) return '';
  const p = prompt.length ? tok.decode(prompt, opts) : '';
  const full = tok.decode([...prompt, ...generated], opts);
  return full.startsWith(p) ? full.slice(p.length) : tok.decode(generated, opts);
}
