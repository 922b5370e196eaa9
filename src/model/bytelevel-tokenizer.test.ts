import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { buildByteLevelTokenizer, bytesToUnicode, DEFAULT_MERGES, spaceAfterNewline } from './bytelevel-tokenizer.js';

test('bytesToUnicode matches GPT-2 (printable bytes map to themselves, space -> Ġ)', () => {
  const m = bytesToUnicode();
  assert.equal(m.length, 256);
  assert.equal(new Set(m).size, 256);
  assert.equal(m[0x41], 'A');
  assert.equal(m[0x20], 'Ġ'); // U+0120
  assert.equal(m[0x0a], 'Ċ'); // U+010A
  assert.equal(m[0x00], 'Ā'); // U+0100
  assert.equal(m[0xad], 'Ń'); // soft hyphen: the last of the 68 remapped bytes, U+0143
  assert.equal(m[0xff], 'ÿ');
});

test('sizes and special-token ids', () => {
  const t = buildByteLevelTokenizer();
  const mergeTokens = new Set(DEFAULT_MERGES.map(([a, b]) => a + b)).size;
  assert.equal(t.size, 256 + mergeTokens + 3);
  assert.deepEqual(t.ids, { endoftext: 256 + mergeTokens, imStart: 257 + mergeTokens, imEnd: 258 + mergeTokens });
  assert.ok(t.size <= 512);
  assert.throws(() => buildByteLevelTokenizer({ merges: [['ab', 'c']] }), /not in the vocabulary/);
});

test('@huggingface/tokenizers loads it, applies merges, and round-trips any text', () => {
  const files = buildByteLevelTokenizer();
  const tok = new Tokenizer(files.tokenizerJson, files.tokenizerConfig);
  const enc = tok.encode(' the cat and the hat');
  assert.deepEqual(enc.tokens, ['Ġthe', 'Ġc', 'at', 'Ġand', 'Ġthe', 'Ġh', 'at']);
  assert.deepEqual(enc.ids.slice(0, 2), [258, 280]); // Ġt=256, he=257, Ġthe=258 (the third merge); Ġc=280 (the 25th)
  assert.deepEqual(tok.encode('A').ids, [65]); // no BOS is added; bytes are their own ids
  for (const text of ['Hello, world!\n', 'naïve café — 日本語 🙂🚀', '\u0000\t\r\n  spaces  ', 'ünïcödé\u00ad']) {
    assert.equal(tok.decode(tok.encode(text).ids), text, JSON.stringify(text));
  }
  const chat = `<|im_start|>user\nhi<|im_end|>\n`;
  const ids = tok.encode(chat).ids;
  assert.equal(ids[0], files.ids.imStart);
  assert.ok(ids.includes(files.ids.imEnd));
  assert.equal(tok.decode(ids), chat);
  assert.equal(tok.decode(ids, { skip_special_tokens: true }), 'user\nhi\n');
  assert.equal(tok.token_to_id('<|endoftext|>'), files.ids.endoftext);
});

test('spaceAfterNewline: a word starting a line gets the same token as after a space; text round-trips', () => {
  const merges: ReadonlyArray<readonly [string, string]> = [...DEFAULT_MERGES, ['Ġc', 'at']];
  const plain = new Tokenizer(buildByteLevelTokenizer({ merges }).tokenizerJson, {});
  const files = buildByteLevelTokenizer({ merges, spaceAfterNewline: true });
  const tok = new Tokenizer(files.tokenizerJson, files.tokenizerConfig);
  const catId = tok.encode(' cat').ids;
  assert.equal(catId.length, 1);
  assert.deepEqual(tok.encode('\ncat').ids.slice(1), catId); // "\n", "Ġcat"
  assert.notDeepEqual(plain.encode('\ncat').ids.slice(1), catId); // without it: "c", "at"
  // A prompt that ends in a newline gets no trailing space token (the reply brings its own).
  assert.deepEqual(tok.encode('user\n').tokens.slice(-1), ['Ċ']);
  for (const text of ['a\ncat\n\n- b\n', 'x\n\ty', '<|im_start|>assistant\ncat<|im_end|>\n']) assert.equal(tok.decode(tok.encode(text).ids), text, JSON.stringify(text));
  assert.equal(spaceAfterNewline('a\nb\n\nc\n'), 'a\n b\n\n c\n');
});

test('the ChatML chat template renders', () => {
  const { tokenizerConfig } = buildByteLevelTokenizer();
  const out = new Template(tokenizerConfig.chat_template as string).render({
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ],
    add_generation_prompt: true,
  });
  assert.equal(out, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
});
