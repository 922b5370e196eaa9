/**
 * LoRA: y = W x + (alpha / r) * B A dropout(x) on the targeted linear layers (r and alpha per
 * module where PEFT's rank_pattern / alpha_pattern say so).
 * DoRA (PEFT use_dora): y = g * (W x + s B A x) with g = m / ||W + s B A|| per output row; the
 * magnitude m [out] is trained and starts at ||W||, the norm is treated as a constant in the
 * backward pass (as PEFT and the DoRA paper do), so DoRA also starts as the identity.
 * A [r, in] starts Kaiming-uniform, B [out, r] starts at zero, so the adapter starts as the
 * identity. Saved with PEFT's names: base_model.model.<module>.lora_A.weight / lora_B.weight.
 * Targets are the layers' projections and, when named (PEFT never puts them in "all-linear"), the
 * output layer `lm_head` (in a tied model its LoRA changes the head's product, not the embedding)
 * and the embedding `embed_tokens`, as PEFT's LoRA Embedding: y = E[ids] + s A^T[ids] B^T with
 * A [r, V] starting at zero and B [C, r] normal (so again the identity), saved as
 * lora_embedding_A / lora_embedding_B, without dropout.
 */
import { linear } from '../graph/nn.js';
import { HEAD_MODULE, headWeight, headWeightName } from '../model/decoder.js';
import * as op from '../graph/ops.js';
import type { Value } from '../graph/ir.js';
import { expectedTensorShapes, type ModelConfig } from '../model/config.js';
import { fail } from '../util/errors.js';
import { randn, rng, uniform } from '../util/random.js';
import type { BaseModel, LoraConfig, Method, Param, PeftAdapter } from './types.js';

export interface LoraModule {
  name: string; // e.g. model.layers.3.self_attn.q_proj
  inFeatures: number;
  outFeatures: number;
  /** this module's rank and scale (rank_pattern / alpha_pattern, else the config's r and alpha) */
  r: number;
  scale: number;
}

const LINEAR_RE = /^model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)$/;

/** PEFT's module matching: a list matches by name or `.name` suffix, a string is a full-match regex. */
function matches(t: string | string[], name: string): boolean {
  if (typeof t === 'string') return new RegExp(`^(?:${t})$`).test(name);
  return t.some((x) => name === x || name.endsWith(`.${x}`));
}

/** PEFT's shorthand for every linear layer but the output head. */
export const isAllLinear = (t: string | string[]): boolean => typeof t === 'string' && t.toLowerCase() === 'all-linear';

/** The output layer's and the embedding's module names (LoRA targets only when named). */
export { HEAD_MODULE };
export const EMBED_MODULE = 'model.embed_tokens';

/** Does a module name match the config's targets (PEFT rules; "all-linear" = every projection) and not its exclusions? */
export function isTarget(config: LoraConfig, name: string): boolean {
  const m = LINEAR_RE.exec(name);
  if (!m && name !== HEAD_MODULE && name !== EMBED_MODULE) return false;
  // PEFT's layers_to_transform keeps only modules with a layer index
  if (config.layers && (!m || !config.layers.includes(Number(m[1])))) return false;
  if (config.excludeModules && matches(config.excludeModules, name)) return false;
  const t = config.targetModules;
  if (isAllLinear(t)) return m !== null; // PEFT's all-linear leaves the output layer (and embeddings) out
  return matches(t, name);
}

/** The base tensor a targeted module multiplies by: the embedding for a tied model's lm_head. */
export const moduleWeightName = (cfg: ModelConfig, module: string): string => (module === HEAD_MODULE ? headWeightName(cfg) : `${module}.weight`);

/** PEFT's get_pattern_key: the first pattern that matches the end of the module path (after a dot). */
function patternValue<T>(pattern: Record<string, T> | undefined, name: string): T | undefined {
  for (const [key, v] of Object.entries(pattern ?? {})) if (new RegExp(`^(?:.*\\.)?(?:${key})$`).test(name)) return v;
  return undefined;
}

