/**
 * A tiny GPT-2-style byte-level BPE tokenizer, written as Hugging Face `tokenizer.json` +
 * `tokenizer_config.json`, for randomly initialised models (`plum init`).
 *
 * Vocabulary (ids): 0..255 the bytes (id = byte value, spelled with GPT-2's bytes_to_unicode
 * characters), then one token per merge, then the special tokens <|endoftext|>, <|im_start|>,
 * <|im_end|> (added tokens, Qwen-style). Every UTF-8 string round-trips.
 */

export const ENDOFTEXT = '<|endoftext|>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END] as const;

/** ChatML, as Qwen and SmolLM2-Instruct use it (no default system message). */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/**
 * A few common English merges (in bytes_to_unicode spelling, 'Ġ' = space), so that BPE merging
 * is exercised; the model learns nothing from them.
 */
export const DEFAULT_MERGES: ReadonlyArray<readonly [string, string]> = [
  ['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['i', 'n'], ['Ġ', 'a'], ['e', 'r'], ['o', 'n'], ['r', 'e'],
  ['Ġ', 's'], ['a', 't'], ['e', 'n'], ['o', 'r'], ['in', 'g'], ['Ġ', 'w'], ['Ġ', 'o'], ['e', 'd'],
  ['a', 'n'], ['n', 'd'], ['Ġa', 'nd'], ['i', 's'], ['Ġ', 'i'], ['o', 'u'], ['l', 'l'], ['Ġ', 'b'],
  ['Ġ', 'c'], ['Ġ', 'h'],
];

/**
 * GPT-2's `bytes_to_unicode`: byte b -> a printable character. Printable Latin-1 bytes map to
 * themselves; the other 68 bytes map to U+0100 onwards (space 0x20 -> 'Ġ' U+0120).
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : 256 + n++));
  return out;
}

export interface ByteLevelTokenizerFiles {
  /** Contents of tokenizer.json. */
  tokenizerJson: Record<string, unknown>;
  /** Contents of tokenizer_config.json. */
  tokenizerConfig: Record<string, unknown>;
  /** Number of token ids in use (the model's vocab_size must be at least this). */
  size: number;
  /** Ids of <|endoftext|>, <|im_start|>, <|im_end|>. */
  ids: { endoftext: number; imStart: number; imEnd: number };
}

export interface ByteLevelTokenizerOptions {
  merges?: ReadonlyArray<readonly [string, string]>;
  /** tokenizer_config.json's model_max_length. */
  modelMaxLength?: number;
  /** Further special tokens, given the ids after <|im_end|> in this order. */
  extraSpecialTokens?: readonly string[];
  /**
   * Spell a word after a newline as after a space (normalizer: a space after every newline that
   * is followed by a non-space character; decoder: "\n " -> "\n"), so
   * that a word has one token whether it starts a line or follows a space. For small models
   * trained from scratch: answering with a word copied out of a document (the assistant turn
   * starts a line) is then an identity copy instead of a second spelling to learn.
   * Text with a space right after a newline does not round-trip (the decoder removes it).
   */
  spaceAfterNewline?: boolean;
}

/** The normalization of `spaceAfterNewline` tokenizers (fit the vocabulary on normalized text). */
export const spaceAfterNewline = (text: string): string => text.replace(/\n(?=\S)/g, '\n ');

/** Build the tokenizer files. Throws if a merge uses a piece that is not yet in the vocabulary. */
export function buildByteLevelTokenizer(opts: ByteLevelTokenizerOptions = {}): ByteLevelTokenizerFiles {
  const merges = opts.merges ?? DEFAULT_MERGES;
  // A Map, not an object: learned tokens can spell "constructor" or "__proto__".
  const vocab = new Map<string, number>(bytesToUnicode().map((ch, b) => [ch, b]));
  let next = 256;
  for (const [a, b] of merges) {
    if (!vocab.has(a) || !vocab.has(b)) throw new Error(`merge "${a} ${b}" uses a piece that is not in the vocabulary yet`);
    if (!vocab.has(a + b)) vocab.set(a + b, next++);
  }
  const ids = { endoftext: next, imStart: next + 1, imEnd: next + 2 };
  const extra = opts.extraSpecialTokens ?? [];
  const specials = [...SPECIAL_TOKENS, ...extra];
  if (new Set(specials).size !== specials.length || specials.some((t) => t === '' || vocab.has(t)))
    throw new Error(`special tokens must be distinct, non-empty and not in the BPE vocabulary: ${extra.join(', ')}`);
  const added = specials.map((content, i) => ({ id: next + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: opts.spaceAfterNewline ? { type: 'Replace', pattern: { Regex: '\n(?=\\S)' }, content: '\n ' } : null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: opts.spaceAfterNewline
      ? { type: 'Sequence', decoders: [byteLevel, { type: 'Replace', pattern: { String: '\n ' }, content: '\n' }] }
      : byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    additional_special_tokens: [IM_START, IM_END, ...extra],
    bos_token: ENDOFTEXT,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: IM_END,
    model_max_length: opts.modelMaxLength ?? 2048,
    pad_token: ENDOFTEXT,
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: null,
  };
  return { tokenizerJson, tokenizerConfig, size: next + specials.length, ids };
}
