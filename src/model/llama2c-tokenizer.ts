/**
 * llama2.c tokenizer (`tokenizer.bin`, `tok512.bin`) -> Hugging Face tokenizer.json in the
 * Llama-2 SentencePiece-BPE style.
 *
 * File format: int32 max_token_length, then per token: float32 score, int32 byte length, bytes.
 * Layout (exported from a SentencePiece BPE model): 0 `<unk>`, 1 BOS (written "\n<s>\n"),
 * 2 EOS ("\n</s>\n"), 3..258 byte tokens `<0x00>`..`<0xFF>`, then pieces with "▁" written as " ".
 *
 * llama2.c's encoder: prepend one space (the dummy prefix) to non-empty text, look every code
 * point up in the vocabulary (unknown ones become byte tokens, id = byte + 3), then repeatedly
 * merge the adjacent pair whose concatenation is a piece with the highest score. HF's BPE merges
 * the pair with the lowest rank, so ranking every (left, right) split of every piece by the
 * piece's score, best first, reproduces it (this is also what transformers' own SentencePiece
 * converter does).
 */
import { readFileSync, existsSync } from 'node:fs';
import { fail } from '../util/errors.js';

export interface Llama2cVocab {
  maxTokenLength: number;
  /** Token text as stored, with BOS/EOS trimmed of their newlines (`<s>`, `</s>`). */
  pieces: string[];
  scores: Float32Array;
}

/** Ids llama2.c hard-codes. */
export const LLAMA2C_SPECIALS = { unk: 0, bos: 1, eos: 2 } as const;
const FIRST_BYTE_ID = 3;
const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/** Read a llama2.c tokenizer file holding exactly `vocabSize` tokens (the model header's vocab_size). */
export function readLlama2cTokenizer(file: string, vocabSize: number): Llama2cVocab {
  if (!existsSync(file)) fail(`${file}: not found; pass the llama2.c tokenizer file (e.g. tok512.bin) with --tokenizer`);
  const buf = readFileSync(file);
  const truncated = (what: string): never =>
    fail(`${file}: truncated (${buf.length} bytes) while reading ${what}; the model expects ${vocabSize} tokens, use the tokenizer the model was trained with`);
  if (buf.length < 4) truncated('max_token_length');
  const maxTokenLength = buf.readInt32LE(0);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let off = 4;
  for (let i = 0; i < vocabSize; i++) {
    if (off + 8 > buf.length) truncated(`token ${i}`);
    scores[i] = buf.readFloatLE(off);
    const len = buf.readInt32LE(off + 4);
    off += 8;
    if (len < 0 || off + len > buf.length) truncated(`token ${i}`);
    let text: string;
    try {
      text = utf8.decode(buf.subarray(off, off + len));
    } catch {
      return fail(`${file}: token ${i} is not valid UTF-8; this is not a llama2.c tokenizer file`);
    }
    off += len;
    pieces.push(i === LLAMA2C_SPECIALS.bos || i === LLAMA2C_SPECIALS.eos ? text.trim() : text);
  }
  if (off !== buf.length) {
    fail(`${file}: holds more than the model's ${vocabSize} tokens (${buf.length - off} bytes left over); use the tokenizer the model was trained with`);
  }
  for (let b = 0; b < 256; b++) {
    const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (pieces[FIRST_BYTE_ID + b] !== want) {
      fail(`${file}: token ${FIRST_BYTE_ID + b} is "${pieces[FIRST_BYTE_ID + b]}", expected the byte token ${want} (llama2.c puts byte tokens at ids 3..258)`);
    }
  }
  return { maxTokenLength, pieces, scores };
}

const SPACE = '\u2581'; // "▁", SentencePiece's visible space

function addedToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** SentencePiece's text normalization: spaces as "▁", with one in front of the text when `prefix` (its add_dummy_prefix). */
export function sentencePieceNormalizer(prefix: boolean): Record<string, unknown> {
  return { type: 'Sequence', normalizers: [...(prefix ? [{ type: 'Prepend', prepend: SPACE }] : []), { type: 'Replace', pattern: { String: ' ' }, content: SPACE }] };
}