export const loraScale = (alpha: number, r: number, rslora: boolean): number => (rslora ? alpha / Math.sqrt(r) : alpha / r);

export function loraModules(cfg: ModelConfig, config: LoraConfig): LoraModule[] {
  const mods: LoraModule[] = [];
  const shapes = new Map(expectedTensorShapes(cfg));
  if (cfg.tieWordEmbeddings) shapes.set(HEAD, [cfg.vocabSize, cfg.hiddenSize]); // the tied head is a module too
  for (const [tensor, shape] of shapes) {
    if (!tensor.endsWith('.weight') || shape.length !== 2) continue;
    const name = tensor.slice(0, -'.weight'.length);
    if (!isTarget(config, name)) continue;
    const r = patternValue(config.rankPattern, name) ?? config.r;
    const alpha = patternValue(config.alphaPattern, name) ?? config.alpha;
    // an embedding [V, C] maps V one-hot inputs to C outputs
    const [inFeatures, outFeatures] = name === EMBED_MODULE ? [shape[0]!, shape[1]!] : [shape[1]!, shape[0]!];
    mods.push({ name, inFeatures, outFeatures, r, scale: loraScale(alpha, r, config.rslora) });
  }
  if (mods.some((m) => m.name === EMBED_MODULE)) {
    if (config.dora) fail('lora: DoRA on embed_tokens is not supported; leave embed_tokens out of the targets or train it plainly (no --use-dora)');
    if (config.loraBias) fail('lora: lora_bias on embed_tokens is not supported (PEFT has none for embeddings); leave embed_tokens out of the targets');
  }
  if (mods.length === 0) {
    fail(`lora: target modules ${JSON.stringify(config.targetModules)} match no linear layer (names look like model.layers.0.self_attn.q_proj; use q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, all-linear, or lm_head for the output layer)`);
  }
  return mods;
}

/**
 * A whole tensor an adapter trains in place of the base one (PEFT modules_to_save): graph/param
 * name `save.<tensor>`, the base tensors it replaces (two when a tied model's embedding and head
 * share it), and the base tensor it starts as.
 */
export interface SavedTensor {
  param: string;
  shape: number[];
  replaces: string[];
  init: string;
}

const EMBED = 'model.embed_tokens.weight';
const HEAD = 'lm_head.weight';
export const savedParamName = (tensor: string): string => `save.${tensor}`;

/** The tensors of the config's modules_to_save, in the model's tensor order (checked against the LoRA targets). */
export function savedTensors(cfg: ModelConfig, config: LoraConfig): SavedTensor[] {
  const wanted = config.modulesToSave ?? [];
  if (wanted.length === 0) return [];
  const shapes = new Map(expectedTensorShapes(cfg));
  if (cfg.tieWordEmbeddings) shapes.set(HEAD, [cfg.vocabSize, cfg.hiddenSize]); // a tied head can get its own copy
  const moduleOf = (tensor: string): string => tensor.slice(0, tensor.lastIndexOf('.'));
  const picked = new Set<string>();
  for (const x of wanted) {
    const hits = [...shapes.keys()].filter((t) => matches([x], moduleOf(t)));
    if (hits.length === 0) fail(`lora: modules_to_save "${x}" matches no module of this model (e.g. lm_head, embed_tokens, model.norm, or a layer module such as model.layers.0.mlp.down_proj)`);
    for (const t of hits) {
      if (isTarget(config, moduleOf(t))) fail(`lora: ${moduleOf(t)} is both a LoRA target and in modules_to_save; take it out of one of them`);
      picked.add(t);
    }
  }
  const tie = cfg.tieWordEmbeddings && config.ensureWeightTying === true && (picked.has(EMBED) || picked.has(HEAD));
  const out: SavedTensor[] = [];
  for (const [t, shape] of shapes) {
    if (!picked.has(t) && !(tie && (t === EMBED || t === HEAD))) continue;
    if (tie && t === HEAD) continue; // shares the embedding's copy
    const replaces = tie && t === EMBED ? [EMBED, HEAD] : [t];
    out.push({ param: savedParamName(t), shape: [...shape], replaces, init: t === HEAD && cfg.tieWordEmbeddings ? EMBED : t });
  }
  return out;
}

