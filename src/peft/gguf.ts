/**
 * A LoRA adapter as llama.cpp's GGUF LoRA (what its convert_lora_to_gguf.py writes, loaded with
 * `llama-cli --lora`, Ollama's ADAPTER): `general.type` "adapter", `adapter.type` "lora",
 * `adapter.lora.alpha`, and per targeted weight `<gguf name>.lora_a` [r, in] and `.lora_b`
 * [out, r]; llama.cpp scales each by alpha / r (its rank). For `llama` models the q/k rows of
 * lora_b follow the base weights into llama.cpp's interleaved RoPE order.
 *
 * Per-module scales GGUF cannot spell (alpha_pattern, rsLoRA) are folded into lora_b, so every
 * module keeps its own scale under the one alpha. DoRA, lora_bias and modules_to_save have no
 * GGUF LoRA form and are refused. `importLoraGguf` reads such a file back as a PEFT adapter.
 */
import { PlumError, fail } from '../util/errors.js';
import { GGML_TYPES, type GgufTensorToWrite, type GgufTyped, type GgufValue, readGguf, readGgufTensor, typed, writeGguf } from '../model/gguf.js';
import { ggufName, hfName } from '../model/gguf-convert.js';
import { ggufArch } from '../model/gguf-export.js';
import { permuteForRotateHalf, permuteToInterleaved } from '../model/llama2c.js';
import { EMBED_MODULE, HEAD_MODULE, loraModules, loraParamName } from './lora.js';
import { restoreAdapter } from './registry.js';
import type { BaseModel, LoraConfig, PeftAdapter } from './types.js';

export function exportLoraGguf(a: PeftAdapter, base: BaseModel, out: string, type: 'f32' | 'f16' | 'bf16' = 'f32'): { tensors: number; modules: number } {
  const c = a.config;
  if (c.kind !== 'lora') fail(`export gguf --adapter: a ${c.kind} adapter has no llama.cpp GGUF form (LoRA only; merge or use the model folder)`);
  if (c.dora) fail('export gguf --adapter: DoRA has no llama.cpp GGUF LoRA form; merge it (plum train sft --merge) and export the merged model');
  if (c.loraBias) fail('export gguf --adapter: lora_bias has no llama.cpp GGUF LoRA form; merge it and export the merged model');
  if (c.modulesToSave?.length) fail('export gguf --adapter: modules_to_save has no llama.cpp GGUF LoRA form; merge it and export the merged model');
  const cfg = base.cfg;
  const arch = ggufArch(cfg, 'config.json');
  const byName = new Map(a.params.map((p) => [p.name, p.data]));
  const ggmlType = { f32: GGML_TYPES.F32, f16: GGML_TYPES.F16, bf16: GGML_TYPES.BF16 }[type];
  const tensors = new Map<string, GgufTensorToWrite>();
  const mods = loraModules(cfg, c);
  if (mods.some((m) => m.name === EMBED_MODULE)) fail('export gguf --adapter: a LoRA on embed_tokens is not exported to llama.cpp GGUF LoRA yet; merge it (plum train sft --merge) and export the merged model');
  // llama.cpp's tied models have no output.weight of their own to hang a LoRA on
  if (cfg.tieWordEmbeddings && mods.some((m) => m.name === HEAD_MODULE)) fail('export gguf --adapter: a LoRA on the tied lm_head has no llama.cpp GGUF LoRA form (the head is the token embedding there); merge it (plum train sft --merge) and export the merged model');
  for (const m of mods) {
    const A = byName.get(loraParamName(m.name, 'A'))!;
    let B = byName.get(loraParamName(m.name, 'B'))!;
    // llama.cpp applies alpha / r; this module's scale may differ (alpha_pattern, rsLoRA)
    const fold = m.scale / (c.alpha / m.r);
    if (fold !== 1) B = B.map((x) => x * fold);
    if (arch === 'llama' && /\.self_attn\.q_proj$/.test(m.name)) B = permuteToInterleaved(B, cfg.numHeads, cfg.headDim, m.r);
    if (arch === 'llama' && /\.self_attn\.k_proj$/.test(m.name)) B = permuteToInterleaved(B, cfg.numKvHeads, cfg.headDim, m.r);
    const base_ = ggufName(`${m.name}.weight`);
    tensors.set(`${base_}.lora_a`, { shape: [m.r, m.inFeatures], type: ggmlType, data: A });
    tensors.set(`${base_}.lora_b`, { shape: [m.outFeatures, m.r], type: ggmlType, data: B });
  }
  const md = new Map<string, GgufValue | GgufTyped>([
    ['general.architecture', arch],
    ['general.type', 'adapter'],
    ['adapter.type', 'lora'],
    ['adapter.lora.alpha', typed('F32', c.alpha)],
  ]);
  writeGguf(out, md, tensors);
  return { tensors: tensors.size, modules: mods.length };
}

