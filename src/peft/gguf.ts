/**
 * A LoRA adapter as llama.cpp's GGUF LoRA (what its convert_lora_to_gguf.py writes, loaded with
 * `llama-cli --lora`, Ollama's ADAPTER): `general.type` "adapter", `adapter.type` "lora",
 * `adapter.lora.alpha`, and per targeted weight `<gguf name>.lora_a` [r, in] and `.lora_b`
 * [out, r]; llama.cpp scales each by alpha / r (its rank). For `llama` models the q/k rows of
 * lora_b follow the base weights into llama.cpp's interleaved RoPE order.
 *
 * Per-module scales GGUF cannot spell (alpha_pattern, rsLoRA) are folded into lora_b, so every
 * module keeps its own scale under the one alpha. DoRA, lora_bias and modules_to_save have no
 * GGUF LoRA form and are refused.
 */
import { fail } from '../util/errors.js';
import { GGML_TYPES, type GgufTensorToWrite, type GgufTyped, type GgufValue, typed, writeGguf } from '../model/gguf.js';
import { ggufArch, ggufName } from '../model/gguf-export.js';
import { permuteToInterleaved } from '../model/llama2c.js';
import { loraModules, loraParamName } from './lora.js';
import type { BaseModel, PeftAdapter } from './types.js';

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
