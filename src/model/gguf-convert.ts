/**
 * GGUF (llama.cpp) -> Hugging Face model folder: config.json from the GGUF metadata, the
 * weights under HF names (dequantized to float32, then written as --dtype), tokenizer.json and
 * tokenizer_config.json rebuilt from `tokenizer.ggml.*`, generation_config.json.
 *
 * Architectures: llama (Llama 2/3, Mistral, SmolLM2 ...), qwen2, qwen3. llama.cpp's
 * convert_hf_to_gguf.py stores the q/k rows of `llama` models in interleaved RoPE order (its
 * `permute`); they are put back in HF's rotate-half order here (as for llama2.c). qwen2/qwen3
 * use NeoX RoPE in llama.cpp, which is HF's order already. Llama 3.1's RoPE scaling is stored
 * as a `rope_freqs` tensor; it is matched to the `llama3` rope_scaling it was made from.
 *
 * Tokenizers: `llama` (SentencePiece: pieces + scores, byte fallback) and `gpt2` (byte-level
 * BPE: tokens + merges, with the pre-tokenizer `tokenizer.ggml.pre` names).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../util/errors.js';
import type { Progress } from '../util/progress.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { type GgufFile, type GgufValue, checkReadable, readGguf, readGgufTensor } from './gguf.js';
import { permuteForRotateHalf } from './llama2c.js';
import { bosTemplate, mergesFromScores, sentencePieceDecoder, sentencePieceNormalizer } from './llama2c-tokenizer.js';
import { parseConfig } from './config.js';
import { ropeParameters } from './rope.js';
import { type WeightDType, saveModelFolder } from './weights.js';

/** Files a converted folder holds, in writing order (config.json last: a folder with it is complete). */
export const GGUF_OUTPUT_FILES = ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'config.json'] as const;

const ARCHS: Record<string, { architectures: string[]; model_type: string; interleavedRope: boolean }> = {
  llama: { architectures: ['LlamaForCausalLM'], model_type: 'llama', interleavedRope: true },
  qwen2: { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', interleavedRope: false },
  qwen3: { architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', interleavedRope: false },
};

/** Metadata accessors that name the file and key in their errors. */
function meta(g: GgufFile) {
  const get = (k: string): GgufValue | undefined => g.metadata.get(k);
  const num = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') fail(`${g.file}: metadata ${k} is ${JSON.stringify(String(v))}, expected a number`);
    return v;
  };
  const need = (k: string): number => num(k) ?? fail(`${g.file}: metadata ${k} is missing; the file does not describe its model fully`);
  const str = (k: string): string | undefined => {
    const v = get(k);
    if (v !== undefined && typeof v !== 'string') fail(`${g.file}: metadata ${k} is not a string`);
    return v;
  };
  const arr = (k: string): GgufValue[] | undefined => {
    const v = get(k);
    if (v !== undefined && !Array.isArray(v)) fail(`${g.file}: metadata ${k} is not an array`);
    return v;
  };
  const bool = (k: string): boolean | undefined => {
    const v = get(k);
    return v === undefined ? undefined : Boolean(v);
  };
  return { num, need, str, arr, bool };
}

/** float32 metadata (eps, theta) as the decimal it was written from: 9.99999974738e-06 -> 1e-05. */
const f32Decimal = (x: number): number => Number(x.toPrecision(7));

/** GGUF tensor names and their HF names, both ways: whole tensors, and the parts of layer N. */
const GGUF_TOP: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };
const GGUF_PARTS: Record<string, string> = {
  attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm', ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};
const HF_TOP = new Map(Object.entries(GGUF_TOP).map(([g, h]) => [h, g]));
const HF_PARTS = new Map(Object.entries(GGUF_PARTS).map(([g, h]) => [h, g]));

/** HF name of a GGUF tensor (null for rope_freqs, which becomes config). */
export function hfName(file: string, name: string): string | null {
  if (name in GGUF_TOP) return GGUF_TOP[name]!;
  if (name === 'rope_freqs.weight') return null;
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  if (!m || !(m[2]! in GGUF_PARTS)) return fail(`${file}: tensor ${name} has no place in a Llama-family model (supported: token_embd, output_norm, output, rope_freqs and blk.N.{${Object.keys(GGUF_PARTS).join(',')}})`);
  return `model.layers.${m[1]}.${GGUF_PARTS[m[2]!]}.${m[3]}`;
}

/** llama.cpp's name of an HF tensor (the inverse of hfName). */
export function ggufName(hf: string): string {
  const top = HF_TOP.get(hf);
  if (top) return top;
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf);
  const part = m && HF_PARTS.get(m[2]!);
  if (!part) throw new Error(`gguf: no GGUF name for ${hf}`);
  return `blk.${m![1]}.${part}.${m![3]}`;
}

