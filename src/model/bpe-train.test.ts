import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hf from '@huggingface/tokenizers';
import { bytesToUnicode, SPECIAL_TOKENS } from './bytelevel-tokenizer.js';
import {
  countWords,
  encodeWithMerges,
  fitByteLevelBpe,
  fittedTokenizerFiles,
  preTokenize,
  writeByteLevelTokenizer,
  type FittedBpe,
} from './bpe-train.js';
import { loadConfig } from './config.js';
import { initModel } from './init.js';
import { presets } from './presets.js';
import { loadTokenizer } from './tokenizer.js';
import { loadWeights } from './weights.js';
import { rng } from '../util/random.js';

function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'plum-bpe-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


const WORDS = (
  'the a of and to in is was that it he she for on with as his her they at be this from I have or by one had not but what all ' +
  'were when we there can an your which their said if do will each about how up out them then many some so these would other ' +
  "into has more two like him see time could no make than first been its who now people my made over did down only way find use " +
  "may water long little very after words called just where most know get through back much before go good new write our used me " +
  "man too any day same right look think also around another came come work three word must because does part don't it's I'm we'll " +
  "they're can't café naïve façade résumé Straße 日本語 東京 привет мир 🙂 🚀 — … “quoted” 3.14 2024 100% $5 #tag @user x=y+1; f(x) {}"
).split(' ');

/**
 * Deterministic text: English words, made-up words (so that a vocabulary of a few thousand
 * fills), numbers, punctuation, non-Latin scripts, emoji and odd whitespace.
 */
function varied(seed: number, lines: number): string[] {
  const rand = rng(seed);
  const made = (() => {
    const r = rng(1234); // the same made-up words for every seed
    const syll = ['th', 'e', 'an', 'in', 'er', 'on', 're', 'st', 'ing', 'al', 'or', 'ti', 'ca', 'ne', 'ro', 'ma', 'li', 'ous', 'ly', 'pre', 'con', 'tion', 'ment', 'qu', 'zy'];
    return Array.from({ length: 4000 }, () => Array.from({ length: 1 + Math.floor(r() * 4) }, () => syll[Math.floor(r() * syll.length)]).join(''));
  })();
  const pick = (): string => (rand() < 0.6 ? WORDS[Math.floor(rand() ** 2 * WORDS.length)]! : made[Math.floor(rand() ** 2 * made.length)]!); // skewed to the front
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = 3 + Math.floor(rand() * 14);
    let s = '';
    for (let j = 0; j < n; j++) {
      const gap = rand() < 0.05 ? ['  ', '\t', '\n', ' \n '][Math.floor(rand() * 4)]! : ' ';
      const w = rand() < 0.03 ? String(Math.floor(rand() * 10000)) : pick();
      s += (j ? gap : '') + (j === 0 ? w.replace(/^./, (c) => c.toUpperCase()) : w);
    }
    out.push(s + (rand() < 0.3 ? '.\n' : rand() < 0.5 ? '!' : '?\n\n'));
  }
  return out;
}

/** Random valid Unicode: ASCII, controls, Latin-1, CJK, emoji, whitespace runs, bits of special tokens. */
function randomText(rand: () => number, maxLen: number): string {
  const pieces = [
    () => String.fromCharCode(32 + Math.floor(rand() * 95)),
    () => String.fromCharCode(Math.floor(rand() * 32)),
    () => String.fromCharCode(0x80 + Math.floor(rand() * 0x180)),
    () => String.fromCodePoint(0x4e00 + Math.floor(rand() * 0x5000)),
    () => String.fromCodePoint(0x1f300 + Math.floor(rand() * 0x300)),
    () => ' '.repeat(1 + Math.floor(rand() * 4)),
    () => ['<|', '|>', '<|im_', 'im_end', '\r\n', '\u00a0', '\u200b', '\ufeff', "'s", "'ll"][Math.floor(rand() * 10)]!,
    () => SPECIAL_TOKENS[Math.floor(rand() * 3)]!,
  ];
  let s = '';
  const n = Math.floor(rand() * maxLen);
  for (let i = 0; i < n; i++) s += pieces[Math.floor(rand() * pieces.length)]!();
  return s;
}