const doraGainName = (module: string): string => `lora.${module}.G`;

/**
 * DoRA's gains m / ||W + s B A||_row for every module, without forming W + s B A:
 * ||W_o + s B_o A||^2 = ||W_o||^2 + 2 s B_o . (W A^T)_o + s^2 B_o (A A^T) B_o^T (float64).
 */
function doraGains(mods: LoraModule[], byName: Map<string, Param>, base: BaseModel): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const m of mods) {
    const { inFeatures: I, outFeatures: O, r, scale: s } = m;
    const W = base.weights.get(moduleWeightName(base.cfg, m.name))!;
    const A = byName.get(loraParamName(m.name, 'A'))!.data;
    const B = byName.get(loraParamName(m.name, 'B'))!.data;
    const M = byName.get(loraParamName(m.name, 'M'))!.data;
    const AAt = new Float64Array(r * r);
    for (let k = 0; k < r; k++)
      for (let l = 0; l <= k; l++) {
        let d = 0;
        for (let i = 0; i < I; i++) d += A[k * I + i]! * A[l * I + i]!;
        AAt[k * r + l] = AAt[l * r + k] = d;
      }
    const gain = new Float32Array(O);
    for (let o = 0; o < O; o++) {
      let ww = 0;
      let cross = 0;
      for (let k = 0; k < r; k++) {
        let wa = 0;
        for (let i = 0; i < I; i++) wa += W[o * I + i]! * A[k * I + i]!;
        cross += B[o * r + k]! * wa;
      }
      for (let i = 0; i < I; i++) ww += W[o * I + i]! ** 2;
      let quad = 0;
      for (let k = 0; k < r; k++) for (let l = 0; l < r; l++) quad += B[o * r + k]! * AAt[k * r + l]! * B[o * r + l]!;
      gain[o] = M[o]! / Math.sqrt(ww + 2 * s * cross + s * s * quad);
    }
    out[doraGainName(m.name)] = gain;
  }
  return out;
}

/** The L2 norm of each row of W [rows, cols] (float64 sums). */
function rowNorms(W: Float32Array, rows: number, cols: number): Float32Array {
  const n = new Float32Array(rows);
  for (let o = 0; o < rows; o++) {
    let s = 0;
    for (let i = 0; i < cols; i++) s += W[o * cols + i]! ** 2;
    n[o] = Math.sqrt(s);
  }
  return n;
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}

/** Graph/param names: A, B, lora_B's bias (lora_bias) and DoRA's magnitude M of a module. */
export type LoraPart = 'A' | 'B' | 'bias' | 'M';
export const loraParamName = (module: string, which: LoraPart): string => `lora.${module}.${which}`;

/** The tensors a module's adapter holds, with their shapes: one list for create, restore and loading checks. */
export function loraParts(config: LoraConfig, m: LoraModule): Array<[LoraPart, number[]]> {
  const parts: Array<[LoraPart, number[]]> = [['A', [m.r, m.inFeatures]], ['B', [m.outFeatures, m.r]]];
  if (config.loraBias) parts.push(['bias', [m.outFeatures]]);
  if (config.dora) parts.push(['M', [m.outFeatures]]);
  return parts;
}
const DROPOUT_SEED = 'lora_dropout_seed';

