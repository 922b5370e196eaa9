/**
 * Training a GPT-2-style byte-level BPE vocabulary on a corpus, for `plum tokenizer fit`.
 *
 * 1. Pre-tokenise exactly as the written tokenizer.json will at encode time: cut out the special
 *    tokens (they stay atomic and never take part in merges), then split the rest with the
 *    ByteLevel pre-tokenizer's regex (GPT-2's). Count each distinct piece ("word").
 * 2. Start every word as its UTF-8 bytes (ids 0..255, as in bytelevel-tokenizer.ts) and merge the
 *    most frequent adjacent pair into a new id, over and over. Pair counts are updated
 *    incrementally: each merge only rescans the words that contain the pair (an index from pair
 *    to words), and a max-heap with lazy deletion finds the next best pair.
 *
 * Ties go to the smallest pair of ids (left id, then right id), so the merges depend only on the
 * word counts, not on the order of the texts. Every merge makes a new token (a token's
 * segmentation is that of its spelling alone, so a + bc and ab + c cannot both arise), and the
 * vocabulary is bytes, then merges in order, then the special tokens: the layout
 * `buildByteLevelTokenizer` writes. For the same reason, encoding a training word by merge rank
 * gives back the segmentation training ended with.
 *
 * @example
 * const fit = fitByteLevelBpe(['the cat sat on the mat'], { vocabSize: 300, minFrequency: 1 });
 * writeByteLevelTokenizer('out/tok', fittedTokenizerFiles(fit));
 */
import { join } from 'node:path';
import { fail } from '../util/errors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { buildByteLevelTokenizer, bytesToUnicode, SPECIAL_TOKENS, type ByteLevelTokenizerFiles } from './bytelevel-tokenizer.js';

/**
 * The ByteLevel pre-tokenizer's split with `use_regex: true` (GPT-2's pattern, character for
 * character what @huggingface/tokenizers applies). Global: use with String.prototype.match.
 */
export const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface FitBpeOptions {
  /** Size of the whole vocabulary: 256 bytes + merges + special tokens. */
  vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2); training may stop early. */
  minFrequency?: number;
  /** Atomic tokens, excluded from merging, given the last ids (default <|endoftext|>, <|im_start|>, <|im_end|>). */
  specialTokens?: readonly string[];
}

export interface FittedBpe {
  /** In rank order, spelled with GPT-2's bytes_to_unicode characters ('Ġ' = space). */
  merges: [string, string][];
  /** Token -> id: bytes 0..255, then one per merge, then the special tokens. */
  vocab: Map<string, number>;
  specialTokens: string[];
}

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regex that splits text around the special tokens (longest first), keeping them. */
function specialSplitter(specials: readonly string[]): RegExp | null {
  if (specials.length === 0) return null;
  const alts = [...specials].sort((a, b) => b.length - a.length).map(escapeRegex);
  return new RegExp(`(${alts.join('|')})`, 'u');
}

/**
 * The pre-tokenised pieces of `text`, in order: a special token as itself (`special: true`), the
 * rest as the ByteLevel regex's matches (raw text, not yet in bytes_to_unicode spelling).
 */
export function* preTokenize(text: string, specialTokens: readonly string[] = SPECIAL_TOKENS): Generator<{ text: string; special: boolean }> {
  const splitter = specialSplitter(specialTokens);
  const specials = new Set(specialTokens);
  const parts = splitter ? text.split(splitter) : [text];
  for (const part of parts) {
    if (part === '') continue;
    if (specials.has(part)) yield { text: part, special: true };
    else for (const m of part.match(BYTE_LEVEL_SPLIT) ?? []) yield { text: m, special: false };
  }
}