/** Fit, write the folder and load it both ways. */
function fitted(texts: string[], vocabSize: number, dir: string, minFrequency = 2): { fit: FittedBpe; hfTok: hf.Tokenizer } {
  const fit = fitByteLevelBpe(texts, { vocabSize, minFrequency });
  const files = fittedTokenizerFiles(fit);
  writeByteLevelTokenizer(dir, files);
  return { fit, hfTok: new hf.Tokenizer(files.tokenizerJson, files.tokenizerConfig) };
}

/**
 * The definition, with nothing incremental: every step recounts all adjacent pairs, takes the
 * most frequent (smallest ids on a tie) and merges it left to right in every word.
 */
function naiveFit(texts: string[], vocabSize: number, minFrequency: number): [string, string][] {
  const spell = bytesToUnicode();
  const words = [...countWords(texts)].map(([w, c]) => ({ ids: [...new TextEncoder().encode(w)], c }));
  const merges: [string, string][] = [];
  while (spell.length < vocabSize - SPECIAL_TOKENS.length) {
    const counts = new Map<string, number>();
    for (const { ids, c } of words) for (let i = 0; i + 1 < ids.length; i++) counts.set(`${ids[i]},${ids[i + 1]}`, (counts.get(`${ids[i]},${ids[i + 1]}`) ?? 0) + c);
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) [best, bestCount] = [[a, b], c];
    }
    if (!best || bestCount < minFrequency) break;
    const [a, b] = best;
    const id = spell.length;
    spell.push(spell[a]! + spell[b]!);
    merges.push([spell[a]!, spell[b]!]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === a && w.ids[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(w.ids[i]!);
      }
      w.ids = out;
    }
  }
  return merges;
}

test('pre-tokenisation matches the ByteLevel pre-tokenizer of @huggingface/tokenizers; special tokens are cut out first', () => {
  // ByteLevelPreTokenizer is exported at run time but not in the package's types
  const Pre = (hf as unknown as { ByteLevelPreTokenizer: new (cfg: object) => { pre_tokenize_text(t: string): string[] } }).ByteLevelPreTokenizer;
  const pre = new Pre({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
  const b2u = bytesToUnicode();
  const spell = (s: string): string => Array.from(new TextEncoder().encode(s), (b) => b2u[b]).join('');
  const rand = rng(3);
  const samples = ["Hello world, it's 2024!  Tabs\tand\n\nnewlines   ", ...varied(1, 50), ...Array.from({ length: 200 }, () => randomText(rand, 30).replace(/<\|(endoftext|im_start|im_end)\|>/g, ''))];
  for (const s of samples) {
    const ours = [...preTokenize(s)].map((p) => spell(p.text));
    assert.deepEqual(ours, pre.pre_tokenize_text(s), JSON.stringify(s));
  }
  assert.deepEqual([...preTokenize('hi<|im_end|>\n<|im_start|>user')], [
    { text: 'hi', special: false },
    { text: '<|im_end|>', special: true },
    { text: '\n', special: false },
    { text: '<|im_start|>', special: true },
    { text: 'user', special: false },
  ]);
  assert.deepEqual([...countWords(['a<|im_end|>a <|endoftext|> a'])], [['a', 2], [' ', 1], [' a', 1]]);
});

test('hand-checked merges: ties go to the smallest id pair, overlapping runs merge left to right', () => {
  // words "ab" and " cd", each once: the tied pairs are (Ġ=32, c=99) < (a=97, b=98) < (c, d)
  const abcd = fitByteLevelBpe(['ab cd'], { vocabSize: 262, minFrequency: 1 });
  assert.deepEqual(abcd.merges, [['Ġ', 'c'], ['a', 'b'], ['Ġc', 'd']]);
  assert.deepEqual([...abcd.vocab].slice(256), [['Ġc', 256], ['ab', 257], ['Ġcd', 258], ['<|endoftext|>', 259], ['<|im_start|>', 260], ['<|im_end|>', 261]]);
  // "aaaa": (a, a) occurs 3 times; merging left to right gives "aa aa", then "aaaa"
  assert.deepEqual(fitByteLevelBpe(['aaaa'], { vocabSize: 300, minFrequency: 1 }).merges, [['a', 'a'], ['aa', 'aa']]);
  // "aaa": after "aa a" the pair (aa, a) is new and merges next
  assert.deepEqual(fitByteLevelBpe(['aaa'], { vocabSize: 300, minFrequency: 1 }).merges, [['a', 'a'], ['aa', 'a']]);
  // min frequency: "xy" twice merges, "xyz" adds the pair (xy, z) once, which is not enough
  assert.deepEqual(fitByteLevelBpe(['xy xy z xyz'], { vocabSize: 300 }).merges, [['x', 'y'], ['Ġ', 'xy']]);
});

test('the incremental trainer equals a naive recount-every-step trainer', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rand = rng(seed);
    const alphabet = ['a', 'b', 'c', ' ', 'ab', 'é', '\n'].slice(0, 2 + (seed % 6));
    const texts = Array.from({ length: 30 }, () => {
      let s = '';
      for (let n = Math.floor(rand() * 24); n > 0; n--) s += alphabet[Math.floor(rand() * alphabet.length)];
      return s;
    });
    const vocabSize = 259 + 5 + Math.floor(rand() * 40);
    assert.deepEqual(fitByteLevelBpe(texts, { vocabSize, minFrequency: 1 }).merges, naiveFit(texts, vocabSize, 1), `seed ${seed}`);
  }
  const texts = varied(7, 400);
  assert.deepEqual(fitByteLevelBpe(texts, { vocabSize: 600 }).merges, naiveFit(texts, 600, 2));
});