function adapter(config: LoraConfig, base: BaseModel, params: Param[]): PeftAdapter {
  if (config.dora && config.loraBias) fail('lora: lora_bias together with DoRA is not supported; use one of them');
  const byName = new Map(params.map((p) => [p.name, p]));
  const mods = loraModules(base.cfg, config);
  const targets = new Map(mods.map((m) => [m.name, m]));
  const saved = savedTensors(base.cfg, config);
  let gains: Record<string, Float32Array> | null = null; // DoRA's inference inputs, until `changed`
  return {
    // Graph structure depends on ranks, scales, targets, parts and dropout, not on the values: adapters alike share graphs.
    id: `lora:d${config.dropout}:${config.doraNormGradient ? 'exact:' : ''}${fnv1a([...mods.map((m) => `${m.name}:${m.r}:${m.scale}:${loraParts(config, m).map(([p]) => p).join('')}`), ...saved.map((t) => `${t.param}>${t.replaces.join('+')}`)].join(','))}`,
    config,
    virtualTokens: 0,
    prefixLength: 0,
    params,
    baseTrainable: [],
    attach(g, w, opts) {
      const seed = opts?.training && config.dropout > 0 ? g.input(DROPOUT_SEED, [1], 'int64') : null;
      let salt = 0;
      const made = new Map<string, Value>();
      const input = (n: string): Value => {
        let v = made.get(n);
        if (!v) {
          const p = byName.get(n)!;
          made.set(n, (v = g.input(p.name, p.shape)));
        }
        return v;
      };
      // whole-tensor copies: made now, so that training graphs differentiate them even where the
      // head is built after the decoder
      for (const t of saved) {
        const v = input(t.param);
        for (const r of t.replaces) w.replace(r, v);
      }
      const emb = targets.get(EMBED_MODULE);
      return {
        // PEFT's Embedding LoRA: y + s (A^T)[ids] B^T, no dropout
        ...(emb
          ? {
              embedding(ids: Value, y: Value): Value {
                const h = op.reshape(op.gather(op.transpose(input(loraParamName(EMBED_MODULE, 'A')), [1, 0]), ids), [-1, emb.r]); // [B*T, r]
                const sum = op.gemm(h, input(loraParamName(EMBED_MODULE, 'B')), false, true, emb.scale, op.reshape(y, [-1, emb.outFeatures])); // [B*T, C]
                return op.reshape(sum, y.shape);
              },
            }
          : {}),
        // DoRA rescales x W^T itself, so the decoder hands it over before bias and residual
        ...(config.dora ? { rescales: (name: string) => targets.has(name) } : {}),
        linear(name: string, x: Value, y: Value): Value {
          const mod = targets.get(name);
          if (!mod) return y;
          const xd = seed ? op.mul(x, op.dropoutMask(seed, x.shape, config.dropout, ++salt)) : x;
          const A = input(loraParamName(name, 'A'));
          const B = input(loraParamName(name, 'B'));
          const h = op.reshape(linear(xd, A), [-1, mod.r]); // [N, r]
          const y2 = op.reshape(y, [-1, mod.outFeatures]); // [N, out]
          if (!config.dora) {
            // y + scale * h B^T in one Gemm (alpha, c): no Mul or Add over [N, out], forward or back.
            const sum = op.gemm(h, B, false, true, mod.scale, y2); // [N, out]
            return op.reshape(config.loraBias ? op.add(sum, op.mul(input(loraParamName(name, 'bias')), mod.scale)) : sum, y.shape);
          }
          // DoRA: gain g = m / ||W + s B A|| per output row [out], the norm a constant for autodiff.
          // Training graphs compute it (the factors change every step); inference graphs take it as
          // an input computed once per parameter version (inferenceFeeds): no [out, in] work per token.
          const W = name === HEAD_MODULE ? headWeight(w) : w.get(`${name}.weight`); // [out, in]
          let gain: Value;
          if (opts?.training) {
            const rowNorm = op.sqrt(op.reduceSumSquare(op.gemm(B, A, false, false, mod.scale, W), [1])); // [out]
            const norm = config.doraNormGradient ? rowNorm : op.stopGradient(rowNorm);
            gain = op.div(input(loraParamName(name, 'M')), norm); // [out]
          } else gain = g.input(doraGainName(name), [mod.outFeatures]);
          if (xd === x) return op.reshape(op.mul(op.gemm(h, B, false, true, mod.scale, y2), gain), y.shape); // g * (x W^T + s h B^T)
          // with dropout PEFT keeps the base output and rescales the product of the dropped input:
          // y + (g - 1) * (xd W^T) + g * s * h B^T
          const delta = op.add(op.mul(linear(xd, W), op.sub(gain, 1)), op.mul(op.gemm(h, B, false, true, mod.scale), gain));
          return op.reshape(op.add(y2, op.reshape(delta, [-1, mod.outFeatures])), y.shape);
        },
      };
    },
    feeds: () => Object.fromEntries(params.map((p) => [p.name, p.data])),
    ...(config.dora
      ? {
          inferenceFeeds: () => (gains ??= doraGains(mods, byName, base)),
          changed: () => {
            gains = null;
          },
        }
      : {}),
    trainingFeeds: (step: number): Record<string, BigInt64Array> =>
      config.dropout > 0 ? { [DROPOUT_SEED]: BigInt64Array.from([BigInt(step * 7919 + 17)]) } : {},
  };
}