/** HF's config.json for the GGUF's model. */
export function ggufHfConfig(g: GgufFile): Record<string, unknown> {
  const { num, need, str, arr } = meta(g);
  const a = str('general.architecture') ?? fail(`${g.file}: metadata general.architecture is missing`);
  const family = ARCHS[a] ?? fail(`${g.file}: architecture "${a}" is not a Llama-family model Plum runs (supported: ${Object.keys(ARCHS).join(', ')})`);
  const experts = num(`${a}.expert_count`) ?? 0;
  if (experts > 0) fail(`${g.file}: ${a}.expert_count is ${experts}: a mixture-of-experts model (e.g. Mixtral), which is not part of the Llama family Plum runs`);
  const C = need(`${a}.embedding_length`);
  const H = need(`${a}.attention.head_count`);
  const Dh = num(`${a}.attention.key_length`) ?? C / H;
  const rotary = num(`${a}.rope.dimension_count`) ?? Dh;
  if (rotary !== Dh) fail(`${g.file}: ${a}.rope.dimension_count ${rotary} rotates part of each ${Dh}-wide head; partial RoPE is not part of the Llama family`);
  const tokens = arr('tokenizer.ggml.tokens');
  const embed = g.tensors.get('token_embd.weight') ?? fail(`${g.file}: no token_embd.weight tensor (a vocabulary-only GGUF has no weights to convert)`);
  const V = embed.shape[0]!;
  const cfg: Record<string, unknown> = {
    architectures: family.architectures,
    model_type: family.model_type,
    vocab_size: V,
    hidden_size: C,
    intermediate_size: need(`${a}.feed_forward_length`),
    num_hidden_layers: need(`${a}.block_count`),
    num_attention_heads: H,
    num_key_value_heads: num(`${a}.attention.head_count_kv`) ?? H,
    head_dim: Dh,
    hidden_act: 'silu',
    max_position_embeddings: need(`${a}.context_length`),
    rms_norm_eps: f32Decimal(need(`${a}.attention.layer_norm_rms_epsilon`)),
    rope_theta: f32Decimal(num(`${a}.rope.freq_base`) ?? 10000),
    rope_scaling: ropeScaling(g, a, Dh),
    attention_bias: a === 'llama' && g.tensors.has('blk.0.attn_q.bias'),
    tie_word_embeddings: !g.tensors.has('output.weight'),
    bos_token_id: num('tokenizer.ggml.bos_token_id') ?? null,
    eos_token_id: num('tokenizer.ggml.eos_token_id') ?? null,
    torch_dtype: 'float32',
  };
  if (a === 'qwen2' || a === 'qwen3') cfg.use_sliding_window = false;
  if (tokens && tokens.length > V) fail(`${g.file}: the vocabulary has ${tokens.length} tokens but token_embd.weight only ${V} rows`);
  return cfg;
}

function ropeScaling(g: GgufFile, a: string, Dh: number): Record<string, unknown> | null {
  const { num, str } = meta(g);
  const type = str(`${a}.rope.scaling.type`);
  const factor = num(`${a}.rope.scaling.factor`);
  if (g.tensors.has('rope_freqs.weight')) return llama3Scaling(g, a, Dh);
  if (!type || type === 'none') return null;
  if (type === 'linear') return { rope_type: 'linear', factor: factor ?? fail(`${g.file}: ${a}.rope.scaling.factor is missing`) };
  if (type === 'yarn') {
    return {
      rope_type: 'yarn',
      factor: factor ?? fail(`${g.file}: ${a}.rope.scaling.factor is missing`),
      original_max_position_embeddings: num(`${a}.rope.scaling.original_context_length`) ?? fail(`${g.file}: ${a}.rope.scaling.original_context_length is missing`),
    };
  }
  return fail(`${g.file}: ${a}.rope.scaling.type "${type}" is not supported (linear, yarn, or Llama 3's rope_freqs)`);
}

/**
 * llama.cpp stores Llama 3.1's RoPE scaling as per-frequency divisors (rope_freqs); find the
 * HF `llama3` parameters that give exactly those (the published models use these few).
 */