test('merges are deterministic and independent of the order of the texts', () => {
  const texts = varied(11, 3000);
  const a = fitByteLevelBpe(texts, { vocabSize: 1024 });
  const b = fitByteLevelBpe(texts, { vocabSize: 1024 });
  const rand = rng(5);
  const shuffled = texts.map((t) => [rand(), t] as const).sort((x, y) => x[0] - y[0]).map(([, t]) => t);
  const c = fitByteLevelBpe(shuffled, { vocabSize: 1024 });
  assert.deepEqual(b.merges, a.merges);
  assert.deepEqual(c.merges, a.merges);
  assert.deepEqual([...c.vocab], [...a.vocab]);
  assert.equal(new Set(a.merges.map(([x, y]) => x + y)).size, a.merges.length, 'every merge makes a new token');
  // the vocabulary is bytes, then merges in order, then the special tokens
  assert.equal(a.vocab.size, 1024);
  a.merges.forEach(([x, y], i) => assert.equal(a.vocab.get(x + y), 256 + i));
  assert.deepEqual(SPECIAL_TOKENS.map((s) => a.vocab.get(s)), [1021, 1022, 1023]);
});

test('loadTokenizer and @huggingface/tokenizers give the ids of the reference by-rank encoder; arbitrary text round-trips', (t) => {
  withTmp((dir) => {
    const { fit, hfTok } = fitted(varied(21, 4000), 1500, dir);
    const tok = loadTokenizer(dir);
    assert.equal(tok.vocabSize, 1500);
    const files = fittedTokenizerFiles(fit);
    const jsonVocab = (files.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
    assert.deepEqual(new Map([...Object.entries(jsonVocab), ...SPECIAL_TOKENS.map((s) => [s, tok.tokenToId(s)!] as const)]), fit.vocab);
    const rand = rng(99);
    const strings = [
      ...varied(22, 300), // held out: another seed
      ...Array.from({ length: 300 }, () => randomText(rand, 40)),
      '', ' ', '   ', '\n\n\n', 'the the the', "don't won't it's", 'naïve café 日本語 🙂🚀', 'aaaaaaaaaaaaaaaaaaaaaa', '1234567890',
    ];
    let mismatches = 0;
    for (const s of strings) {
      const ids = tok.encode(s, { addSpecialTokens: false });
      assert.deepEqual(ids, encodeWithMerges(s, fit), JSON.stringify(s));
      assert.deepEqual(hfTok.encode(s, { add_special_tokens: false }).ids, ids);
      if (tok.decode(ids) !== s) mismatches++;
      assert.equal(tok.decode(ids), s, `round trip of ${JSON.stringify(s)}`);
    }
    t.diagnostic(`${strings.length} strings: loadTokenizer ids == reference ids, ${mismatches} round-trip mismatches`);
  });
});

test('special tokens stay atomic: never merged, one id wherever they occur', () => {
  withTmp((dir) => {
    const chats = varied(31, 2000).map((s, i) => `<|im_start|>${i % 2 ? 'user' : 'assistant'}\n${s}<|im_end|>\n<|endoftext|>`);
    const { fit } = fitted(chats, 800, dir);
    for (const [a, b] of fit.merges) assert.ok(!/im_|endof|\|>|<\|/.test(a + b), `merge ${a} ${b} takes part of a special token`);
    const tok = loadTokenizer(dir);
    const [eot, start, end] = SPECIAL_TOKENS.map((s) => tok.tokenToId(s)!);
    const ids = tok.encode('x<|im_start|>user\nhi<|im_end|><|im_end|>y<|endoftext|>', { addSpecialTokens: false });
    assert.equal(ids.filter((i) => i === start).length, 1);
    assert.equal(ids.filter((i) => i === end).length, 2);
    assert.equal(ids.filter((i) => i === eot).length, 1);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'xuser\nhiy');
    assert.deepEqual(tok.encode('<|im_end|>', { addSpecialTokens: false }), [end]);
    // chat markers come from the ChatML template; no BOS, <|im_end|> ends a turn and is the EOS
    const text = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    assert.equal(text, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    assert.deepEqual(tok.encode('hi'), tok.encode('hi', { addSpecialTokens: false }));
    assert.deepEqual(tok.eosIds, [end]);
  });
});

test('compression: fewer tokens than bytes on held-out text', (t) => {
  withTmp((dir) => {
    const { fit } = fitted(varied(41, 5000), 1024, dir);
    const tok = loadTokenizer(dir);
    const held = varied(42, 500).join('');
    const bytes = Buffer.byteLength(held);
    const n = tok.encode(held, { addSpecialTokens: false }).length;
    t.diagnostic(`varied text, vocab 1024 (${fit.merges.length} merges): ${bytes} bytes -> ${n} tokens, ${(bytes / n).toFixed(2)} bytes/token`);
    assert.ok(bytes / n > 2.5, `${(bytes / n).toFixed(2)} bytes/token`);
  });
});

const SHARED = '../shared/datasets';
test('compression on real English: Alpaca demo -> HH-RLHF dialogues', { skip: !existsSync(SHARED) && `${SHARED} is absent` }, (t) => {
  withTmp((dir) => {
    const alpaca = JSON.parse(readFileSync(`${SHARED}/llama-factory-demo/alpaca_en_demo.json`, 'utf8')) as Array<Record<string, string>>;
    const train = alpaca.map((r) => `${r.instruction}\n${r.input}\n${r.output}`);
    const t0 = performance.now();
    const { fit } = fitted(train, 2048, dir);
    const ms = performance.now() - t0;
    const hh = execFileSync('gzip', ['-dc', `${SHARED}/hh-rlhf/harmless-base-test.jsonl.gz`], { encoding: 'utf8', maxBuffer: 1 << 28 })
      .split('\n')
      .slice(0, 300)
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { chosen: string }).chosen)
      .join('\n');
    const tok = loadTokenizer(dir);
    const bytes = Buffer.byteLength(hh);
    const n = tok.encode(hh, { addSpecialTokens: false }).length;
    const trainBytes = train.reduce((a, s) => a + Buffer.byteLength(s), 0);
    t.diagnostic(`fit on ${(trainBytes / 1e6).toFixed(2)} MB in ${ms.toFixed(0)} ms (${fit.merges.length} merges); HH-RLHF ${bytes} bytes -> ${n} tokens, ${(bytes / n).toFixed(2)} bytes/token`);
    assert.ok(bytes / n > 2.6, `${(bytes / n).toFixed(2)} bytes/token`);
    assert.equal(tok.decode(tok.encode(hh, { addSpecialTokens: false })), hh);
  });
});