/**
 * A llama.cpp GGUF LoRA as a Plum (PEFT) LoRA adapter on `base`: lora_a / lora_b per module,
 * ranks from their shapes (rank_pattern where they differ), one alpha (llama.cpp's alpha 0 means
 * a scale of 1: alpha = r per module), lora_b's q/k rows back in HF's order for `llama`.
 */
export function importLoraGguf(file: string, base: BaseModel): PeftAdapter {
  const g = readGguf(file);
  const cfg = base.cfg;
  if (g.metadata.get('general.type') !== 'adapter' || g.metadata.get('adapter.type') !== 'lora') {
    fail(`${file}: not a GGUF LoRA adapter (general.type "${String(g.metadata.get('general.type') ?? '')}", adapter.type "${String(g.metadata.get('adapter.type') ?? '')}"; expected "adapter" and "lora")`);
  }
  const arch = ggufArch(cfg, 'config.json');
  const got = String(g.metadata.get('general.architecture'));
  if (got !== arch) fail(`${file}: a LoRA for a ${got} model, but the base model is ${arch}`);
  const alpha = Number(g.metadata.get('adapter.lora.alpha') ?? 0);
  const parts = new Map<string, { A?: Float32Array; B?: Float32Array; r: number; out: number; in: number }>();
  for (const [name, t] of g.tensors) {
    const m = /^(.+)\.lora_([ab])$/.exec(name);
    if (!m) fail(`${file}: tensor ${name} is not a lora_a / lora_b tensor`);
    const hf = hfName(file, m[1]!);
    if (!hf?.endsWith('.weight')) fail(`${file}: tensor ${name} adapts ${m[1]}, which is not a weight LoRA can target`);
    const module = hf.slice(0, -'.weight'.length);
    const e = parts.get(module) ?? { r: 0, out: 0, in: 0 };
    const data = readGgufTensor(g, name);
    if (m[2] === 'a') [e.A, e.r, e.in] = [data, t.shape[0]!, t.shape[1]!];
    else [e.B, e.out] = [data, t.shape[0]!];
    parts.set(module, e);
  }
  if (parts.size === 0) fail(`${file}: the adapter has no lora_a / lora_b tensors`);
  // the most common rank is r; the others go to rank_pattern
  const count = new Map<number, number>();
  for (const e of parts.values()) count.set(e.r, (count.get(e.r) ?? 0) + 1);
  const r = [...count].sort((x, y) => y[1] - x[1] || y[0] - x[0])[0]![0];
  const escape = (s: string): string => s.replace(/\./g, '\\.');
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const tensors = new Map<string, Float32Array>();
  for (const [module, e] of parts) {
    if (!e.A || !e.B) fail(`${file}: ${module} has lora_${e.A ? 'a' : 'b'} but not lora_${e.A ? 'b' : 'a'}`);
    if (e.r !== r) rankPattern[escape(module)] = e.r;
    if (alpha === 0) alphaPattern[escape(module)] = e.r; // llama.cpp: no alpha, scale 1
    let B = e.B;
    if (arch === 'llama' && /\.self_attn\.q_proj$/.test(module)) B = permuteForRotateHalf(B, cfg.numHeads, cfg.headDim, e.r);
    if (arch === 'llama' && /\.self_attn\.k_proj$/.test(module)) B = permuteForRotateHalf(B, cfg.numKvHeads, cfg.headDim, e.r);
    tensors.set(loraParamName(module, 'A'), e.A);
    tensors.set(loraParamName(module, 'B'), B);
  }
  const config: LoraConfig = {
    kind: 'lora',
    r,
    alpha: alpha || r,
    dropout: 0,
    targetModules: [...parts.keys()],
    rslora: false,
    ...(Object.keys(rankPattern).length ? { rankPattern } : {}),
    ...(alpha === 0 ? { alphaPattern } : {}),
  };
  const known = new Set(loraModules(base.cfg, config).map((m) => m.name));
  const other = [...parts.keys()].find((m) => !known.has(m) || m === EMBED_MODULE);
  if (other) fail(`${file}: a LoRA on ${other}, which convert gguf-lora does not read (the layers' projections and lm_head it does)`);
  try {
    return restoreAdapter(config, base, tensors);
  } catch (e) {
    if (e instanceof PlumError) fail(`${file}: ${e.message}`);
    throw e;
  }
}