function llama3Scaling(g: GgufFile, a: string, Dh: number): Record<string, unknown> {
  const want = readGgufTensor(g, 'rope_freqs.weight');
  if (want.length !== Dh / 2) fail(`${g.file}: rope_freqs.weight has ${want.length} values, expected ${Dh / 2} (half the head width)`);
  const theta = meta(g).num(`${a}.rope.freq_base`) ?? 10000;
  const base = { architectures: ['LlamaForCausalLM'], vocab_size: 8, hidden_size: Dh, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, head_dim: Dh, rope_theta: theta, max_position_embeddings: 131072, rms_norm_eps: 1e-5 };
  const plain = ropeParameters(parseConfig(base)).inv;
  for (const factor of [8, 16, 32, 4, 2])
    for (const original of [8192, 4096, 2048, 16384])
      for (const [low, high] of [[1, 4], [1, 2], [2, 4]] as const) {
        const scaling = { rope_type: 'llama3', factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: original };
        const inv = ropeParameters(parseConfig({ ...base, rope_scaling: scaling })).inv;
        if (want.every((w, i) => Math.abs(plain[i]! / inv[i]! - w) <= 1e-3 * Math.max(1, w))) return scaling;
      }
  return fail(`${g.file}: rope_freqs.weight does not match Llama 3's rope_scaling for any of the published settings; this RoPE scaling is not supported`);
}

type TokenType = 1 | 2 | 3 | 4 | 5 | 6; // normal, unknown, control, user-defined, unused, byte

/** Pre-tokenizers of byte-level BPE vocabularies, by llama.cpp's `tokenizer.ggml.pre` name (regexes as in the models' tokenizer.json). */
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
export const GGUF_PRE_TOKENIZERS: Record<string, { pre: Record<string, unknown>; ignoreMerges: boolean }> = {
  default: { pre: byteLevel(true), ignoreMerges: false },
  'gpt-2': { pre: byteLevel(true), ignoreMerges: false },
  'llama-bpe': { pre: { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT), byteLevel(false)] }, ignoreMerges: true },
  llama3: { pre: { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT), byteLevel(false)] }, ignoreMerges: true },
  'llama-v3': { pre: { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT), byteLevel(false)] }, ignoreMerges: true },
  qwen2: { pre: { type: 'Sequence', pretokenizers: [split(QWEN2_SPLIT), byteLevel(false)] }, ignoreMerges: false },
  smollm: { pre: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] }, ignoreMerges: false },
};

export interface GgufTokenizer {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
  /** Ids that end generation: EOS and, where given, end-of-turn. */
  eosIds: number[];
  bosId: number | null;
}

/** tokenizer.json + tokenizer_config.json rebuilt from `tokenizer.ggml.*`. */
export function ggufTokenizer(g: GgufFile): GgufTokenizer {
  const { num, str, arr, bool } = meta(g);
  const model = str('tokenizer.ggml.model') ?? fail(`${g.file}: metadata tokenizer.ggml.model is missing; the file has no tokenizer`);
  const tokens = (arr('tokenizer.ggml.tokens') ?? fail(`${g.file}: metadata tokenizer.ggml.tokens is missing`)) as string[];
  const types = (arr('tokenizer.ggml.token_type') ?? tokens.map(() => 1)) as TokenType[];
  const id = (k: string): number | null => num(`tokenizer.ggml.${k}_token_id`) ?? null;
  const [bos, eos, unk, pad, eot] = [id('bos'), id('eos'), id('unknown'), id('padding'), id('eot')];
  const addBos = bool('tokenizer.ggml.add_bos_token') ?? model === 'llama';
  const addEos = bool('tokenizer.ggml.add_eos_token') ?? false;
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (vocab.has(t)) fail(`${g.file}: tokens ${vocab.get(t)} and ${i} are both ${JSON.stringify(t)}; a tokenizer.json vocabulary needs unique tokens`);
    vocab.set(t, i);
  });
  // control and unknown tokens are special; user-defined ones are matched whole but are text
  const added = tokens.flatMap((t, i) =>
    types[i] === 2 || types[i] === 3 || types[i] === 4 ? [{ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[i] !== 4 }] : [],
  );
  const bosPost = (): Record<string, unknown> | null => (!addBos || bos === null ? null : bosTemplate(tokens[bos]!, bos));
  let json: Record<string, unknown>;
  if (model === 'llama') {
    const scores = Float32Array.from((arr('tokenizer.ggml.scores') ?? fail(`${g.file}: metadata tokenizer.ggml.scores is missing (a SentencePiece vocabulary needs its scores)`)) as number[]);
    const prefix = bool('tokenizer.ggml.add_space_prefix') ?? true;
    json = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      // SentencePiece: spaces are "▁", with one in front of the text (add_space_prefix)
      normalizer: sentencePieceNormalizer(prefix),
      pre_tokenizer: null,
      post_processor: bosPost(),
      decoder: sentencePieceDecoder(prefix),
      model: {
        type: 'BPE', dropout: null, unk_token: unk === null ? null : tokens[unk], continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false,
        vocab: Object.fromEntries(vocab),
        merges: mergesFromScores(vocab, scores, (i) => types[i] === 1),
      },
    };
  } else if (model === 'gpt2') {
    const preName = str('tokenizer.ggml.pre') ?? 'default';
    const pre = GGUF_PRE_TOKENIZERS[preName] ?? fail(`${g.file}: tokenizer.ggml.pre "${preName}" is a pre-tokenizer Plum does not know (supported: ${Object.keys(GGUF_PRE_TOKENIZERS).join(', ')})`);
    const merges = (arr('tokenizer.ggml.merges') ?? fail(`${g.file}: metadata tokenizer.ggml.merges is missing (a BPE vocabulary needs its merges)`)) as string[];
    json = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: pre.pre,
      post_processor: bosPost() ?? { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
        fuse_unk: false, byte_fallback: false, ignore_merges: pre.ignoreMerges,
        vocab: Object.fromEntries(vocab),
        merges,
      },
    };
  } else {
    return fail(`${g.file}: tokenizer.ggml.model "${model}" is not supported (llama = SentencePiece, gpt2 = byte-level BPE)`);
  }
  const name = (i: number | null): string | null => (i === null ? null : (tokens[i] ?? fail(`${g.file}: token id ${i} is outside the ${tokens.length}-token vocabulary`)));
  const template = str('tokenizer.chat_template');
  const config: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    bos_token: name(bos),
    eos_token: name(eos),
    unk_token: name(unk),
    pad_token: name(pad),
    clean_up_tokenization_spaces: false,
    tokenizer_class: model === 'llama' ? 'LlamaTokenizerFast' : 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(added.map(({ id: i, ...rest }) => [String(i), rest])),
    ...(template ? { chat_template: template } : {}),
  };
  const eosIds = [...new Set([eos, eot].filter((x): x is number => x !== null))];
  return { json, config, eosIds, bosId: bos };
}

