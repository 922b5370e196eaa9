/**
 * Hugging Face model folder -> GGUF, laid out as llama.cpp's convert_hf_to_gguf.py writes it,
 * so that a model tuned (and merged) with Plum runs in llama.cpp, Ollama or LM Studio.
 *
 * The inverse of gguf-convert.ts: `llama` (Llama, Mistral, SmolLM2) gets its q/k rows in
 * llama.cpp's interleaved RoPE order, Llama 3's rope_scaling becomes a rope_freqs tensor, 2-D
 * weights are written as F32 / F16 / BF16 / Q8_0 and norms as F32. The tokenizer.json becomes
 * `tokenizer.ggml.*`: byte-level BPE as `gpt2` (with the pre-tokenizer llama.cpp names), a
 * SentencePiece-style BPE with byte fallback as `llama` (piece scores from the merge ranks).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../util/errors.js';
import { type ModelConfig, expectedTensorShapes, loadConfig, parseConfig } from './config.js';
import { GGML_TYPES, type GgufTensorToWrite, type GgufTyped, type GgufValue, typed, writeGguf } from './gguf.js';
import { GGUF_PRE_TOKENIZERS, ggufName } from './gguf-convert.js';
import { permuteToInterleaved } from './llama2c.js';
import { ropeParameters } from './rope.js';
import { loadWeights } from './weights.js';

export const GGUF_EXPORT_TYPES = { f32: GGML_TYPES.F32, f16: GGML_TYPES.F16, bf16: GGML_TYPES.BF16, q8_0: GGML_TYPES.Q8_0 } as const;
export type GgufExportType = keyof typeof GGUF_EXPORT_TYPES;

/** llama.cpp's architecture for a Plum family. */
export function ggufArch(cfg: ModelConfig, file: string): 'llama' | 'qwen2' | 'qwen3' {
  if (cfg.mlpBias) fail(`${file}: mlp_bias=true has no place in llama.cpp's llama architecture; it cannot be exported to GGUF`);
  if (cfg.slidingWindow !== null && cfg.slidingWindow < cfg.maxPositionEmbeddings) fail(`${file}: sliding-window attention (${cfg.slidingWindow} of ${cfg.maxPositionEmbeddings} positions) would be lost in GGUF's llama/qwen2 architectures; it cannot be exported`);
  if (cfg.family === 'qwen2') return 'qwen2';
  if (cfg.family === 'qwen3') return 'qwen3';
  return 'llama';
}

/** Architecture metadata and rope_freqs for a config. */
function modelMetadata(cfg: ModelConfig, arch: string, file: string): { md: Map<string, GgufValue | GgufTyped>; ropeFreqs: Float32Array | null } {
  const md = new Map<string, GgufValue | GgufTyped>([
    ['general.architecture', arch],
    [`${arch}.block_count`, typed('U32', cfg.numLayers)],
    [`${arch}.context_length`, typed('U32', cfg.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, typed('U32', cfg.hiddenSize)],
    [`${arch}.feed_forward_length`, typed('U32', cfg.intermediateSize)],
    [`${arch}.attention.head_count`, typed('U32', cfg.numHeads)],
    [`${arch}.attention.head_count_kv`, typed('U32', cfg.numKvHeads)],
    [`${arch}.attention.key_length`, typed('U32', cfg.headDim)],
    [`${arch}.attention.value_length`, typed('U32', cfg.headDim)],
    [`${arch}.rope.dimension_count`, typed('U32', cfg.headDim)],
    [`${arch}.rope.freq_base`, typed('F32', cfg.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, typed('F32', cfg.rmsNormEps)],
    [`${arch}.vocab_size`, typed('U32', cfg.vocabSize)],
  ]);
  const s = cfg.ropeScaling;
  let ropeFreqs: Float32Array | null = null;
  if (s?.type === 'linear') {
    md.set(`${arch}.rope.scaling.type`, 'linear');
    md.set(`${arch}.rope.scaling.factor`, typed('F32', s.factor));
  } else if (s?.type === 'yarn') {
    md.set(`${arch}.rope.scaling.type`, 'yarn');
    md.set(`${arch}.rope.scaling.factor`, typed('F32', s.factor));
    md.set(`${arch}.rope.scaling.original_context_length`, typed('U32', s.originalMaxPositionEmbeddings));
  } else if (s?.type === 'llama3') {
    // llama.cpp's LlamaModel.generate_extra_tensors: each frequency's divisor
    const scaled = ropeParameters(cfg).inv;
    const plain = ropeParameters(parseConfig({ ...cfg.raw, rope_scaling: null, rope_parameters: undefined })).inv;
    ropeFreqs = Float32Array.from(plain, (p, i) => p / scaled[i]!);
  } else if (s) {
    fail(`${file}: rope_scaling ${s.type} has no GGUF form llama.cpp reads; it cannot be exported`);
  }
  return { md, ropeFreqs };
}

/** A pre-tokenizer's meaning as a string: keys sorted, offsets-only settings (trim_offsets) left out. */
function preSignature(p: unknown): string {
  const norm = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(norm) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'trim_offsets').sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, norm(x)])) : v;
  return JSON.stringify(norm(p));
}

