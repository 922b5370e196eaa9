/**
 * LoRA: y = W x + (alpha / r) * B A dropout(x) on the targeted linear layers.
 * A [r, in] starts Kaiming-uniform, B [out, r] starts at zero, so the adapter starts as the
 * identity. Saved with PEFT's names: base_model.model.<module>.lora_A.weight / lora_B.weight.
 */
import { linear } from '../graph/nn.js';
import * as op from '../graph/ops.js';
import type { Value } from '../graph/ir.js';
import { expectedTensorShapes, type ModelConfig } from '../model/config.js';
import { fail } from '../util/errors.js';
import { rng, uniform } from '../util/random.js';
import type { BaseModel, LoraConfig, Method, Param, PeftAdapter } from './types.js';

export interface LoraModule {
  name: string; // e.g. model.layers.3.self_attn.q_proj
  inFeatures: number;
  outFeatures: number;
}

const LINEAR_RE = /^model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)$/;

/** Does a module name match the config's targets (PEFT rules: suffix match for a list, full regex match for a string)? */
export function isTarget(config: LoraConfig, name: string): boolean {
  const m = LINEAR_RE.exec(name);
  if (!m) return false;
  if (config.layers && !config.layers.includes(Number(m[1]))) return false;
  const t = config.targetModules;
  if (typeof t === 'string') return new RegExp(`^(?:${t})$`).test(name);
  return t.some((x) => name === x || name.endsWith(`.${x}`));
}

export function loraModules(cfg: ModelConfig, config: LoraConfig): LoraModule[] {
  const mods: LoraModule[] = [];
  for (const [tensor, shape] of expectedTensorShapes(cfg)) {
    if (!tensor.endsWith('.weight') || shape.length !== 2) continue;
    const name = tensor.slice(0, -'.weight'.length);
    if (isTarget(config, name)) mods.push({ name, inFeatures: shape[1]!, outFeatures: shape[0]! });
  }
  if (mods.length === 0) {
    fail(`lora: target modules ${JSON.stringify(config.targetModules)} match no linear layer (names look like model.layers.0.self_attn.q_proj; use q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)`);
  }
  return mods;
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}

export const loraScale = (c: LoraConfig): number => (c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r);
export const loraParamName = (module: string, which: 'A' | 'B'): string => `lora.${module}.${which}`;
const DROPOUT_SEED = 'lora_dropout_seed';

function adapter(config: LoraConfig, base: BaseModel, params: Param[]): PeftAdapter {
  const byName = new Map(params.map((p) => [p.name, p]));
  const scale = loraScale(config);
  const mods = loraModules(base.cfg, config);
  const targets = new Set(mods.map((m) => m.name));
  return {
    // Graph structure depends on rank, targets and dropout, not on the values: adapters alike share graphs.
    id: `lora:r${config.r}:s${scale}:d${config.dropout}:${fnv1a(mods.map((m) => m.name).join(','))}`,
    config,
    virtualTokens: 0,
    prefixLength: 0,
    params,
    baseTrainable: [],
    attach(g, _w, opts) {
      const seed = opts?.training && config.dropout > 0 ? g.input(DROPOUT_SEED, [1], 'int64') : null;
      let salt = 0;
      return {
        linear(name: string, x: Value, y: Value): Value {
          if (!targets.has(name)) return y;
          const a = byName.get(loraParamName(name, 'A'))!;
          const b = byName.get(loraParamName(name, 'B'))!;
          const xd = seed ? op.mul(x, op.dropoutMask(seed, x.shape, config.dropout, ++salt)) : x;
          const h = op.reshape(linear(xd, g.input(a.name, a.shape)), [-1, config.r]); // [N, r]
          // y + scale * h B^T in one Gemm (alpha, c): no Mul or Add over [N, out], forward or back.
          const sum = op.gemm(h, g.input(b.name, b.shape), false, true, scale, op.reshape(y, [-1, y.shape[y.rank - 1]!])); // [N, out]
          return op.reshape(sum, y.shape);
        },
      };
    },
    feeds: () => Object.fromEntries(params.map((p) => [p.name, p.data])),
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
      // PEFT: kaiming_uniform_(a=sqrt(5)) on A => U(-1/sqrt(in), 1/sqrt(in)); B = 0.
      params.push({ name: loraParamName(m.name, 'A'), shape: [config.r, m.inFeatures], data: uniform(config.r * m.inFeatures, r, 1 / Math.sqrt(m.inFeatures)) });
      params.push({ name: loraParamName(m.name, 'B'), shape: [m.outFeatures, config.r], data: new Float32Array(m.outFeatures * config.r) });
    }
    return adapter(config, base, params);
  },
  restore(config, base, tensors) {
    const params: Param[] = [];
    for (const m of loraModules(base.cfg, config)) {
      for (const [which, shape] of [['A', [config.r, m.inFeatures]], ['B', [m.outFeatures, config.r]]] as const) {
        const name = loraParamName(m.name, which);
        const data = tensors.get(name);
        if (!data) fail(`lora: adapter has no lora_${which} for ${m.name}`);
        if (data.length !== shape[0] * shape[1]) fail(`lora: lora_${which} of ${m.name} must have shape [${shape.join(', ')}] (r=${config.r})`);
        params.push({ name, shape: [...shape], data });
      }
    }
    return adapter(config, base, params);
  },
};

/** W + scale * B A for every targeted module: a plain model with the adapter folded in. */
export function mergeLora(base: BaseModel, a: PeftAdapter): Map<string, Float32Array> {
  if (a.config.kind !== 'lora') throw new Error('mergeLora: not a LoRA adapter');
  const config = a.config;
  const scale = loraScale(config);
  const byName = new Map(a.params.map((p) => [p.name, p]));
  const out = new Map(base.weights);
  for (const m of loraModules(base.cfg, config)) {
    const A = byName.get(loraParamName(m.name, 'A'))!.data;
    const B = byName.get(loraParamName(m.name, 'B'))!.data;
    const W = Float32Array.from(base.weights.get(`${m.name}.weight`)!);
    const { inFeatures: I, outFeatures: O } = m;
    for (let o = 0; o < O; o++)
      for (let k = 0; k < config.r; k++) {
        const bk = B[o * config.r + k]! * scale;
        if (bk === 0) continue;
        for (let i = 0; i < I; i++) W[o * I + i]! += bk * A[k * I + i]!;
      }
    out.set(`${m.name}.weight`, W);
  }
  return out;
}
