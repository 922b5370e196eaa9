/**
 * Model weights in a Hugging Face folder: `model.safetensors`, or shards listed by
 * `model.safetensors.index.json`. Loading checks the tensors against the shapes config.json
 * implies, so a mismatched checkpoint fails here with a message instead of deep in the graph.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { fail } from '../util/errors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { expectedTensorShapes, parseConfig, type ModelConfig } from './config.js';
import { dtypeBytes, numElements, readSafetensors, readSafetensorsHeader, writeSafetensors, type NamedTensor, type TensorEntry } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** transformers' default `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

const indexSchema = z.object({
  metadata: z.record(z.string(), z.unknown()).optional(),
  weight_map: z.record(z.string(), z.string()),
});

interface Located {
  file: string;
  entry: TensorEntry;
}

/** Every tensor in the folder with the file holding it; `source` is the file to name in messages. */
function locateTensors(dir: string): { source: string; tensors: Map<string, Located> } {
  const single = join(dir, SINGLE_FILE);
  const tensors = new Map<string, Located>();
  if (existsSync(single)) {
    for (const [name, entry] of readSafetensorsHeader(single).entries) tensors.set(name, { file: single, entry });
    return { source: single, tensors };
  }
  const indexFile = join(dir, INDEX_FILE);
  if (!existsSync(indexFile)) fail(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}; this folder holds no safetensors weights`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexFile, 'utf8'));
  } catch (e) {
    fail(`${indexFile}: invalid JSON (${(e as Error).message})`);
  }
  const parsed = indexSchema.safeParse(json);
  if (!parsed.success) fail(`${indexFile}: field "${parsed.error.issues[0]!.path.join('.')}": ${parsed.error.issues[0]!.message}`);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(parsed.data.weight_map)) {
    if (shard !== basename(shard) || shard === '..') fail(`${indexFile}: weight_map sends tensor ${name} to "${shard}", which is not a file name in this folder`);
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  for (const [shard, names] of byShard) {
    const file = join(dir, shard);
    if (!existsSync(file)) fail(`${indexFile}: weight_map lists shard ${shard} (for tensor ${names[0]}) but ${file} does not exist; the download is incomplete`);
    const header = readSafetensorsHeader(file);
    for (const name of names) {
      if (!header.entries.has(name)) fail(`${file}: tensor ${name} is listed in ${INDEX_FILE} but is not in this shard; the index and the shards disagree`);
    }
    for (const [name, entry] of header.entries) {
      const prev = tensors.get(name);
      if (prev) fail(`${file}: tensor ${name} also appears in ${prev.file}; a tensor must be stored once`);
      tensors.set(name, { file, entry });
    }
  }
  return { source: indexFile, tensors };
}

/** Which config.json fields decide a tensor's shape (for shape-mismatch messages). */
function shapeFields(name: string): string {
  if (/\.(q_norm|k_norm)\./.test(name)) return 'head_dim';
  if (/\.(q_proj|o_proj)\./.test(name)) return 'hidden_size/num_attention_heads/head_dim';
  if (/\.(k_proj|v_proj)\./.test(name)) return 'hidden_size/num_key_value_heads/head_dim';
  if (/\.mlp\./.test(name)) return 'hidden_size/intermediate_size';
  if (/embed_tokens|lm_head/.test(name)) return 'vocab_size/hidden_size';
  return 'hidden_size';
}

/** Why a tensor config.json expects could be absent (for missing-tensor messages). */
function missingHint(cfg: ModelConfig, name: string, present: Map<string, Located>): string {
  const layer = /^model\.layers\.(\d+)\./.exec(name)?.[1];
  if (layer !== undefined && ![...present.keys()].some((n) => n.startsWith(`model.layers.${layer}.`))) {
    return `config.json has num_hidden_layers=${cfg.numLayers} but the weights have no layer ${layer}`;
  }
  if (/_proj\.bias$/.test(name)) return `config.json implies attention biases (${cfg.family} family or attention_bias=true); check architectures and attention_bias`;
  if (/\.(q_norm|k_norm)\./.test(name)) return `config.json implies per-head q/k norms (${cfg.family} family); check architectures`;
  return 'the checkpoint is incomplete or does not belong to this config.json';
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const fmt = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Ignored extras: RoPE caches some exporters save, and a tied head's duplicate. */
function isIgnorableExtra(cfg: ModelConfig, name: string): boolean {
  return name.endsWith('rotary_emb.inv_freq') || (name === 'lm_head.weight' && cfg.tieWordEmbeddings);
}

/**
 * Load and check every tensor `expectedTensorShapes(cfg)` names, from `dir/model.safetensors`
 * or the sharded layout. Returns float32 data in the order of `expectedTensorShapes`.
 */
export function loadWeights(dir: string, cfg: ModelConfig): Map<string, Float32Array> {
  const { source, tensors } = locateTensors(dir);
  const expected = expectedTensorShapes(cfg);
  for (const [name, shape] of expected) {
    const loc = tensors.get(name);
    if (!loc) {
      if (name === 'lm_head.weight') {
        fail(`${source}: tensor lm_head.weight is missing but config.json has tie_word_embeddings=false; set "tie_word_embeddings": true if the output layer shares model.embed_tokens.weight`);
      }
      fail(`${source}: tensor ${name} (shape ${fmt(shape)}) is missing; ${missingHint(cfg, name, tensors)}`);
    }
    if (!sameShape(loc.entry.shape, shape)) {
      fail(`${loc.file}: tensor ${name} has shape ${fmt(loc.entry.shape)} but config.json implies ${fmt(shape)} (${shapeFields(name)} disagree with the weights)`);
    }
    if (!['F32', 'F16', 'BF16'].includes(loc.entry.dtype)) fail(`${loc.file}: tensor ${name} has dtype ${loc.entry.dtype}; model weights must be F32, F16 or BF16`);
  }
  const extras = [...tensors.keys()].filter((n) => !expected.has(n) && !isIgnorableExtra(cfg, n));
  if (extras.length > 0) {
    const more = extras.length > 3 ? ` and ${extras.length - 3} more` : '';
    fail(`${tensors.get(extras[0]!)!.file}: unexpected tensors ${extras.slice(0, 3).join(', ')}${more} that config.json does not describe; check architectures, attention_bias and num_hidden_layers in config.json`);
  }
  const byFile = new Map<string, Set<string>>();
  for (const name of expected.keys()) {
    const file = tensors.get(name)!.file;
    byFile.set(file, (byFile.get(file) ?? new Set()).add(name));
  }
  const loaded = new Map<string, Float32Array>();
  for (const [file, names] of byFile) {
    for (const [name, t] of readSafetensors(file, { names }).tensors) loaded.set(name, t.data);
  }
  return new Map([...expected.keys()].map((n) => [n, loaded.get(n)!]));
}

export type WeightDType = 'F32' | 'F16' | 'BF16';
const torchDtype: Record<WeightDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export interface SaveModelOptions {
  /** On-disk dtype of every tensor (default F32). config.json's torch_dtype is set to match. */
  dtype?: WeightDType;
  /** Shard when the tensors exceed this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Name -> shape of every tensor to write, in file order (default: expectedTensorShapes of rawConfig). */
  shapes?: Map<string, number[]>;
}

const shardName = (i: number, n: number): string => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
const isWeightFile = (f: string): boolean => f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f);

/** Group tensor names, in order, into shards of at most `maxBytes` (a tensor larger than that gets its own shard). */
function planShards(order: [string, number][], maxBytes: number): string[][] {
  const shards: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const [name, size] of order) {
    if (cur.length > 0 && bytes + size > maxBytes) {
      shards.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(name);
    bytes += size;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

/**
 * Write a model folder: the weights as `model.safetensors` (or HF-style shards plus
 * `model.safetensors.index.json` when over `maxShardBytes`), then `config.json`. Each file is
 * written atomically; weight files of an earlier save that this one does not use are removed.
 */
export function saveModelFolder(dir: string, rawConfig: Record<string, unknown>, weights: Map<string, Float32Array>, opts: SaveModelOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  const maxBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const configFile = join(dir, 'config.json');
  const shapes = opts.shapes ?? expectedTensorShapes(parseConfig(rawConfig, configFile));
  for (const name of weights.keys()) if (!shapes.has(name)) fail(`${dir}: weight ${name} is not a tensor of this model's config; it cannot be saved`);
  const order: [string, number][] = [];
  for (const [name, shape] of shapes) {
    const data = weights.get(name);
    if (!data) fail(`${dir}: weight ${name} is missing; cannot save an incomplete model`);
    if (data.length !== numElements(shape)) fail(`${dir}: weight ${name} has ${data.length} values but shape ${fmt(shape)} needs ${numElements(shape)}`);
    order.push([name, data.length * dtypeBytes[dtype]]);
  }
  const shards = planShards(order, maxBytes);
  const tensorsOf = (names: string[]): Map<string, NamedTensor> => new Map(names.map((n) => [n, { dtype, shape: shapes.get(n)!, data: weights.get(n)! }]));
  const written = new Set<string>();
  if (shards.length === 1) {
    writeSafetensors(join(dir, SINGLE_FILE), tensorsOf(shards[0]!));
    written.add(SINGLE_FILE);
  } else {
    const weightMap: Record<string, string> = {};
    shards.forEach((names, i) => {
      const file = shardName(i, shards.length);
      writeSafetensors(join(dir, file), tensorsOf(names));
      written.add(file);
      for (const n of names) weightMap[n] = file;
    });
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((n) => [n, weightMap[n]!]));
    const totalSize = order.reduce((a, [, s]) => a + s, 0);
    writeJsonAtomic(join(dir, INDEX_FILE), { metadata: { total_size: totalSize }, weight_map: sortedMap });
    written.add(INDEX_FILE);
  }
  writeJsonAtomic(configFile, { ...rawConfig, torch_dtype: torchDtype[dtype] });
  for (const f of readdirSync(dir)) if (isWeightFile(f) && !written.has(f)) rmSync(join(dir, f), { force: true });
}