/** The weights under HF names, q/k rows back in rotate-half order for `llama`. */
export function ggufWeights(g: GgufFile, cfg: Record<string, unknown>, progress?: Progress): Map<string, Float32Array> {
  const interleaved = ARCHS[String(g.metadata.get('general.architecture'))]!.interleavedRope;
  const [H, Hkv, Dh, C] = [cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size] as number[];
  const out = new Map<string, Float32Array>();
  for (const name of g.tensors.keys()) {
    const hf = hfName(g.file, name);
    if (!hf) continue;
    let data = readGgufTensor(g, name);
    if (interleaved && /\.self_attn\.q_proj\.weight$/.test(hf)) data = permuteForRotateHalf(data, H!, Dh!, C!);
    if (interleaved && /\.self_attn\.k_proj\.weight$/.test(hf)) data = permuteForRotateHalf(data, Hkv!, Dh!, C!);
    if (interleaved && /\.self_attn\.[qk]_proj\.bias$/.test(hf)) data = permuteForRotateHalf(data, hf.includes('q_proj') ? H! : Hkv!, Dh!, 1);
    out.set(hf, data);
    progress?.tick(1, { MB: (data.length * 4) / 1e6 });
  }
  progress?.done();
  return out;
}

export interface ConvertGgufOptions {
  model: string;
  out: string;
  dtype?: WeightDType;
  /** A progress reporter over the tensors read (given their number). */
  progress?: (tensors: number) => Progress;
}

export function convertGguf(opts: ConvertGgufOptions): { arch: string; config: Record<string, unknown>; tensors: number; parameters: number } {
  const g = readGguf(opts.model);
  const config = ggufHfConfig(g);
  const tok = ggufTokenizer(g);
  checkReadable(g);
  const weights = ggufWeights(g, config, opts.progress?.(g.tensors.size));
  mkdirSync(opts.out, { recursive: true });
  if (tok.eosIds.length) config.eos_token_id = tok.eosIds.length === 1 ? tok.eosIds[0] : tok.eosIds;
  writeJsonAtomic(join(opts.out, 'tokenizer.json'), tok.json);
  writeJsonAtomic(join(opts.out, 'tokenizer_config.json'), tok.config);
  writeJsonAtomic(join(opts.out, 'generation_config.json'), { bos_token_id: tok.bosId, eos_token_id: tok.eosIds.length === 1 ? tok.eosIds[0] : tok.eosIds });
  // saveModelFolder checks every tensor against config.json's shapes and writes config.json last
  saveModelFolder(opts.out, config, weights, { dtype: opts.dtype ?? 'F32' });
  let parameters = 0;
  for (const w of weights.values()) parameters += w.length;
  return { arch: String(g.metadata.get('general.architecture')), config, tensors: weights.size, parameters };
}