/** Count the pre-tokenised words of every text (special tokens left out). */
export function countWords(texts: Iterable<string>, specialTokens: readonly string[] = SPECIAL_TOKENS): Map<string, number> {
  const splitter = specialSplitter(specialTokens);
  const counts = new Map<string, number>();
  for (const text of texts) {
    const parts = splitter ? text.split(splitter) : [text];
    // split() with one capture group alternates text, special, text ...: odd indices are specials
    for (let i = 0; i < parts.length; i += splitter ? 2 : 1) {
      for (const w of parts[i]!.match(BYTE_LEVEL_SPLIT) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/** A binary max-heap of (count, pair key): larger count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.keys.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  /** Remove the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.above(l, m)) m = l;
      if (r < last && this.above(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}

/**
 * The words as byte-id sequences in one buffer: word w is sym[off[w] .. off[w] + len[w]) and
 * occurs cnt[w] times. Merging shrinks len[w] in place.
 */
interface WordTable {
  sym: Int32Array;
  off: Int32Array;
  len: Int32Array;
  cnt: Float64Array;
}

function wordTable(counts: Map<string, number>): WordTable {
  const n = counts.size;
  const off = new Int32Array(n);
  const len = new Int32Array(n);
  const cnt = new Float64Array(n);
  let total = 0;
  let w = 0;
  for (const [word, c] of counts) {
    off[w] = total;
    len[w] = Buffer.byteLength(word, 'utf8');
    cnt[w] = c;
    total += len[w]!;
    w++;
  }
  const bytes = new Uint8Array(total);
  const enc = new TextEncoder();
  w = 0;
  for (const word of counts.keys()) enc.encodeInto(word, bytes.subarray(off[w]!, off[w]! + len[w++]!));
  return { sym: Int32Array.from(bytes), off, len, cnt };
}

/**
 * Counts of adjacent pairs over a word table, kept current as merges rewrite the words: an index
 * from each pair to the words that had it (stale entries are harmless: the word is rescanned),
 * and a heap with lazy deletion. A pair (a, b) is the number a * K + b, with every id below K.
 */
class PairCounts {
  private counts = new Map<number, number>();
  private where = new Map<number, number[]>();
  private heap = new PairHeap();
  private grown = new Set<number>(); // pairs the current merge created
  private seen: Int32Array; // seen[w] = the last merge that rewrote word w

  constructor(
    private words: WordTable,
    readonly K: number,
  ) {
    const { sym, off, len, cnt } = words;
    for (let w = 0; w < len.length; w++) {
      for (let i = off[w]!, end = off[w]! + len[w]! - 1; i < end; i++) {
        const key = sym[i]! * K + sym[i + 1]!;
        this.counts.set(key, (this.counts.get(key) ?? 0) + cnt[w]!);
        this.note(key, w);
      }
    }
    for (const [key, c] of this.counts) this.heap.push(c, key);
    this.seen = new Int32Array(len.length).fill(-1);
  }

  private note(key: number, w: number): void {
    const list = this.where.get(key);
    if (list === undefined) this.where.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  }

  private add(key: number, delta: number): void {
    const c = (this.counts.get(key) ?? 0) + delta;
    if (c > 0) this.counts.set(key, c);
    else this.counts.delete(key);
  }

  /** A pair that word w now holds `delta` more times. */
  private gain(key: number, delta: number, w: number): void {
    this.add(key, delta);
    this.note(key, w);
    this.grown.add(key);
  }

  /** The most frequent pair, the smallest key on a tie: [count, key], or null when none is left. */
  best(): [number, number] | null {
    while (this.heap.size > 0) {
      const [count, key] = this.heap.pop();
      const current = this.counts.get(key) ?? 0;
      if (count === current) return [count, key];
      if (current > 0) this.heap.push(current, key); // stale: a pair's count only falls once pushed
    }
    return null;
  }

  /** Rewrite every (a, b) as c, left to right in each word, and update the counts. */
  merge(a: number, b: number, c: number): void {
    const { sym, off, len, cnt } = this.words;
    const K = this.K;
    const key = a * K + b;
    this.grown.clear();
    for (const w of this.where.get(key) ?? []) {
      if (this.seen[w] === c) continue;
      this.seen[w] = c;
      const k = cnt[w]!;
      const o = off[w]!;
      const end = o + len[w]!;
      let wi = o;
      for (let r = o; r < end; ) {
        if (r + 1 < end && sym[r] === a && sym[r + 1] === b) {
          // (prev, a) becomes (prev, c) and (b, next) becomes (c, next); prev may be a c just written
          if (wi > o) {
            this.add(sym[wi - 1]! * K + a, -k);
            this.gain(sym[wi - 1]! * K + c, k, w);
          }
          if (r + 2 < end) {
            this.add(b * K + sym[r + 2]!, -k);
            this.gain(c * K + sym[r + 2]!, k, w);
          }
          sym[wi++] = c;
          r += 2;
        } else sym[wi++] = sym[r++]!;
      }
      len[w] = wi - o;
    }
    this.counts.delete(key); // all merged; the (b, next) updates touched it only in runs like "a a a"
    this.where.delete(key);
    for (const g of this.grown) {
      const gc = this.counts.get(g);
      if (gc !== undefined) this.heap.push(gc, g);
    }
  }
}

/**
 * Learn up to `numMerges` merges over `words` (ids 0..255 are bytes, merge i makes id 256 + i).
 * `spell[id]` is the token's bytes_to_unicode spelling; it grows with each merge.
 */
function learnMerges(words: WordTable, numMerges: number, minFrequency: number, spell: string[]): [number, number][] {
  const pairs = new PairCounts(words, 256 + numMerges);
  const known = new Set(spell);
  const merges: [number, number][] = [];
  while (merges.length < numMerges) {
    const best = pairs.best();
    if (best === null || best[0] < minFrequency) break;
    const a = Math.floor(best[1] / pairs.K);
    const b = best[1] - a * pairs.K;
    const text = spell[a]! + spell[b]!;
    // Cannot happen: a symbol's bytes only ever merged with each other, so its segmentation is
    // that of its spelling on its own, and one spelling has one segmentation.
    if (known.has(text)) throw new Error(`internal: merge ${spell[a]} + ${spell[b]} spells the existing token ${text}`);
    known.add(text);
    spell.push(text);
    merges.push([a, b]);
    pairs.merge(a, b, 256 + merges.length - 1);
  }
  return merges;
}

function checkOptions(opts: FitBpeOptions): { vocabSize: number; minFrequency: number; specials: string[] } {
  const specials = [...(opts.specialTokens ?? SPECIAL_TOKENS)];
  if (specials.some((s) => s === '')) fail('fitByteLevelBpe: special tokens must not be empty strings');
  if (new Set(specials).size !== specials.length) fail(`fitByteLevelBpe: special tokens repeat (${specials.join(', ')}); list each once`);
  const min = 256 + specials.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < min)
    fail(`vocab size ${opts.vocabSize} is too small: it must be an integer of at least ${min} (256 bytes + ${specials.length} special tokens)`);
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(minFrequency) || minFrequency < 1) fail(`min frequency ${minFrequency} must be an integer of at least 1`);
  return { vocabSize: opts.vocabSize, minFrequency, specials };
}

/**
 * Train a byte-level BPE on `texts`. The vocabulary holds `vocabSize` tokens unless the corpus
 * runs out of pairs seen `minFrequency` times first.
 *
 * @example
 * const { merges, vocab } = fitByteLevelBpe(lines, { vocabSize: 2048 });
 * merges[0]; // ['Ġ', 't'] on English text
 */
export function fitByteLevelBpe(texts: Iterable<string>, opts: FitBpeOptions): FittedBpe {
  return fitWordCounts(countWords(texts, checkOptions(opts).specials), opts);
}

/** `fitByteLevelBpe` from counted words (`countWords` with the same special tokens). */
export function fitWordCounts(words: Map<string, number>, opts: FitBpeOptions): FittedBpe {
  const { vocabSize, minFrequency, specials } = checkOptions(opts);
  const spell = bytesToUnicode();
  const ids = learnMerges(wordTable(words), vocabSize - 256 - specials.length, minFrequency, spell);
  const vocab = new Map<string, number>(spell.map((s, id) => [s, id]));
  for (const s of specials) vocab.set(s, vocab.size);
  return { merges: ids.map(([a, b]) => [spell[a]!, spell[b]!]), vocab, specialTokens: specials };
}

/**
 * Reference encoder, straight from the definition: split like the tokenizer, spell each piece's
 * UTF-8 bytes with bytes_to_unicode, then repeatedly merge the adjacent pair of lowest merge
 * rank (the leftmost one on a tie). Quadratic per word; for tests, not for speed.
 */
export function encodeWithMerges(text: string, fit: FittedBpe): number[] {
  const rank = new Map(fit.merges.map(([a, b], i) => [`${a} ${b}`, i])); // spellings never contain ' '
  const byteChar = bytesToUnicode();
  const enc = new TextEncoder();
  const ids: number[] = [];
  for (const piece of preTokenize(text, fit.specialTokens)) {
    if (piece.special) {
      ids.push(fit.vocab.get(piece.text)!);
      continue;
    }
    const parts = Array.from(enc.encode(piece.text), (b) => byteChar[b]!);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best]! + parts[best + 1]!);
    }
    for (const p of parts) ids.push(fit.vocab.get(p)!);
  }
  return ids;
}

