import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { convertLlama2c, permuteForRotateHalf, readLlama2cModel } from './llama2c.js';
import { readLlama2cTokenizer } from './llama2c-tokenizer.js';
import { loadTokenizer, type PlumTokenizer } from './tokenizer.js';
import { expectedTensorShapes, loadConfig } from './config.js';
import { readSafetensors } from './safetensors.js';
import { loadWeights } from './weights.js';
import { referenceLogits } from './testing.js';
import { PlumError } from '../util/errors.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const shared = fileURLToPath(new URL('../../../shared/', import.meta.url));
const modelBin = join(shared, 'models/stories260K/stories260K.bin');
const tokBin = join(shared, 'models/stories260K/tok512.bin');
const refDir = join(shared, 'reference/stories260K');
const noShared = existsSync(modelBin) && existsSync(refDir) ? false : `../shared/models/stories260K or reference not found under ${shared}; skipping`;

interface Reference {
  greedy_cases: { prompt: string; prompt_tokens: number[]; tokens: number[]; text: string; published_reference_file: string }[];
  teacher_forced: { text: string; tokens: number[] };
  logits_bos_greedy_path: { positions: number[][] };
}

/** Convert once into a temporary folder shared by the tests below. */
let converted: { dir: string; tok: PlumTokenizer; ref: Reference } | undefined;
function fixture(): NonNullable<typeof converted> {
  if (!converted) {
    const dir = mkdtempSync(join(tmpdir(), 'plum-llama2c-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    convertLlama2c({ model: modelBin, tokenizer: tokBin, out: dir });
    const ref = JSON.parse(readFileSync(join(refDir, 'stories260K_reference_computed.json'), 'utf8')) as Reference;
    converted = { dir, tok: loadTokenizer(dir), ref };
  }
  return converted;
}

test('converted tokenizer encodes like llama2.c (reference sentence and prompt)', { skip: noShared }, () => {
  const { tok, ref } = fixture();
  assert.deepEqual(tok.encode(ref.teacher_forced.text), ref.teacher_forced.tokens);
  for (const c of ref.greedy_cases) assert.deepEqual(tok.encode(c.prompt), c.prompt_tokens, `prompt ${JSON.stringify(c.prompt)}`);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2, 1], 'EOS, then BOS (llama2.c stops at BOS)');
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.chatTemplate, null);
});

test('decoding the greedy reference ids reproduces llama2.c output byte for byte', { skip: noShared }, () => {
  const { tok, ref } = fixture();
  for (const c of ref.greedy_cases) {
    // The published files are llama2.c's stdout without its final "\n": the pieces after BOS,
    // the first one's leading space stripped, <0x0A> printed as a newline.
    const published = readFileSync(join(refDir, c.published_reference_file), 'utf8');
    assert.equal(tok.decode(c.tokens, { skipSpecialTokens: true }), published);
    assert.equal(tok.decode(c.tokens.slice(1)), published);
    // Like HF's Llama-2 tokenizer: with BOS shown, the Strip decoder has nothing to strip.
    assert.equal(tok.decode(c.tokens), '<s> ' + published);
    const stream = tok.createDecodeStream();
    assert.equal(c.tokens.map((id) => stream.push(id)).join('') + stream.flush(), published);
  }
});

/** llama2.c run.c `encode`, transcribed: dummy prefix, code point lookup or bytes + 3, best-score merges. */
function llama2cEncode(pieces: string[], scores: Float32Array, text: string): number[] {
  const lookup = new Map(pieces.map((p, i) => [p, i]));
  const tokens = [1];
  if (text !== '') tokens.push(lookup.get(' ')!);
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const b of Buffer.from(ch, 'utf8')) tokens.push(b + 3);
  }
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
      if (id !== undefined && scores[id]! > best) [best, bestId, bestIdx] = [scores[id]!, id, i];
    }
    if (bestIdx === -1) return tokens;
    tokens.splice(bestIdx, 2, bestId);
  }
}

test('converted tokenizer.json matches a transcription of llama2.c encode on varied text', { skip: noShared }, () => {
  const { tok, ref } = fixture();
  const v = readLlama2cTokenizer(tokBin, 512);
  const texts = [
    '', ' ', 'a', '  two leading spaces', 'trailing space ', 'double  space', 'tabs\tand\nnew\nlines\n\n',
    'Ünïcödé 日本 🎉 – “quotes” €5', '<s> is not special to llama2.c', 'ZOO zoo Zoo!!! 12345 3.14',
    ...ref.greedy_cases.map((c) => c.text),
  ];
  const alpaca = join(shared, 'datasets/llama-factory-demo/alpaca_en_demo.json');
  if (existsSync(alpaca)) {
    for (const ex of (JSON.parse(readFileSync(alpaca, 'utf8')) as { instruction: string; output: string }[]).slice(0, 150)) {
      texts.push(ex.instruction, ex.output);
    }
  }
  let checked = 0;
  for (const t of texts) {
    if (t.includes('<s>') || t.includes('</s>') || t.includes('<unk>')) {
      // HF treats these strings as special tokens; llama2.c does not. Compare the rest only.
      assert.deepEqual(tok.encode(t).slice(0, 1), [1]);
      continue;
    }
    assert.deepEqual(tok.encode(t), llama2cEncode(v.pieces, v.scores, t), `text ${JSON.stringify(t.slice(0, 80))}`);
    assert.equal(tok.decode(tok.encode(t), { skipSpecialTokens: true }), t, 'round trip');
    checked++;
  }
  assert.ok(checked > 10);
});