export const lora: Method<LoraConfig> = {
  kind: 'lora',
  async create(config, base, seed) {
    const r = rng(seed);
    const params: Param[] = [];
    for (const m of loraModules(base.cfg, config)) {
      for (const [which, shape] of loraParts(config, m)) {
        const n = shape.reduce((p, d) => p * d, 1);
        // PEFT: kaiming_uniform_(a=sqrt(5)) on A => U(-1/sqrt(in), 1/sqrt(in)); B and its bias 0;
        // DoRA's magnitude ||W + s B A|| = ||W|| (B = 0)
        const data =
          m.name === EMBED_MODULE ? (which === 'A' ? new Float32Array(n) : randn(n, r)) // PEFT: A = 0, B ~ N(0, 1)
          : which === 'A' ? uniform(n, r, 1 / Math.sqrt(m.inFeatures))
          : which === 'M' ? rowNorms(base.weights.get(moduleWeightName(base.cfg, m.name))!, m.outFeatures, m.inFeatures)
          : new Float32Array(n);
        params.push({ name: loraParamName(m.name, which), shape, data });
      }
    }
    for (const t of savedTensors(base.cfg, config)) params.push({ name: t.param, shape: t.shape, data: Float32Array.from(base.weights.get(t.init)!) });
    return adapter(config, base, params);
  },
  restore(config, base, tensors) {
    const params: Param[] = [];
    for (const m of loraModules(base.cfg, config)) {
      for (const [which, shape] of loraParts(config, m)) {
        const name = loraParamName(m.name, which);
        const data = tensors.get(name);
        const label = which === 'M' ? 'lora_magnitude_vector (DoRA)' : which === 'bias' ? 'lora_B.bias (lora_bias)' : `lora_${which}`;
        if (!data) fail(`lora: adapter has no ${label} for ${m.name}`);
        if (data.length !== shape.reduce((p, d) => p * d, 1)) fail(`lora: ${label} of ${m.name} must have shape [${shape.join(', ')}]${which === 'A' || which === 'B' ? ` (r=${m.r}${m.r !== config.r ? ' from rank_pattern' : ''})` : ''}`);
        params.push({ name, shape: [...shape], data });
      }
    }
    for (const t of savedTensors(base.cfg, config)) {
      const data = tensors.get(t.param);
      if (!data) fail(`lora: adapter has no tensor for ${t.replaces.join(' / ')} (modules_to_save)`);
      if (data.length !== t.shape.reduce((p, d) => p * d, 1)) fail(`lora: the modules_to_save tensor for ${t.replaces[0]} must have shape [${t.shape.join(', ')}]`);
      params.push({ name: t.param, shape: [...t.shape], data });
    }
    return adapter(config, base, params);
  },
};

/**
 * W + scale * B A for every targeted module, and the adapter's modules_to_save copies in place of
 * theirs: a plain model with the adapter folded in. When a tied model's embedding and head come
 * apart (one of them saved without ensureWeightTying), both are in the result: save it with
 * `mergedConfig`, which unties them.
 */
