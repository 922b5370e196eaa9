/**
 * llama2.c legacy checkpoint (`stories260K.bin`, `stories15M.bin` ...) -> Hugging Face Llama
 * model folder (config.json, generation_config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json).
 *
 * Legacy (version 0) layout: 7 int32 (dim C, hidden_dim F, n_layers L, n_heads H, n_kv_heads
 * Hkv, vocab_size V (negative: untied classifier), seq_len T), then float32 arrays, each
 * layer's matrix [out, in] row-major like nn.Linear.weight:
 *   token_embedding_table [V, C], rms_att [L, C], wq [L, C, C], wk [L, Hkv*Dh, C],
 *   wv [L, Hkv*Dh, C], wo [L, C, C], rms_ffn [L, C], w1 [L, F, C], w2 [L, C, F], w3 [L, F, C],
 *   rms_final [C], freq_cis_real [T, Dh/2], freq_cis_imag [T, Dh/2], wcls [V, C] if untied.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../util/errors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { writeSafetensors, type NamedTensor } from './safetensors.js';
import { llama2cTokenizerConfig, llama2cTokenizerJson, readLlama2cTokenizer, LLAMA2C_SPECIALS } from './llama2c-tokenizer.js';

export interface Llama2cHeader {
  dim: number; // C
  hiddenDim: number; // F
  nLayers: number; // L
  nHeads: number; // H
  nKvHeads: number; // Hkv
  vocabSize: number; // V
  seqLen: number; // T
  /** Classifier shares the token embedding (vocab_size was positive in the file). */
  sharedWeights: boolean;
}

const HEADER_BYTES = 7 * 4;
/** "ak42": magic of llama2.c's versioned exports (version 1 and 2), which this reader does not handle. */
const VERSIONED_MAGIC = 0x616b3432;

function readHeader(file: string, buf: Buffer): Llama2cHeader {
  if (buf.length < HEADER_BYTES) fail(`${file}: truncated (${buf.length} bytes, the header alone is ${HEADER_BYTES}); re-export or re-download the model`);
  if (buf.readUInt32LE(0) === VERSIONED_MAGIC) {
    fail(`${file}: a versioned llama2.c export (version ${buf.readInt32LE(4)}); only the legacy format is supported, export with \`python export.py --version 0\``);
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(4 * i)) as [
    number, number, number, number, number, number, number,
  ];
  const h: Llama2cHeader = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedWeights: vocab > 0 };
  const bad = (why: string): never =>
    fail(`${file}: header (dim ${dim}, hidden_dim ${hiddenDim}, n_layers ${nLayers}, n_heads ${nHeads}, n_kv_heads ${nKvHeads}, vocab_size ${vocab}, seq_len ${seqLen}) ${why}; this is not a llama2.c legacy model`);
  if ([dim, hiddenDim, nLayers, nHeads, nKvHeads, h.vocabSize, seqLen].some((x) => x <= 0 || x > 1 << 24)) bad('has a value out of range');
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) bad('needs dim divisible by n_heads with an even head size');
  if (nHeads % nKvHeads !== 0) bad('needs n_heads to be a multiple of n_kv_heads');
  return h;
}

/** Element counts of the arrays after the header, in file order. */
function layout(h: Llama2cHeader): [string, number][] {
  const { dim: C, hiddenDim: F, nLayers: L, vocabSize: V, seqLen: T } = h;
  const Dh = C / h.nHeads;
  const kv = h.nKvHeads * Dh;
  const parts: [string, number][] = [
    ['embed', V * C], ['rms_att', L * C], ['wq', L * C * C], ['wk', L * kv * C], ['wv', L * kv * C], ['wo', L * C * C],
    ['rms_ffn', L * C], ['w1', L * F * C], ['w2', L * C * F], ['w3', L * F * C], ['rms_final', C],
    ['freq_cis_real', (T * Dh) / 2], ['freq_cis_imag', (T * Dh) / 2],
  ];
  if (!h.sharedWeights) parts.push(['wcls', V * C]);
  return parts;
}

/**
 * Reorder the rows of a q/k projection from llama2.c's interleaved RoPE pairs (x[2i], x[2i+1])
 * to HF's rotate-half pairs (x[i], x[i + Dh/2]) — transformers' `permute` in
 * convert_llama_weights_to_hf.py. Within each head, row 2i+p moves to row p*(Dh/2)+i.
 * `w`: [nHeads*Dh, cols].
 */