test('regression: learned tokens may spell Object.prototype names (constructor, toString ...)', () => {
  withTmp((dir) => {
    // the byte-level vocabulary was a plain object, and `'constructor' in {}` is true: such tokens got no id
    const text = 'constructor toString valueOf hasOwnProperty '.repeat(20);
    const { fit, hfTok } = fitted([text], 400, dir);
    for (const w of ['constructor', 'ĠtoString', 'ĠvalueOf', 'ĠhasOwnProperty', 'Ġconstructor']) assert.ok(fit.vocab.has(w), w);
    const tok = loadTokenizer(dir);
    for (const s of [text, ' constructor', 'toString']) {
      assert.deepEqual(tok.encode(s, { addSpecialTokens: false }), encodeWithMerges(s, fit));
      assert.deepEqual(hfTok.encode(s, { add_special_tokens: false }).ids, encodeWithMerges(s, fit));
      assert.equal(tok.decode(tok.encode(s, { addSpecialTokens: false })), s);
    }
    assert.deepEqual(tok.encode(' constructor', { addSpecialTokens: false }), [fit.vocab.get('Ġconstructor')]);
  });
});

test('options are checked; a small corpus stops early; extra special tokens follow the ChatML ones', () => {
  assert.throws(() => fitByteLevelBpe(['a'], { vocabSize: 258 }), /vocab size 258 is too small: it must be an integer of at least 259/);
  assert.throws(() => fitByteLevelBpe(['a'], { vocabSize: 300, minFrequency: 0 }), /min frequency 0/);
  assert.throws(() => fitByteLevelBpe(['a'], { vocabSize: 300, specialTokens: ['<a>', '<a>'] }), /repeat/);
  const small = fitByteLevelBpe(['hello hello'], { vocabSize: 5000 });
  assert.equal(small.vocab.size, 256 + small.merges.length + 3);
  assert.ok(small.merges.length < 10);
  assert.throws(() => fittedTokenizerFiles(fitByteLevelBpe(['a'], { vocabSize: 300, specialTokens: ['<s>'] })), /must begin with <\|endoftext\|>/);
  const extra = fitByteLevelBpe(['<tool>call</tool> call call'], { vocabSize: 300, specialTokens: [...SPECIAL_TOKENS, '<tool>', '</tool>'] });
  const files = fittedTokenizerFiles(extra);
  const hfTok = new hf.Tokenizer(files.tokenizerJson, files.tokenizerConfig);
  assert.deepEqual(hfTok.encode('<tool>x</tool>', { add_special_tokens: false }).ids, encodeWithMerges('<tool>x</tool>', extra));
  assert.equal(hfTok.token_to_id('</tool>'), extra.vocab.get('</tool>'));
});