test('converted weights: config.json and tensor names/shapes agree with expectedTensorShapes', { skip: noShared }, () => {
  const { dir } = fixture();
  const cfg = loadConfig(dir);
  assert.equal(cfg.family, 'llama');
  assert.deepEqual(
    [cfg.hiddenSize, cfg.intermediateSize, cfg.numLayers, cfg.numHeads, cfg.numKvHeads, cfg.headDim, cfg.vocabSize, cfg.maxPositionEmbeddings],
    [64, 172, 5, 8, 4, 8, 512, 512],
  );
  assert.equal(cfg.tieWordEmbeddings, true);
  assert.equal(cfg.rmsNormEps, 1e-5);
  assert.equal(cfg.ropeTheta, 10000);
  assert.equal(cfg.bosTokenId, 1);
  assert.deepEqual(cfg.eosTokenIds, [2]);
  const { tensors } = readSafetensors(join(dir, 'model.safetensors'));
  const expected = expectedTensorShapes(cfg);
  assert.deepEqual([...tensors.keys()].sort(), [...expected.keys()].sort());
  for (const [name, shape] of expected) {
    assert.deepEqual(tensors.get(name)!.shape, shape, name);
    assert.equal(tensors.get(name)!.dtype, 'F32');
  }
});

test('q/k rows are permuted from the raw file: converted row p*Dh/2+i of a head is raw row 2i+p', { skip: noShared }, () => {
  const raw = readFileSync(modelBin);
  const [C, , L] = [0, 1, 2].map((i) => raw.readInt32LE(4 * i)) as [number, number, number];
  const V = 512;
  const Dh = 8;
  const wqStart = 28 + 4 * (V * C + L * C); // after the embedding table and rms_att
  const rawRow = (r: number): number[] => Array.from({ length: C }, (_, c) => raw.readFloatLE(wqStart + 4 * (r * C + c)));
  const q = readLlama2cModel(modelBin).tensors.get('model.layers.0.self_attn.q_proj.weight')!.data;
  for (const [h, i, p] of [[0, 0, 0], [0, 1, 1], [3, 2, 1], [7, 3, 0]] as const) {
    const got = Array.from(q.subarray((h * Dh + p * (Dh / 2) + i) * C, (h * Dh + p * (Dh / 2) + i + 1) * C));
    assert.deepEqual(got, rawRow(h * Dh + 2 * i + p), `head ${h} pair ${i} part ${p}`);
  }
});

test('converted weights + HF rotate-half RoPE reproduce llama2.c logits at the first 5 positions', { skip: noShared }, () => {
  const { dir, ref } = fixture();
  const cfg = loadConfig(dir);
  const ids = ref.greedy_cases[0]!.tokens.slice(0, 5);
  const got = referenceLogits(cfg, loadWeights(dir, cfg), ids);
  let maxDiff = 0;
  ref.logits_bos_greedy_path.positions.forEach((row, t) => row.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - got[t]![i]!)))));
  // float64 forward over float32 weights vs llama2.c-style float64 reference: 1e-4 leaves room for rounding.
  assert.ok(maxDiff < 1e-4, `max |logit diff| ${maxDiff}`);
});

/** RoPE on one head at `pos`: llama2.c pairs (x[2i], x[2i+1]) or HF rotate-half pairs (x[i], x[i+Dh/2]). */
function rope(x: Float64Array, pos: number, interleaved: boolean): Float64Array {
  const Dh = x.length;
  const out = new Float64Array(Dh);
  for (let i = 0; i < Dh / 2; i++) {
    const angle = pos / 10000 ** ((2 * i) / Dh);
    const [a, b] = interleaved ? [2 * i, 2 * i + 1] : [i, i + Dh / 2];
    out[a] = x[a]! * Math.cos(angle) - x[b]! * Math.sin(angle);
    out[b] = x[a]! * Math.sin(angle) + x[b]! * Math.cos(angle);
  }
  return out;
}

