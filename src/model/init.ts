/**
 * `plum init`: a randomly initialised model folder that loads like a downloaded one
 * (config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json).
 * The same seed gives byte-identical files.
 */
import { rng } from '../util/random.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { expectedTensorShapes, parseConfig, type ModelConfig } from './config.js';
import { buildByteLevelTokenizer } from './bytelevel-tokenizer.js';
import { presetConfig, presets, type ArchName, type PresetName, type SpecialTokenIds } from './presets.js';
import { loadTokenizer } from './tokenizer.js';
import { saveModelFolder } from './weights.js';

/** Standard deviation of the random weights and biases (transformers' initializer_range). */
const INIT_STD = 0.02;

/** Fill `out` with normal(0, std) samples (Box-Muller, both outputs of each pair used). */
function fillNormal(out: Float32Array, rand: () => number, std: number): void {
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())) * std; // 1 - u is in (0, 1]: log is finite
    const theta = 2 * Math.PI * rand();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
}

/**
 * Random weights for every tensor of `cfg`, drawn in `expectedTensorShapes` order from one
 * stream: RMSNorm gains are 1, matrices and biases normal(0, 0.02) (small random biases, unlike
 * transformers' zeros, so that bias gradients are exercised from the first step).
 */
export function randomWeights(cfg: ModelConfig, seed: number): Map<string, Float32Array> {
  const rand = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensorShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/norm\.weight$/.test(name)) data.fill(1);
    else fillNormal(data, rand, INIT_STD);
    out.set(name, data);
  }
  return out;
}

export interface InitOptions {
  /** Family traits (default: the preset's own family). */
  arch?: ArchName;
  preset: PresetName;
  /** Unsigned 32-bit seed of the weight PRNG. */
  seed: number;
  /** Folder to create; must not already hold a model unless `force`. */
  out: string;
  /** Overwrite the model files of an existing folder. */
  force?: boolean;
  /**
   * A folder whose tokenizer.json and tokenizer_config.json (and chat_template.jinja /
   * special_tokens_map.json when present) are copied instead of writing the default byte-level
   * tokenizer; vocab_size becomes its size rounded up to a multiple of 64.
   */
  tokenizer?: string;
}

export interface InitResult {
  config: ModelConfig;
  numParams: number;
  /** Files written, relative to `out`. */
  files: string[];
}

/** Write a random model folder. Throws PlumError if `out` already holds a model (unless `force`). */
export function initModel(opts: InitOptions): InitResult {
  const { out, preset, seed } = opts;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(`--seed: ${seed} is not an integer from 0 to 4294967295`);
  if (existsSync(out) && !opts.force) {
    const clash = readdirSync(out).find((f) => f === 'config.json' || f.endsWith('.safetensors') || f === 'model.safetensors.index.json');
    if (clash) fail(`${out}: already holds a model (${clash}); choose another --out or pass --force to overwrite`);
  }
  const maxLen = presets[preset].sizes.max_position_embeddings;
  const tok = opts.tokenizer !== undefined ? copiedTokenizer(opts.tokenizer, maxLen) : defaultTokenizer(maxLen);
  const raw = presetConfig(preset, opts.arch, tok.special, tok.size, tok.vocabSize !== undefined ? { vocab_size: tok.vocabSize } : {});
  const config = parseConfig(raw, join(out, 'config.json'));
  const weights = randomWeights(config, seed);
  saveModelFolder(out, raw, weights, { dtype: 'F32', maxShardBytes: Infinity, shapes: expectedTensorShapes(config) });
  writeJsonAtomic(join(out, 'generation_config.json'), {
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds,
    pad_token_id: config.padTokenId,
    do_sample: false,
  });
  for (const [name, data] of tok.files) writeFileAtomic(join(out, name), data);
  let numParams = 0;
  for (const w of weights.values()) numParams += w.length;
  return { config, numParams, files: ['config.json', 'model.safetensors', 'generation_config.json', ...tok.files.keys()] };
}

/** Tokenizer files to write, the special ids for config.json, and the vocabulary they need. */
interface InitTokenizer {
  files: Map<string, string>;
  special: SpecialTokenIds;
  size: number;
  /** config.json's vocab_size when it is not the preset's. */
  vocabSize?: number;
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

function defaultTokenizer(maxLen: number): InitTokenizer {
  const tok = buildByteLevelTokenizer({ modelMaxLength: maxLen });
  return {
    files: new Map([['tokenizer.json', json(tok.tokenizerJson)], ['tokenizer_config.json', json(tok.tokenizerConfig)]]),
    special: { bos: tok.ids.endoftext, eos: [tok.ids.imEnd, tok.ids.endoftext], pad: tok.ids.endoftext },
    size: tok.size,
  };
}

/** The embedding rows a tokenizer needs: its size rounded up to a multiple of 64 (fast matmuls). */
export const paddedVocabSize = (size: number): number => Math.ceil(size / 64) * 64;

/**
 * `--tokenizer DIR`: copy DIR's tokenizer files; special ids come from loadTokenizer (which also
 * reads DIR's generation_config.json / config.json when DIR is a model folder). model_max_length
 * is set to the model's max_position_embeddings, as for the default tokenizer.
 */
function copiedTokenizer(dir: string, maxLen: number): InitTokenizer {
  const tok = loadTokenizer(dir);
  const eos = tok.eosIds;
  if (eos.length === 0) fail(`--tokenizer ${dir}: the tokenizer has no EOS token; set eos_token in ${join(dir, 'tokenizer_config.json')}`);
  const files = new Map<string, string>([['tokenizer.json', readFileSync(join(dir, 'tokenizer.json'), 'utf8')]]);
  const cfgFile = join(dir, 'tokenizer_config.json');
  const cfg = existsSync(cfgFile) ? (JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>) : {};
  files.set('tokenizer_config.json', json({ ...cfg, model_max_length: maxLen }));
  for (const extra of ['special_tokens_map.json', 'chat_template.jinja', 'chat_template.json']) {
    if (existsSync(join(dir, extra))) files.set(extra, readFileSync(join(dir, extra), 'utf8'));
  }
  return { files, special: { bos: tok.bosId, eos, pad: tok.padId ?? eos[0]! }, size: tok.vocabSize, vocabSize: paddedVocabSize(tok.vocabSize) };
}