test('initModel --preset micro --tokenizer DIR writes a loadable model with vocab_size rounded up to 64', () => {
  withTmp((root) => {
    const tokDir = join(root, 'tok');
    const { fit } = fitted(varied(51, 2000), 1000, tokDir);
    const out = join(root, 'm');
    const res = initModel({ preset: 'micro', seed: 3, out, tokenizer: tokDir });
    assert.deepEqual(res.files, ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    const cfg = loadConfig(out);
    const s = presets.micro.sizes; // tunable data: the test follows it
    assert.deepEqual(
      [cfg.family, cfg.hiddenSize, cfg.intermediateSize, cfg.numLayers, cfg.numHeads, cfg.numKvHeads, cfg.maxPositionEmbeddings, cfg.tieWordEmbeddings, cfg.rmsNormEps, cfg.ropeTheta],
      ['llama', s.hidden_size, s.intermediate_size, s.num_hidden_layers, s.num_attention_heads, s.num_key_value_heads, s.max_position_embeddings, s.tie_word_embeddings, s.rms_norm_eps, s.rope_theta],
    );
    assert.equal(cfg.vocabSize, 1024); // 1000 rounded up to a multiple of 64
    const w = loadWeights(out, cfg);
    assert.deepEqual(w.get('model.embed_tokens.weight')!.length, 1024 * s.hidden_size);
    assert.equal(res.numParams, [...w.values()].reduce((a, x) => a + x.length, 0));
    const tok = loadTokenizer(out);
    assert.equal(tok.vocabSize, 1000);
    assert.deepEqual([cfg.bosTokenId, cfg.eosTokenIds, cfg.padTokenId], [fit.vocab.get('<|endoftext|>'), [fit.vocab.get('<|im_end|>')], fit.vocab.get('<|endoftext|>')]);
    assert.deepEqual(tok.eosIds, [fit.vocab.get('<|im_end|>')]);
    assert.equal(JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')).model_max_length, s.max_position_embeddings);
    assert.ok(readFileSync(join(out, 'tokenizer.json')).equals(readFileSync(join(tokDir, 'tokenizer.json'))));
    assert.deepEqual(tok.encode('Hello there', { addSpecialTokens: false }), encodeWithMerges('Hello there', fit));
    // without --tokenizer, micro keeps the default byte-level tokenizer and the preset's vocab
    initModel({ preset: 'micro', seed: 3, out: join(root, 'd') });
    assert.equal(loadConfig(join(root, 'd')).vocabSize, s.vocab_size);
  });
});