export function permuteForRotateHalf(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  if (w.length !== nHeads * headDim * cols) throw new RangeError(`permuteForRotateHalf: ${w.length} values, expected ${nHeads}*${headDim}*${cols}`);
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let p = 0; p < 2; p++) {
        const src = (h * headDim + 2 * i + p) * cols;
        const dst = (h * headDim + p * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/**
 * The inverse of permuteForRotateHalf: HF's rotate-half rows to interleaved RoPE pairs, as
 * llama.cpp's convert_hf_to_gguf.py `permute` writes q/k for its llama architecture. Within each
 * head, row p*(Dh/2)+i moves to row 2i+p. `w`: [nHeads*Dh, cols].
 */
export function permuteToInterleaved(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  if (w.length !== nHeads * headDim * cols) throw new RangeError(`permuteToInterleaved: ${w.length} values, expected ${nHeads}*${headDim}*${cols}`);
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++)
    for (let i = 0; i < half; i++)
      for (let p = 0; p < 2; p++) out.set(w.subarray((h * headDim + p * half + i) * cols, (h * headDim + p * half + i + 1) * cols), (h * headDim + 2 * i + p) * cols);
  return out;
}

/** Read a llama2.c legacy checkpoint into HF-named float32 tensors (q/k rows permuted for rotate-half RoPE). */
export function readLlama2cModel(file: string): { header: Llama2cHeader; tensors: Map<string, NamedTensor> } {
  if (!existsSync(file) || !statSync(file).isFile()) fail(`${file}: not found; pass the llama2.c model file (e.g. stories260K.bin) with --model`);
  const buf = readFileSync(file);
  const h = readHeader(file, buf);
  const parts = layout(h);
  const floats = parts.reduce((s, [, n]) => s + n, 0);
  const expected = HEADER_BYTES + 4 * floats;
  if (buf.length !== expected) {
    fail(`${file}: ${buf.length} bytes, but its header (dim ${h.dim}, n_layers ${h.nLayers}, vocab_size ${h.vocabSize}, ${h.sharedWeights ? 'tied' : 'untied'} classifier) implies ${expected}; the file is truncated or not a llama2.c legacy model`);
  }
  const all = new Float32Array(floats); // copy: Buffer offsets need not be 4-byte aligned
  new Uint8Array(all.buffer).set(buf.subarray(HEADER_BYTES));
  const arrays = new Map<string, Float32Array>();
  let off = 0;
  for (const [name, n] of parts) {
    arrays.set(name, all.subarray(off, off + n));
    off += n;
  }

  const { dim: C, hiddenDim: F, nLayers: L, nHeads: H, nKvHeads: Hkv, vocabSize: V } = h;
  const Dh = C / H;
  const tensors = new Map<string, NamedTensor>();
  const put = (name: string, shape: number[], data: Float32Array): void => void tensors.set(name, { dtype: 'F32', shape, data });
  /** Layer l's slice of a stacked [L, ...] array. */
  const layer = (name: string, l: number): Float32Array => {
    const a = arrays.get(name)!;
    const n = a.length / L;
    return a.subarray(l * n, (l + 1) * n);
  };
  put('model.embed_tokens.weight', [V, C], arrays.get('embed')!);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    put(p + 'input_layernorm.weight', [C], layer('rms_att', l));
    put(p + 'self_attn.q_proj.weight', [H * Dh, C], permuteForRotateHalf(layer('wq', l), H, Dh, C));
    put(p + 'self_attn.k_proj.weight', [Hkv * Dh, C], permuteForRotateHalf(layer('wk', l), Hkv, Dh, C));
    put(p + 'self_attn.v_proj.weight', [Hkv * Dh, C], layer('wv', l));
    put(p + 'self_attn.o_proj.weight', [C, H * Dh], layer('wo', l));
    put(p + 'post_attention_layernorm.weight', [C], layer('rms_ffn', l));
    put(p + 'mlp.gate_proj.weight', [F, C], layer('w1', l));
    put(p + 'mlp.down_proj.weight', [C, F], layer('w2', l));
    put(p + 'mlp.up_proj.weight', [F, C], layer('w3', l));
  }
  put('model.norm.weight', [C], arrays.get('rms_final')!);
  if (!h.sharedWeights) put('lm_head.weight', [V, C], arrays.get('wcls')!);
  return { header: h, tensors };
}

/** The HF config.json of a llama2.c model (llama2.c's fixed conventions: eps 1e-5, theta 10000, BOS 1, EOS 2). */
export function llama2cHfConfig(h: Llama2cHeader): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: h.vocabSize,
    hidden_size: h.dim,
    intermediate_size: h.hiddenDim,
    num_hidden_layers: h.nLayers,
    num_attention_heads: h.nHeads,
    num_key_value_heads: h.nKvHeads,
    head_dim: h.dim / h.nHeads,
    hidden_act: 'silu',
    max_position_embeddings: h.seqLen,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: h.sharedWeights,
    bos_token_id: LLAMA2C_SPECIALS.bos,
    eos_token_id: LLAMA2C_SPECIALS.eos,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

export interface ConvertLlama2cOptions {
  model: string;
  tokenizer: string;
  out: string;
}

/** Files a converted folder holds, in writing order. */
export const LLAMA2C_OUTPUT_FILES = ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'config.json'] as const;

/**
 * Convert a llama2.c model + tokenizer into a Hugging Face model folder. config.json is written
 * last, so a folder with config.json is complete.
 */
export function convertLlama2c(opts: ConvertLlama2cOptions): { header: Llama2cHeader; tensors: number; parameters: number } {
  const { header, tensors } = readLlama2cModel(opts.model);
  const vocab = readLlama2cTokenizer(opts.tokenizer, header.vocabSize);
  const tokJson = llama2cTokenizerJson(vocab, opts.tokenizer);
  writeSafetensors(join(opts.out, 'model.safetensors'), tensors, { format: 'pt', source: 'llama2.c legacy checkpoint (q/k rows permuted for rotate-half RoPE)' });
  writeJsonAtomic(join(opts.out, 'tokenizer.json'), tokJson);
  writeJsonAtomic(join(opts.out, 'tokenizer_config.json'), llama2cTokenizerConfig(vocab, header.seqLen));
  // llama2.c ends a story with BOS (its training data delimits documents with BOS, never EOS), so
  // BOS also stops generation.
  writeJsonAtomic(join(opts.out, 'generation_config.json'), {
    bos_token_id: LLAMA2C_SPECIALS.bos,
    eos_token_id: [LLAMA2C_SPECIALS.eos, LLAMA2C_SPECIALS.bos],
  });
  writeJsonAtomic(join(opts.out, 'config.json'), llama2cHfConfig(header));
  let parameters = 0;
  for (const t of tensors.values()) parameters += t.data.length;
  return { header, tensors: tensors.size, parameters };
}