/** "▁" -> " ", <0xXX> pieces -> raw bytes, then (with a dummy prefix) the leading space dropped. */
export function sentencePieceDecoder(prefix: boolean): Record<string, unknown> {
  return {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
      ...(prefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
    ],
  };
}

/** A post-processor that puts the BOS token `token` (id `id`) before every sequence. */
export function bosTemplate(token: string, id: number): Record<string, unknown> {
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: token, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: token, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: token, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [token]: { id: token, ids: [id], tokens: [token] } },
  };
}

/** HF BPE merges: every split of a piece into two pieces, best piece score first. */
export function mergesFromScores(vocab: Map<string, number>, scores: Float32Array, isMergeable: (id: number) => boolean): string[] {
  const merges: { left: string; right: string; score: number; id: number; l: number; r: number }[] = [];
  for (const [piece, id] of vocab) {
    if (!isMergeable(id)) continue;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const l = vocab.get(left);
      const r = vocab.get(right);
      if (l !== undefined && r !== undefined && isMergeable(l) && isMergeable(r)) merges.push({ left, right, score: scores[id]!, id, l, r });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);
  return merges.map((m) => `${m.left} ${m.right}`);
}

/** The tokenizer.json object equivalent to llama2.c's encoder and decoder. */
export function llama2cTokenizerJson(v: Llama2cVocab, file: string): Record<string, unknown> {
  const vocab = new Map<string, number>();
  const specials = new Set<number>(Object.values(LLAMA2C_SPECIALS));
  v.pieces.forEach((p, id) => {
    const piece = specials.has(id) || BYTE_PIECE.test(p) ? p : p.replaceAll(' ', SPACE);
    if (piece === '') fail(`${file}: token ${id} is empty; a tokenizer.json vocabulary cannot hold it`);
    if (vocab.has(piece)) fail(`${file}: tokens ${vocab.get(piece)} and ${id} are both "${piece}"; a tokenizer.json vocabulary needs unique tokens`);
    vocab.set(piece, id);
  });
  const isMergeable = (id: number): boolean => !specials.has(id) && !(id >= FIRST_BYTE_ID && id < FIRST_BYTE_ID + 256);
  const [unk, bos, eos] = [v.pieces[0]!, v.pieces[1]!, v.pieces[2]!];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(0, unk), addedToken(1, bos), addedToken(2, eos)],
    // llama2.c adds one space in front of non-empty text; spaces are "▁" in the vocabulary.
    normalizer: sentencePieceNormalizer(true),
    pre_tokenizer: null,
    post_processor: bosTemplate(bos, LLAMA2C_SPECIALS.bos),
    // "▁" -> " ", <0xXX> -> raw bytes, then drop the dummy-prefix space at the start (llama2.c
    // strips the leading space of the piece that follows BOS).
    decoder: sentencePieceDecoder(true),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: mergesFromScores(vocab, v.scores, isMergeable),
    },
  };
}

/** tokenizer_config.json: BOS added, EOS not, no chat template (Plum's plain default applies). */
export function llama2cTokenizerConfig(v: Llama2cVocab, seqLen: number): Record<string, unknown> {
  const [unk, bos, eos] = [v.pieces[0]!, v.pieces[1]!, v.pieces[2]!];
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: bos,
    eos_token: eos,
    unk_token: unk,
    pad_token: null,
    clean_up_tokenization_spaces: false,
    spaces_between_special_tokens: false,
    model_max_length: seqLen,
    tokenizer_class: 'LlamaTokenizerFast',
    added_tokens_decoder: Object.fromEntries([unk, bos, eos].map((t, id) => [String(id), (({ id: _, ...rest }) => rest)(addedToken(id, t))])),
  };
}