/**
 * tokenizer.json + tokenizer_config.json for a fitted vocabulary. The special tokens must start
 * with <|endoftext|>, <|im_start|>, <|im_end|> (the ChatML template and the EOS need them); any
 * further ones follow as extra special tokens.
 */
export function fittedTokenizerFiles(fit: FittedBpe, opts: { modelMaxLength?: number; spaceAfterNewline?: boolean } = {}): ByteLevelTokenizerFiles {
  if (!SPECIAL_TOKENS.every((s, i) => fit.specialTokens[i] === s))
    fail(`the special tokens must begin with ${SPECIAL_TOKENS.join(', ')} for the ChatML tokenizer (got ${fit.specialTokens.join(', ')})`);
  const files = buildByteLevelTokenizer({
    merges: fit.merges,
    modelMaxLength: opts.modelMaxLength,
    extraSpecialTokens: fit.specialTokens.slice(SPECIAL_TOKENS.length),
    spaceAfterNewline: opts.spaceAfterNewline,
  });
  if (files.size !== fit.vocab.size) throw new Error(`internal: built ${files.size} tokens for a vocabulary of ${fit.vocab.size}`);
  return files;
}

/** Write `dir`/tokenizer.json and `dir`/tokenizer_config.json (atomically; creates `dir`). */
export function writeByteLevelTokenizer(dir: string, files: ByteLevelTokenizerFiles): void {
  writeJsonAtomic(join(dir, 'tokenizer.json'), files.tokenizerJson);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), files.tokenizerConfig);
}