interface TokenizerJson {
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: Record<string, unknown> | null;
  pre_tokenizer?: Record<string, unknown> | null;
  model: { type: string; vocab: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
}

/** The `tokenizer.ggml.*` metadata for a model folder's tokenizer.json and tokenizer_config.json. */
export function tokenizerMetadata(dir: string, cfg: ModelConfig): Map<string, GgufValue | GgufTyped> {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) fail(`${file}: not found; a GGUF needs the model's tokenizer`);
  const tj = JSON.parse(readFileSync(file, 'utf8')) as TokenizerJson;
  const tcFile = join(dir, 'tokenizer_config.json');
  const tc = existsSync(tcFile) ? (JSON.parse(readFileSync(tcFile, 'utf8')) as Record<string, unknown>) : {};
  if (tj.model.type !== 'BPE') fail(`${file}: a ${tj.model.type} tokenizer has no GGUF form Plum writes (BPE only)`);
  const n = [...Object.values(tj.model.vocab), ...(tj.added_tokens ?? []).map((t) => t.id)].reduce((a, i) => Math.max(a, i + 1), cfg.vocabSize);
  const tokens = new Array<string>(n).fill('');
  const types = new Array<number>(n).fill(1);
  for (const [t, i] of Object.entries(tj.model.vocab)) tokens[i] = t;
  for (const t of tj.added_tokens ?? []) [tokens[t.id], types[t.id]] = [t.content, t.special === false ? 4 : 3];
  // ids no token names (a padded embedding): llama.cpp's converter writes [PADn], unused
  tokens.forEach((t, i) => {
    if (t === '') [tokens[i], types[i]] = [`[PAD${i}]`, 5];
  });
  const merges = (tj.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const md = new Map<string, GgufValue | GgufTyped>();
  const nameOf = (v: unknown): string | null => (typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : null);
  const idOf = (v: unknown): number | null => {
    const s = nameOf(v);
    const i = s === null ? -1 : tokens.indexOf(s);
    return i >= 0 ? i : null;
  };
  if (tj.model.byte_fallback) {
    // SentencePiece-style: "▁" spaces, <0xXX> byte pieces; llama.cpp merges by piece score, so
    // each piece scores minus the rank of the first merge that makes it (bytes and chars: 0)
    const norm = JSON.stringify(tj.normalizer ?? null);
    if (tj.pre_tokenizer) fail(`${file}: a byte-fallback BPE with a pre-tokenizer is not SentencePiece-like; it has no GGUF form Plum writes`);
    if (!norm.includes('\\u2581') && !norm.includes('\u2581')) fail(`${file}: a byte-fallback BPE whose normalizer does not write spaces as "\u2581" is not SentencePiece-like; it has no GGUF form Plum writes`);
    const scores = new Array<number>(n).fill(0);
    const seen = new Set<number>();
    merges.forEach((m, rank) => {
      const id = tj.model.vocab[m.replace(' ', '')];
      if (id === undefined || seen.has(id)) return;
      scores[id] = -(rank + 1);
      seen.add(id);
    });
    tokens.forEach((t, i) => {
      if (/^<0x[0-9A-F]{2}>$/.test(t) && types[i] === 1) types[i] = 6;
    });
    const unk = tj.model.unk_token ? tokens.indexOf(tj.model.unk_token) : -1;
    if (unk >= 0) types[unk] = 2;
    md.set('tokenizer.ggml.model', 'llama');
    md.set('tokenizer.ggml.pre', 'default');
    md.set('tokenizer.ggml.tokens', typed('STRING', tokens));
    md.set('tokenizer.ggml.scores', typed('F32', scores));
    md.set('tokenizer.ggml.token_type', typed('I32', types));
    md.set('tokenizer.ggml.add_space_prefix', norm.includes('Prepend'));
    if (unk >= 0) md.set('tokenizer.ggml.unknown_token_id', typed('U32', unk));
  } else {
    const pre = preSignature(tj.pre_tokenizer ?? null);
    const name = Object.entries(GGUF_PRE_TOKENIZERS).find(([, p]) => preSignature(p.pre) === pre)?.[0];
    if (!name) fail(`${file}: its pre_tokenizer matches none llama.cpp names (Plum writes ${Object.keys(GGUF_PRE_TOKENIZERS).join(', ')}); it cannot be exported`);
    // Qwen's NFC: llama.cpp has no normalizer step, and tokenizes as Qwen does for NFC text (the vectors)
    if (tj.normalizer && JSON.stringify(tj.normalizer) !== '{"type":"NFC"}') fail(`${file}: a byte-level BPE with a normalizer (${JSON.stringify(tj.normalizer).slice(0, 60)}) has no GGUF form; it cannot be exported`);
    md.set('tokenizer.ggml.model', 'gpt2');
    md.set('tokenizer.ggml.pre', name === 'default' ? 'gpt-2' : name);
    md.set('tokenizer.ggml.tokens', typed('STRING', tokens));
    md.set('tokenizer.ggml.token_type', typed('I32', types));
    md.set('tokenizer.ggml.merges', typed('STRING', merges));
  }
  const bos = idOf(tc.bos_token) ?? cfg.bosTokenId;
  const eos = idOf(tc.eos_token) ?? cfg.eosTokenIds[0] ?? null;
  const pad = idOf(tc.pad_token) ?? cfg.padTokenId;
  if (bos !== null) md.set('tokenizer.ggml.bos_token_id', typed('U32', bos));
  if (eos !== null) md.set('tokenizer.ggml.eos_token_id', typed('U32', eos));
  if (pad !== null) md.set('tokenizer.ggml.padding_token_id', typed('U32', pad));
  const addBos = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : JSON.stringify(tj).includes('"TemplateProcessing"') && bos !== null;
  md.set('tokenizer.ggml.add_bos_token', addBos);
  md.set('tokenizer.ggml.add_eos_token', tc.add_eos_token === true);
  if (typeof tc.chat_template === 'string') md.set('tokenizer.chat_template', tc.chat_template);
  return md;
}

export interface ExportGgufOptions {
  model: string;
  out: string;
  type?: GgufExportType;
}

/** Write a model folder as one GGUF file. */
export function exportGguf(opts: ExportGgufOptions): { arch: string; tensors: number; bytes: number } {
  const cfgFile = join(opts.model, 'config.json');
  const cfg = loadConfig(opts.model);
  const arch = ggufArch(cfg, cfgFile);
  const weights = loadWeights(opts.model, cfg);
  const { md, ropeFreqs } = modelMetadata(cfg, arch, cfgFile);
  md.set('general.name', String(cfg.raw._name_or_path ?? opts.model.split('/').filter(Boolean).pop() ?? 'model'));
  md.set('general.file_type', typed('U32', { f32: 0, f16: 1, q8_0: 7, bf16: 32 }[opts.type ?? 'f16']));
  md.set('general.quantization_version', typed('U32', 2));
  for (const [k, v] of tokenizerMetadata(opts.model, cfg)) md.set(k, v);
  const type = GGUF_EXPORT_TYPES[opts.type ?? 'f16'];
  const tensors = new Map<string, GgufTensorToWrite>();
  if (ropeFreqs) tensors.set('rope_freqs.weight', { shape: [ropeFreqs.length], type: GGML_TYPES.F32, data: ropeFreqs });
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh, hiddenSize: C } = cfg;
  for (const [name, shape] of expectedTensorShapes(cfg)) {
    let data = weights.get(name)!;
    if (arch === 'llama') {
      if (/\.self_attn\.q_proj\.weight$/.test(name)) data = permuteToInterleaved(data, H, Dh, C);
      if (/\.self_attn\.k_proj\.weight$/.test(name)) data = permuteToInterleaved(data, Hkv, Dh, C);
      if (/\.self_attn\.q_proj\.bias$/.test(name)) data = permuteToInterleaved(data, H, Dh, 1);
      if (/\.self_attn\.k_proj\.bias$/.test(name)) data = permuteToInterleaved(data, Hkv, Dh, 1);
    }
    // matrices in the chosen type where their rows fit its blocks; norms and biases as F32 (as llama.cpp)
    const t = shape.length === 2 && (type !== GGML_TYPES.Q8_0 || shape[1]! % 32 === 0) ? type : GGML_TYPES.F32;
    tensors.set(ggufName(name), { shape, type: t, data });
  }
  writeGguf(opts.out, md, tensors);
  let bytes = 0;
  for (const t of tensors.values()) bytes += t.data.length * (t.type === GGML_TYPES.F32 ? 4 : t.type === GGML_TYPES.Q8_0 ? 34 / 32 : 2);
  return { arch, tensors: tensors.size, bytes: Math.round(bytes) };
}