export function mergeLora(base: BaseModel, a: PeftAdapter): Map<string, Float32Array> {
  if (a.config.kind !== 'lora') throw new Error('mergeLora: not a LoRA adapter');
  const byName = new Map(a.params.map((p) => [p.name, p]));
  const out = new Map(base.weights);
  const saved = savedTensors(base.cfg, a.config);
  if (base.cfg.tieWordEmbeddings && saved.some((t) => t.replaces.length === 1 && (t.replaces[0] === EMBED || t.replaces[0] === HEAD))) out.set(HEAD, Float32Array.from(base.weights.get(EMBED)!));
  for (const t of saved) for (const r of t.replaces) if (r !== HEAD || !base.cfg.tieWordEmbeddings || t.replaces.length === 1) out.set(r, Float32Array.from(byName.get(t.param)!.data));
  for (const m of loraModules(base.cfg, a.config)) {
    const A = byName.get(loraParamName(m.name, 'A'))!.data;
    const B = byName.get(loraParamName(m.name, 'B'))!.data;
    if (m.name === EMBED_MODULE) {
      // E[v] += s sum_k A[k, v] B[:, k]; a tied model's head keeps the embedding it had
      const E0 = out.get(EMBED)!;
      if (base.cfg.tieWordEmbeddings && !out.has(HEAD)) out.set(HEAD, Float32Array.from(E0));
      const { inFeatures: V, outFeatures: C, r, scale } = m;
      out.set(EMBED, addScaledProduct(Float32Array.from(E0), transpose(A, r, V), transpose(B, C, r), r, scale)); // E + s A^T B^T
      continue;
    }
    // a tied model's head starts from the embedding (or the head a modules_to_save copy gave it)
    // and is written as a head of its own: mergedConfig unties the model
    const W = Float32Array.from(out.get(`${m.name}.weight`) ?? out.get(moduleWeightName(base.cfg, m.name))!);
    const { inFeatures: I, outFeatures: O, r, scale } = m;
    addScaledProduct(W, B, A, r, scale); // W + s B A
    if (a.config.dora) {
      // W' = m / ||W + s B A|| * (W + s B A), row by row
      const M = byName.get(loraParamName(m.name, 'M'))!.data;
      const norms = rowNorms(W, O, I);
      for (let o = 0; o < O; o++) {
        const g = M[o]! / norms[o]!;
        for (let i = 0; i < I; i++) W[o * I + i]! *= g;
      }
    }
    out.set(`${m.name}.weight`, W);
    if (a.config.loraBias) {
      // the base layer's bias takes s * b (PEFT's merge); a layer without one cannot hold it
      const b = byName.get(loraParamName(m.name, 'bias'))!.data;
      const baseBias = base.weights.get(`${m.name}.bias`);
      if (!baseBias) {
        if (b.some((v) => v !== 0)) fail(`lora: lora_bias cannot be merged into ${m.name}, which has no bias in this architecture; use the adapter unmerged`);
        continue;
      }
      out.set(`${m.name}.bias`, baseBias.map((v, i) => v + scale * b[i]!));
    }
  }
  return out;
}

/** W [rows, cols] += scale * P Q with P [rows, r] and Q [r, cols], in place; returns W. */
function addScaledProduct(W: Float32Array, P: Float32Array, Q: Float32Array, r: number, scale: number): Float32Array {
  const rows = P.length / r;
  const cols = Q.length / r;
  for (let o = 0; o < rows; o++)
    for (let k = 0; k < r; k++) {
      const pk = P[o * r + k]! * scale;
      if (pk === 0) continue;
      for (let i = 0; i < cols; i++) W[o * cols + i]! += pk * Q[k * cols + i]!;
    }
  return W;
}

/** X [rows, cols] as [cols, rows]. */
function transpose(X: Float32Array, rows: number, cols: number): Float32Array {
  const T = new Float32Array(X.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) T[j * rows + i] = X[i * cols + j]!;
  return T;
}

/** config.json of a merged model: untied when the merge gave a tied model its own head. */
export function mergedConfig(rawConfig: Record<string, unknown>, cfg: ModelConfig, merged: Map<string, Float32Array>): Record<string, unknown> {
  return cfg.tieWordEmbeddings && merged.has(HEAD) ? { ...rawConfig, tie_word_embeddings: false } : rawConfig;
}