test('permutation self-check: interleaved RoPE with raw weights == rotate-half RoPE with permuted weights', () => {
  const [H, Dh, C] = [3, 8, 5];
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const w = Float32Array.from({ length: H * Dh * C }, rand);
  const wk = Float32Array.from({ length: H * Dh * C }, rand);
  const x = Float64Array.from({ length: C }, rand);
  const y = Float64Array.from({ length: C }, rand);
  const project = (m: Float32Array, v: Float64Array, h: number): Float64Array =>
    Float64Array.from({ length: Dh }, (_, r) => v.reduce((s, vc, c) => s + m[(h * Dh + r) * C + c]! * vc, 0));
  const [pw, pk] = [permuteForRotateHalf(w, H, Dh, C), permuteForRotateHalf(wk, H, Dh, C)];
  for (let h = 0; h < H; h++) {
    for (const pos of [0, 1, 5, 37]) {
      const a = rope(project(w, x, h), pos, true);
      const b = rope(project(pw, x, h), pos, false);
      for (let i = 0; i < Dh / 2; i++) {
        for (let p = 0; p < 2; p++) assert.ok(Math.abs(a[2 * i + p]! - b[p * (Dh / 2) + i]!) < 1e-12);
      }
      // Attention scores (q·k at different positions) are identical.
      const dot = (u: Float64Array, v: Float64Array): number => u.reduce((s, ui, i) => s + ui * v[i]!, 0);
      const s1 = dot(rope(project(w, x, h), pos, true), rope(project(wk, y, h), 3, true));
      const s2 = dot(rope(project(pw, x, h), pos, false), rope(project(pk, y, h), 3, false));
      assert.ok(Math.abs(s1 - s2) < 1e-12, `score ${s1} vs ${s2}`);
    }
  }
});

test('errors: missing files, truncated model / tokenizer, versioned export are one-line PlumErrors', { skip: noShared }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-llama2c-err-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const oneLine = (re: RegExp) => (e: unknown) => e instanceof PlumError && re.test(e.message) && !e.message.includes('\n');
  const out = join(dir, 'out');
  assert.throws(() => convertLlama2c({ model: join(dir, 'nope.bin'), tokenizer: tokBin, out }), oneLine(/nope\.bin: not found; pass the llama2\.c model file/));
  assert.throws(() => convertLlama2c({ model: modelBin, tokenizer: join(dir, 'nope.bin'), out }), oneLine(/nope\.bin: not found; pass the llama2\.c tokenizer file/));
  const bin = readFileSync(modelBin);
  writeFileSync(join(dir, 'short.bin'), bin.subarray(0, bin.length - 100));
  assert.throws(() => convertLlama2c({ model: join(dir, 'short.bin'), tokenizer: tokBin, out }), oneLine(/short\.bin: \d+ bytes, but its header .* implies \d+; the file is truncated/));
  writeFileSync(join(dir, 'tiny.bin'), bin.subarray(0, 10));
  assert.throws(() => readLlama2cModel(join(dir, 'tiny.bin')), oneLine(/tiny\.bin: truncated \(10 bytes/));
  const versioned = Buffer.alloc(256);
  versioned.writeUInt32LE(0x616b3432, 0);
  versioned.writeInt32LE(2, 4);
  writeFileSync(join(dir, 'v2.bin'), versioned);
  assert.throws(() => readLlama2cModel(join(dir, 'v2.bin')), oneLine(/version 2.*--version 0/));
  const tok = readFileSync(tokBin);
  writeFileSync(join(dir, 'tok.bin'), tok.subarray(0, 3000));
  assert.throws(() => convertLlama2c({ model: modelBin, tokenizer: join(dir, 'tok.bin'), out }), oneLine(/tok\.bin: truncated \(3000 bytes\) while reading token \d+/));
  assert.throws(() => readLlama2cTokenizer(tokBin, 300), oneLine(/holds more than the model's 300 tokens/));
  assert.ok(!existsSync(out), 'nothing written on failure');
});

test('CLI: plum convert llama2c writes a loadable folder; bad input exits 1 with one line', { skip: noShared }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-llama2c-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'stories260K');
  const run = (...args: string[]) => spawnSync(process.execPath, [join(repo, 'bin/plum.js'), 'convert', 'llama2c', ...args], { encoding: 'utf8' });
  const ok = run('--model', modelBin, '--tokenizer', tokBin, '--out', out);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /stories260K/);
  assert.deepEqual(loadTokenizer(out).encode('Zoo'), [1, 410, 469, 347]);
  const again = run('--model', modelBin, '--tokenizer', tokBin, '--out', out);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^plum: .*already holds a model.*pass --force to overwrite\n$/);
  assert.equal(run('--model', modelBin, '--tokenizer', tokBin, '--out', out, '--force').status, 0);
  const bad = run('--model', join(dir, 'missing.bin'), '--tokenizer', tokBin, '--out', join(dir, 'x'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^plum: .*missing\.bin: not found; pass the llama2\.c model file .*\n$/);
});
