/**
 * One table-driven suite for every PEFT method: gradients vs finite differences, identity at
 * init (LoRA), merge == unmerged, save/load round trip in PEFT's format, text initialisation.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OrtBackend } from '../runtime/ort.js';
import type { HostArray } from '../runtime/backend.js';
import { CausalLM } from '../model/lm.js';
import { randomWeights, tinyConfig } from '../model/testing.js';
import type { PlumTokenizer } from '../model/tokenizer.js';
import { type NamedTensor, readSafetensors, writeSafetensors } from '../model/safetensors.js';
import { parseConfig } from '../model/config.js';
import { checkLossGrads } from '../graph/testing.js';
import { buildSftStep } from '../train/graph.js';
import { gradNorm } from '../train/optimizer.js';
import { gradSumSqOf, gradsOf, graphFeeds } from '../train/run.js';
import { prepareBatch } from '../train/feeds.js';
import { makeBatches } from '../data/batches.js';
import { createAdapter } from './registry.js';
import { loadAdapter, saveAdapter } from './io.js';
import { mergeLora, mergedConfig } from './lora.js';
import type { BaseModel, MethodConfig, PeftAdapter } from './types.js';
import type { Recompute } from '../model/decoder.js';

const backend = new OrtBackend({ threads: 1 });
const cfg = tinyConfig({ architectures: ['Qwen2ForCausalLM'] }); // exercises q/k/v biases too
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

function makeBase(): { base: BaseModel; lm: CausalLM } {
  const weights = randomWeights(cfg, 21);
  const lm = new CausalLM(cfg, weights, backend);
  const tokenizer = { encode: (t: string) => [...t].map((c) => c.charCodeAt(0) % cfg.vocabSize), vocabSize: cfg.vocabSize } as unknown as PlumTokenizer;
  const base: BaseModel = {
    cfg,
    weights,
    tokenizer,
    async textKV(ids) {
      const { cache } = await lm.prefill([ids]);
      const { numKvHeads: Hkv, headDim: Dh } = cfg;
      const take = (t: Float32Array): Float32Array => {
        const out = new Float32Array(Hkv * ids.length * Dh);
        for (let h = 0; h < Hkv; h++) out.set(t.subarray(h * cache.capacity * Dh, (h * cache.capacity + ids.length) * Dh), h * ids.length * Dh);
        return out;
      };
      return cache.k.map((k, l) => ({ k: take(k), v: take(cache.v[l]!) }));
    },
  };
  return { base, lm };
}

const methods: Array<[string, MethodConfig]> = [
  ['soft-prompt', { kind: 'soft-prompt', virtualTokens: 3, init: 'vocab' }],
  ['prefix', { kind: 'prefix', virtualTokens: 3, init: 'random' }],
  ['lora', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'], rslora: false }],
  ['lora (layer 1 only, regex targets)', { kind: 'lora', r: 2, alpha: 2, dropout: 0, targetModules: '.*\\.(o_proj|up_proj)', layers: [1], rslora: false }],
  ['lora (lora_bias)', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'], rslora: false, loraBias: true }],
  // DoRA with the exact gradient, so that finite differences check every VJP (PEFT's default treats
  // the norm as a constant: tested separately below)
  ['dora', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'], rslora: false, dora: true, doraNormGradient: true }],
  ['dora (dropout, rslora)', { kind: 'lora', r: 2, alpha: 4, dropout: 0.25, targetModules: ['q_proj', 'o_proj', 'gate_proj'], rslora: true, dora: true, doraNormGradient: true }],
  ['lora (lm_head and q_proj)', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'lm_head'], rslora: false }],
  ['lora (embed_tokens, lm_head, q_proj)', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['embed_tokens', 'q_proj', 'lm_head'], rslora: false }],
  ['dora (lm_head)', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'lm_head'], rslora: false, dora: true, doraNormGradient: true }],
  ['lora (modules_to_save: lm_head, model.norm)', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], rslora: false, modulesToSave: ['lm_head', 'model.norm'] }],
  ['last-layers', { kind: 'last-layers', layers: 1, includeHead: true }],
  ['full', { kind: 'full' }],
];

const rows = [
  { ids: [1, 5, 9, 33, 7, 12], labels: [-100, -100, -100, 33, 7, 12] },
  { ids: [1, 20, 3, 4], labels: [-100, -100, 3, 4] },
];

/** Make a freshly created adapter non-trivial (LoRA B starts at zero). */
function perturb(a: PeftAdapter): void {
  let k = 0;
  for (const p of a.params) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.05 * Math.sin(++k);
  a.changed?.(); // DoRA's inference gains are derived from the parameters
}

for (const [name, config] of methods) {
  test(`${name}: gradients of the trainable tensors vs finite differences`, async () => {
    const { base } = makeBase();
    const a = await createAdapter(config, base, 5);
    perturb(a);
    const batch = prepareBatch(cfg, a, makeBatches(rows, { batchSize: 2, seed: 0, epoch: 0, padId: 0 })[0]!);
    const outs = buildSftStep(cfg, a, batch.shape);
    const loss = outs.loss_sum!;
    const g = loss.graph;
    const trainable = new Set([...a.params.map((p) => p.name), ...a.baseTrainable]);
    const wrt = g.inputs.filter((v) => trainable.has(v.name!));
    assert.equal(wrt.length, trainable.size);
    const feeds: Record<string, HostArray> = { ...batch.feeds, ...a.feeds(), ...a.trainingFeeds?.(3) };
    for (const v of g.inputs) if (!(v.name! in feeds)) feeds[v.name!] = base.weights.get(v.name!)!;
    const res = await checkLossGrads(backend, loss, wrt, feeds, { seed: 7, directions: 3 });
    for (const r of res) assert.ok(r.relErr < 2e-3, `analytic ${r.analytic} vs numeric ${r.numeric}`);
  });
}

for (const [name, config] of methods) {
  test(`${name}: recomputing attention or whole layers in the backward pass gives the gradients of keeping everything`, async () => {
    const { base } = makeBase();
    const a = await createAdapter(config, base, 5);
    perturb(a);
    const batch = prepareBatch(cfg, a, makeBatches(rows, { batchSize: 2, seed: 0, epoch: 0, padId: 0 })[0]!);
    const gradsWith = async (recompute: Recompute): Promise<Map<string, Float32Array>> => {
      const run = await backend.compile(buildSftStep(cfg, a, batch.shape, true, { recompute }));
      return gradsOf(await run.run(graphFeeds(run, a, base.weights, batch.feeds, 3)));
    };
    const kept = await gradsWith('none');
    for (const recompute of ['attention', 'layers'] as const) {
      const got = await gradsWith(recompute);
      assert.deepEqual([...got.keys()], [...kept.keys()]);
      for (const [k, want] of kept) {
        const scale = Math.max(...want.map(Math.abs));
        assert.ok(scale > 0 && maxDiff(got.get(k)!, want) <= 1e-5 * scale, `${recompute}, ${k}: max difference ${maxDiff(got.get(k)!, want)} (largest gradient ${scale})`);
      }
    }
  });
}

for (const [name, config] of methods) {
  test(`${name}: the graph's grad_sumsq is each gradient output's sum of squares (the clipping norm)`, async () => {
    const { base } = makeBase();
    const a = await createAdapter(config, base, 5);
    perturb(a);
    const batch = prepareBatch(cfg, a, makeBatches(rows, { batchSize: 2, seed: 0, epoch: 0, padId: 0 })[0]!);
    const run = await backend.compile(buildSftStep(cfg, a, batch.shape));
    const out = await run.run(graphFeeds(run, a, base.weights, batch.feeds, 0));
    const grads = [...gradsOf(out).values()];
    const sq = out.grad_sumsq as Float32Array;
    assert.equal(sq.length, a.params.length + a.baseTrainable.length);
    grads.forEach((gr, i) => {
      const want = gr.reduce((s, x) => s + x * x, 0);
      assert.ok(want > 0 && Math.abs(sq[i]! - want) <= 1e-5 * want, `tensor ${i}: ${sq[i]} vs ${want}`);
    });
    const norm = gradNorm(gradsOf(out), 1, false);
    assert.ok(Math.abs(Math.sqrt(gradSumSqOf(out)!) - norm) <= 1e-5 * norm);
  });
}

for (const [name, config] of methods.filter(([, c]) => c.kind !== 'last-layers' && c.kind !== 'full')) {
  test(`${name}: save -> load gives identical logits and PEFT's tensor names`, async () => {
    const { base, lm } = makeBase();
    const a = await createAdapter(config, base, 6);
    perturb(a);
    const dir = mkdtempSync(join(tmpdir(), 'plum-adapter-'));
    saveAdapter(dir, a, base, '/models/tiny');
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.task_type, 'CAUSAL_LM');
    assert.equal(json.base_model_name_or_path, '/models/tiny');
    const tensors = readSafetensors(join(dir, 'adapter_model.safetensors')).tensors;
    if (config.kind === 'lora') {
      assert.equal(json.peft_type, 'LORA');
      const layer = config.layers ? 1 : 0;
      const mod = config.layers ? 'self_attn.o_proj' : 'self_attn.q_proj';
      const A = tensors.get(`base_model.model.model.layers.${layer}.${mod}.lora_A.weight`)!;
      const B = tensors.get(`base_model.model.model.layers.${layer}.${mod}.lora_B.weight`)!;
      assert.deepEqual(A.shape, [2, cfg.hiddenSize]);
      assert.deepEqual(B.shape, [config.layers ? cfg.hiddenSize : cfg.numHeads * cfg.headDim, 2]);
    } else {
      assert.equal(json.peft_type, config.kind === 'prefix' ? 'PREFIX_TUNING' : 'PROMPT_TUNING');
      assert.equal(json.num_virtual_tokens, 3);
      const width = config.kind === 'prefix' ? cfg.numLayers * 2 * cfg.numKvHeads * cfg.headDim : cfg.hiddenSize;
      assert.deepEqual(tensors.get('prompt_embeddings')!.shape, [3, width]);
    }
    const back = loadAdapter(dir, base);
    const seq = [1, 7, 3, 22, 9];
    const l1 = await lm.logits(seq, a);
    const l2 = await lm.logits(seq, back);
    const l0 = await lm.logits(seq);
    for (let t = 0; t < seq.length; t++) assert.equal(maxDiff(l1[t]!, l2[t]!), 0);
    assert.ok(maxDiff(l1[4]!, l0[4]!) > 1e-4, 'the adapter must change the logits');
  });
}

for (const name of ['lora', 'dora', 'lora (lm_head and q_proj)', 'lora (embed_tokens, lm_head, q_proj)', 'dora (lm_head)']) {
  test(`${name} starts as the identity, and merged weights equal the unmerged adapter`, async () => {
    const { base, lm } = makeBase();
    const config = methods.find(([n]) => n === name)![1];
    const a = await createAdapter(config, base, 8);
    const seq = [1, 4, 9, 16, 25];
    const l0 = await lm.logits(seq);
    const la = await lm.logits(seq, a);
    // LoRA adds exactly zero; DoRA's gain m / ||W|| is 1 up to the float32 norm
    for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(l0[t]!, la[t]!) <= (name.startsWith('lora') ? 0 : 1e-5), `${maxDiff(l0[t]!, la[t]!)}`);
    perturb(a);
    const merged = new CausalLM(cfg, mergeLora(base, a), backend);
    const lm1 = await lm.logits(seq, a);
    const lm2 = await merged.logits(seq);
    for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(lm1[t]!, lm2[t]!) < 1e-5);
    assert.ok(maxDiff(lm1[4]!, l0[4]!) > 1e-3, 'the perturbed adapter changes the logits');
  });
}

test('DoRA merge follows the formula: merged W = m / norm_row(W + s B A) * (W + s B A), a layer checked by hand', async () => {
  const { base } = makeBase();
  const a = await createAdapter(methods.find(([n]) => n === 'dora')![1], base, 9);
  perturb(a);
  const mod = 'model.layers.1.mlp.down_proj';
  const get = (w: string) => a.params.find((p) => p.name === `lora.${mod}.${w}`)!.data;
  const [A, B, M] = [get('A'), get('B'), get('M')];
  const W = base.weights.get(`${mod}.weight`)!;
  const [O, I, r, s] = [cfg.hiddenSize, cfg.intermediateSize, 2, 4 / 2];
  const got = mergeLora(base, a).get(`${mod}.weight`)!;
  let err = 0;
  for (let o = 0; o < O; o++) {
    const row = Array.from({ length: I }, (_, i) => W[o * I + i]! + s * Array.from({ length: r }, (_, k) => B[o * r + k]! * A[k * I + i]!).reduce((p, v) => p + v, 0));
    const n = Math.sqrt(row.reduce((p, v) => p + v * v, 0));
    row.forEach((v, i) => (err = Math.max(err, Math.abs(got[o * I + i]! - (M[o]! / n) * v))));
  }
  assert.ok(err < 1e-5, `${err}`);
});

test('text initialisation: a soft prompt or a KV prefix from a text behaves exactly like that text', async () => {
  const { base, lm } = makeBase();
  const text = 'abcd';
  const textIds = base.tokenizer!.encode(text);
  const seq = [7, 3, 22];
  const want = (await lm.logits([...textIds, ...seq])).slice(textIds.length);
  for (const config of [
    { kind: 'soft-prompt', virtualTokens: 4, init: 'text', initText: text },
    { kind: 'prefix', virtualTokens: 4, init: 'text', initText: text },
  ] as MethodConfig[]) {
    const a = await createAdapter(config, base, 1);
    const got = await lm.logits(seq, a);
    for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(got[t]!, want[t]!) < 1e-5, `${config.kind} position ${t}`);
  }
});

test('generation with an adapter: the KV cache agrees with full forward passes', async () => {
  const { base, lm } = makeBase();
  for (const config of [methods[0]![1], methods[1]![1]]) {
    const a = await createAdapter(config, base, 2);
    const { cache, logits } = await lm.prefill([[1, 5, 9]], a, 4);
    assert.ok(maxDiff(logits[0]!, (await lm.logits([1, 5, 9], a))[2]!) < 1e-5);
    const step = await lm.decode(cache, [11]);
    assert.ok(maxDiff(step[0]!, (await lm.logits([1, 5, 9, 11], a))[3]!) < 1e-5, config.kind);
  }
});

test('an adapter folder as PEFT writes it (all its config fields, BF16 tensors, prompt-tuning init text) loads', async () => {
  const { base, lm } = makeBase();
  const { writeSafetensors } = await import('../model/safetensors.js');
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'plum-peft-lora-'));
  // adapter_config.json as PEFT 0.17 writes it for LoraConfig(r=4, target_modules=["v_proj","q_proj"]).
  const peftConfig = {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M', bias: 'none', corda_config: null,
    eva_config: null, exclude_modules: null, fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layer_replication: null,
    layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: 8, lora_bias: false, lora_dropout: 0.05,
    megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null, peft_type: 'LORA', qalora_group_size: 16, r: 4,
    rank_pattern: {}, revision: null, target_modules: ['v_proj', 'q_proj'], target_parameters: null, task_type: 'CAUSAL_LM',
    trainable_token_indices: null, use_dora: false, use_qalora: false, use_rslora: false,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peftConfig, null, 2));
  const tensors = new Map<string, { dtype: 'BF16'; shape: number[]; data: Float32Array }>();
  let k = 0;
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const [mod, out] of [['q_proj', cfg.numHeads * cfg.headDim], ['v_proj', cfg.numKvHeads * cfg.headDim]] as const) {
      const p = `base_model.model.model.layers.${l}.self_attn.${mod}`;
      tensors.set(`${p}.lora_A.weight`, { dtype: 'BF16', shape: [4, cfg.hiddenSize], data: Float32Array.from({ length: 4 * cfg.hiddenSize }, () => 0.25 * Math.sin(++k)) });
      tensors.set(`${p}.lora_B.weight`, { dtype: 'BF16', shape: [out, 4], data: Float32Array.from({ length: out * 4 }, () => 0.25 * Math.cos(++k)) });
    }
  }
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  const a = loadAdapter(dir, base);
  assert.equal(a.config.kind, 'lora');
  assert.equal(a.params.length, cfg.numLayers * 4);
  const seq = [1, 7, 3, 22];
  const merged = new CausalLM(cfg, mergeLora(base, a), backend);
  const l1 = await lm.logits(seq, a);
  const l2 = await merged.logits(seq);
  assert.ok(maxDiff(l1[3]!, l2[3]!) < 1e-4);
  assert.ok(maxDiff(l1[3]!, (await lm.logits(seq))[3]!) > 1e-3, 'the adapter changes the output');
  // A PEFT prompt-tuning folder initialised from text.
  const sp = mkdtempSync(join(tmpdir(), 'plum-peft-pt-'));
  writeFileSync(join(sp, 'adapter_config.json'), JSON.stringify({
    auto_mapping: null, base_model_name_or_path: 'x', inference_mode: true, num_attention_heads: cfg.numHeads, num_layers: cfg.numLayers,
    num_transformer_submodules: 1, num_virtual_tokens: 5, peft_type: 'PROMPT_TUNING', prompt_tuning_init: 'TEXT',
    prompt_tuning_init_text: 'Classify:', revision: null, task_type: 'CAUSAL_LM', token_dim: cfg.hiddenSize, tokenizer_kwargs: null, tokenizer_name_or_path: 'x',
  }));
  writeSafetensors(join(sp, 'adapter_model.safetensors'), new Map([['prompt_embeddings', { dtype: 'F32' as const, shape: [5, cfg.hiddenSize], data: Float32Array.from({ length: 5 * cfg.hiddenSize }, (_, i) => Math.sin(i)) }]]));
  const spa = loadAdapter(sp, base);
  assert.equal(spa.virtualTokens, 5);
  assert.equal((await lm.logits(seq, spa)).length, seq.length);
  // P-tuning (its encoder's output saved as prompt_embeddings) is the same soft prompt
  const pt = JSON.parse(readFileSync(join(sp, 'adapter_config.json'), 'utf8'));
  writeFileSync(join(sp, 'adapter_config.json'), JSON.stringify({ ...pt, peft_type: 'P_TUNING', encoder_reparameterization_type: 'MLP', encoder_hidden_size: 32, encoder_num_layers: 2, encoder_dropout: 0 }));
  const ptune = loadAdapter(sp, base);
  assert.equal(ptune.config.kind, 'soft-prompt');
  assert.equal(maxDiff((await lm.logits(seq, ptune))[3]!, (await lm.logits(seq, spa))[3]!), 0);
});

test('a PEFT adapter for another model is refused with a one-line error naming the field', async () => {
  const { base } = makeBase();
  const { writeFileSync } = await import('node:fs');
  const { writeSafetensors } = await import('../model/safetensors.js');
  const dir = mkdtempSync(join(tmpdir(), 'plum-peft-bad-'));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'PROMPT_TUNING', task_type: 'CAUSAL_LM', num_virtual_tokens: 4, token_dim: 999 }));
  writeSafetensors(join(dir, 'adapter_model.safetensors'), new Map([['prompt_embeddings', { dtype: 'F32' as const, shape: [4, 999], data: new Float32Array(4 * 999) }]]));
  assert.throws(() => loadAdapter(dir, base), /adapter_config\.json: token_dim 999 does not match the model's hidden_size 16/);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'IA3', task_type: 'CAUSAL_LM' }));
  assert.throws(() => loadAdapter(dir, base), /field "peft_type".*supported peft_type: PROMPT_TUNING, P_TUNING, PREFIX_TUNING, LORA/);
});

test('the training graph on per-layer sliding windows, YaRN and MLP biases: its loss equals the scoring pass', async () => {
  const c = tinyConfig({
    architectures: ['Qwen2ForCausalLM'], use_sliding_window: true, sliding_window: 2, max_window_layers: 1, mlp_bias: true,
    head_dim: 8, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16 },
  });
  const weights = randomWeights(c, 9);
  const lm = new CausalLM(c, weights, backend);
  const base = { cfg: c, weights, tokenizer: null, textKV: async () => [] } as unknown as BaseModel;
  const a = await createAdapter({ kind: 'full' }, base, 1);
  const batch = prepareBatch(c, a, makeBatches(rows, { batchSize: 2, seed: 0, epoch: 0, padId: 0 })[0]!);
  assert.ok('bias_window' in batch.feeds, 'the sliding layer gets its own mask');
  const run = await backend.compile(buildSftStep(c, a, batch.shape));
  const out = await run.run(graphFeeds(run, a, weights, batch.feeds, 0));
  const lp = await lm.score(rows.map((r) => r.ids));
  let want = 0;
  rows.forEach((r, b) => r.labels.forEach((l, t) => (want -= l === -100 ? 0 : lp[b]![t - 1]!)));
  const got = (out.loss_sum as Float32Array)[0]!;
  assert.ok(Math.abs(got - want) < 1e-4 * Math.abs(want), `${got} vs ${want}`);
});

test('PEFT rank_pattern / alpha_pattern / exclude_modules: per-module ranks and scales load, merge and save back', async () => {
  const { base, lm } = makeBase();
  const { writeSafetensors } = await import('../model/safetensors.js');
  const { writeFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'plum-peft-pattern-'));
  // LoraConfig(r=4, lora_alpha=8, target_modules="all-linear" resolved to q/v, rank_pattern={"v_proj": 2},
  // alpha_pattern={"model.layers.1.self_attn.q_proj": 16}, exclude_modules=["model.layers.0.self_attn.q_proj"])
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'v_proj'],
    rank_pattern: { v_proj: 2 }, alpha_pattern: { 'model.layers.1.self_attn.q_proj': 16 }, exclude_modules: ['model.layers.0.self_attn.q_proj'],
    layers_pattern: null, modules_to_save: null, use_rslora: false, use_dora: false, bias: 'none',
  }));
  const want = new Map<string, { r: number; scale: number; A: Float32Array; B: Float32Array; out: number }>();
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  let k = 0;
  for (const [mod, r, scale, out] of [
    ['model.layers.0.self_attn.v_proj', 2, 8 / 2, cfg.numKvHeads * cfg.headDim],
    ['model.layers.1.self_attn.q_proj', 4, 16 / 4, cfg.numHeads * cfg.headDim],
    ['model.layers.1.self_attn.v_proj', 2, 8 / 2, cfg.numKvHeads * cfg.headDim],
  ] as const) {
    const A = Float32Array.from({ length: r * cfg.hiddenSize }, () => 0.2 * Math.sin(++k));
    const B = Float32Array.from({ length: out * r }, () => 0.2 * Math.cos(++k));
    tensors.set(`base_model.model.${mod}.lora_A.weight`, { dtype: 'F32', shape: [r, cfg.hiddenSize], data: A });
    tensors.set(`base_model.model.${mod}.lora_B.weight`, { dtype: 'F32', shape: [out, r], data: B });
    want.set(mod, { r, scale, A, B, out });
  }
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  const a = loadAdapter(dir, base);
  assert.equal(a.params.length, 6, 'layer 0 q_proj is excluded');
  // merged weights = W + scale * B A with each module's own rank and alpha
  const merged = mergeLora(base, a);
  for (const [mod, m] of want) {
    const W = base.weights.get(`${mod}.weight`)!;
    const got = merged.get(`${mod}.weight`)!;
    const C = cfg.hiddenSize;
    let err = 0;
    for (let o = 0; o < m.out; o++)
      for (let i = 0; i < C; i++) {
        let d = 0;
        for (let j = 0; j < m.r; j++) d += m.B[o * m.r + j]! * m.A[j * C + i]!;
        err = Math.max(err, Math.abs(got[o * C + i]! - (W[o * C + i]! + m.scale * d)));
      }
    assert.ok(err < 1e-5, `${mod}: ${err}`);
  }
  assert.equal(merged.get('model.layers.0.self_attn.q_proj.weight'), base.weights.get('model.layers.0.self_attn.q_proj.weight'));
  const seq = [1, 7, 3, 22];
  const l1 = await lm.logits(seq, a);
  const l2 = await new CausalLM(cfg, merged, backend).logits(seq);
  assert.ok(maxDiff(l1[3]!, l2[3]!) < 1e-4);
  // saved back with its patterns, and loaded again to the same logits
  const out = mkdtempSync(join(tmpdir(), 'plum-peft-pattern-out-'));
  saveAdapter(out, a, base, 'x');
  const saved = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([saved.rank_pattern, saved.alpha_pattern, saved.exclude_modules], [{ v_proj: 2 }, { 'model.layers.1.self_attn.q_proj': 16 }, ['model.layers.0.self_attn.q_proj']]);
  assert.ok(maxDiff((await lm.logits(seq, loadAdapter(out, base)))[3]!, l1[3]!) < 1e-6);
  // a foreign layers_pattern is refused by name
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'], layers_pattern: 'h' }));
  assert.throws(() => loadAdapter(dir, base), /layers_pattern "h" does not name this model's layers/);
});

test('LoRA target "all-linear" selects every projection and is saved as the modules it selected', async () => {
  const { base } = makeBase();
  const a = await createAdapter({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: 'all-linear', rslora: false }, base, 3);
  assert.equal(a.params.length, cfg.numLayers * 7 * 2);
  const out = mkdtempSync(join(tmpdir(), 'plum-all-linear-'));
  saveAdapter(out, a, base, 'x');
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).target_modules, ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
});

test("DoRA as PEFT trains it: the norm is a constant, so the magnitude's gradient is exact and the factors' leave the norm's term out", async () => {
  const { base } = makeBase();
  const exact = methods.find(([n]) => n === 'dora')![1] as Extract<MethodConfig, { kind: 'lora' }>;
  const grads = async (config: MethodConfig) => {
    const a = await createAdapter(config, base, 4);
    perturb(a);
    const batch = prepareBatch(cfg, a, makeBatches(rows, { batchSize: 2, seed: 0, epoch: 0, padId: 0 })[0]!);
    const run = await backend.compile(buildSftStep(cfg, a, batch.shape));
    return gradsOf(await run.run(graphFeeds(run, a, base.weights, batch.feeds, 0)));
  };
  const [full, peft] = [await grads(exact), await grads({ ...exact, doraNormGradient: false })];
  const M = 'lora.model.layers.0.self_attn.q_proj.M';
  const A = 'lora.model.layers.0.self_attn.q_proj.A';
  assert.ok(maxDiff(full.get(M)!, peft.get(M)!) < 1e-6 && full.get(M)!.some((v) => v !== 0));
  assert.ok(maxDiff(full.get(A)!, peft.get(A)!) > 1e-4);
});

test('a PEFT DoRA folder loads (lora_magnitude_vector with or without .weight) and equals its merged weights; saved back as PEFT names it', async () => {
  const { base, lm } = makeBase();
  const { writeSafetensors } = await import('../model/safetensors.js');
  const { writeFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'plum-peft-dora-'));
  const peftConfig = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['v_proj'], use_dora: true, use_rslora: false, bias: 'none' };
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peftConfig));
  const out = cfg.numKvHeads * cfg.headDim;
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  let k = 0;
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `base_model.model.model.layers.${l}.self_attn.v_proj`;
    tensors.set(`${p}.lora_A.weight`, { dtype: 'F32', shape: [2, cfg.hiddenSize], data: Float32Array.from({ length: 2 * cfg.hiddenSize }, () => 0.3 * Math.sin(++k)) });
    tensors.set(`${p}.lora_B.weight`, { dtype: 'F32', shape: [out, 2], data: Float32Array.from({ length: out * 2 }, () => 0.3 * Math.cos(++k)) });
    // PEFT writes ".lora_magnitude_vector"; some exporters ".lora_magnitude_vector.weight"
    tensors.set(`${p}.lora_magnitude_vector${l === 0 ? '.weight' : ''}`, { dtype: 'F32', shape: [out], data: Float32Array.from({ length: out }, () => 1 + 0.5 * Math.sin(++k)) });
  }
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  const a = loadAdapter(dir, base);
  assert.equal(a.params.length, cfg.numLayers * 3);
  const seq = [1, 7, 3, 22];
  const l1 = await lm.logits(seq, a);
  assert.ok(maxDiff(l1[3]!, (await new CausalLM(cfg, mergeLora(base, a), backend).logits(seq))[3]!) < 1e-5);
  assert.ok(maxDiff(l1[3]!, (await lm.logits(seq))[3]!) > 1e-3);
  const back = mkdtempSync(join(tmpdir(), 'plum-dora-out-'));
  saveAdapter(back, a, base, 'x');
  assert.equal(JSON.parse(readFileSync(join(back, 'adapter_config.json'), 'utf8')).use_dora, true);
  assert.deepEqual(readSafetensors(join(back, 'adapter_model.safetensors')).tensors.get('base_model.model.model.layers.1.self_attn.v_proj.lora_magnitude_vector')!.shape, [out]);
  // magnitude tensors without use_dora are named as the mismatch they are
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...peftConfig, use_dora: false }));
  assert.throws(() => loadAdapter(dir, base), /lora_magnitude_vector(\.weight)?" is DoRA's, but .*adapter_config\.json does not set use_dora: true/);
});

test('DoRA at inference: gains computed once per parameter version, equal to the training graph\'s', async () => {
  const { base, lm } = makeBase();
  const a = await createAdapter(methods.find(([n]) => n === 'dora')![1], base, 12);
  perturb(a);
  const g1 = a.inferenceFeeds!();
  assert.equal(a.inferenceFeeds!(), g1, 'cached until changed');
  const seq = [1, 6, 2, 30, 11];
  const before = await lm.logits(seq, a);
  // the inference graph (gains fed) scores what the training graph (gains computed) scores
  const batch = prepareBatch(cfg, a, makeBatches([{ ids: seq, labels: seq.map((x, t) => (t === 0 ? -100 : x)) }], { batchSize: 1, seed: 0, epoch: 0, padId: 0 })[0]!);
  const run = await backend.compile(buildSftStep(cfg, a, batch.shape));
  const loss = ((await run.run(graphFeeds(run, a, base.weights, batch.feeds, 0))).loss_sum as Float32Array)[0]!;
  const lp = (await lm.score([seq], a))[0]!;
  assert.ok(Math.abs(loss + lp.reduce((p, v) => p + v, 0)) < 1e-4, `${loss}`);
  // a change in place plus changed() gives new gains and new logits
  a.params.find((p) => p.name.endsWith('.M'))!.data[0]! += 0.5;
  a.changed!();
  assert.notEqual(a.inferenceFeeds!(), g1);
  assert.ok(maxDiff((await lm.logits(seq, a))[4]!, before[4]!) > 1e-4);
});

test('lora_bias: y += s * (B A x + b); merged into the base bias where the layer has one, refused by name where it has none', async () => {
  const { base, lm } = makeBase();
  const config = methods.find(([n]) => n === 'lora (lora_bias)')![1];
  const a = await createAdapter(config, base, 13);
  assert.ok(a.params.some((p) => p.name === 'lora.model.layers.0.self_attn.q_proj.bias' && p.data.every((v) => v === 0)), 'the bias starts at zero');
  // its graphs have a bias input, so they must not share a compiled graph with a plain LoRA's
  const plain = await createAdapter({ ...config, loraBias: false } as MethodConfig, base, 13);
  assert.notEqual(a.id, plain.id);
  // one model's graph cache serving both (a shared graph would lack or demand the bias input)
  assert.equal(maxDiff((await lm.logits([1, 2], a))[1]!, (await lm.logits([1, 2], plain))[1]!) > 0, false, 'both start as the identity');
  perturb(a);
  const seq = [1, 9, 4, 17];
  const merged = mergeLora(base, a);
  const q = 'model.layers.1.self_attn.q_proj';
  const b = a.params.find((p) => p.name === `lora.${q}.bias`)!.data;
  const want = base.weights.get(`${q}.bias`)!.map((v, i) => v + 2 * b[i]!); // scale 4 / 2
  assert.ok(maxDiff(merged.get(`${q}.bias`)!, want) < 1e-6);
  assert.ok(maxDiff((await lm.logits(seq, a))[3]!, (await new CausalLM(cfg, merged, backend).logits(seq))[3]!) < 1e-5);
  // saved with PEFT's names and flag, loaded back to the same logits
  const dir = mkdtempSync(join(tmpdir(), 'plum-lora-bias-'));
  saveAdapter(dir, a, base, 'x');
  assert.equal(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).lora_bias, true);
  assert.deepEqual(readSafetensors(join(dir, 'adapter_model.safetensors')).tensors.get(`base_model.model.${q}.lora_B.bias`)!.shape, [cfg.numHeads * cfg.headDim]);
  assert.equal(maxDiff((await lm.logits(seq, loadAdapter(dir, base)))[3]!, (await lm.logits(seq, a))[3]!), 0);
  // o_proj has no bias in Qwen2: a trained lora_bias there cannot be merged
  const o = await createAdapter({ ...config, targetModules: ['o_proj'] } as MethodConfig, base, 13);
  perturb(o);
  assert.throws(() => mergeLora(base, o), /lora_bias cannot be merged into model\.layers\.0\.self_attn\.o_proj, which has no bias in this architecture/);
  await assert.rejects(createAdapter({ ...config, dora: true } as MethodConfig, base, 1), /lora_bias together with DoRA is not supported/);
});

describe('modules_to_save (PEFT): whole copies of modules beside the LoRA factors', () => {
  const tiedCfg = tinyConfig({ tie_word_embeddings: true });
  const untiedCfg = tinyConfig({ tie_word_embeddings: false });
  const seq = [1, 7, 3, 22, 9, 14];
  const lora = (extra: Partial<MethodConfig & { kind: 'lora' }>): MethodConfig => ({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['v_proj'], rslora: false, ...extra });
  const tiedBase = (): BaseModel => ({ cfg: tiedCfg, weights: randomWeights(tiedCfg, 31) });
  /** The adapter's own tensors, by the base tensor they replace. */
  const own = (a: PeftAdapter, name: string): Float32Array => a.params.find((p) => p.name === `save.${name}`)!.data;

  // Each case: what the adapter's copies replace in a tied model, as an untied (or tied) model's weights.
  const cases: Array<[string, Partial<MethodConfig & { kind: 'lora' }>, (a: PeftAdapter, w: Map<string, Float32Array>) => { cfg: typeof tiedCfg; weights: Map<string, Float32Array> }]> = [
    ['lm_head of a tied model: the head is untied, the embedding stays', { modulesToSave: ['lm_head'] }, (a, w) => ({ cfg: untiedCfg, weights: new Map([...w, ['lm_head.weight', own(a, 'lm_head.weight')]]) })],
    ['embed_tokens of a tied model: the head stays the base embedding', { modulesToSave: ['embed_tokens'] }, (a, w) => ({ cfg: untiedCfg, weights: new Map([...w, ['lm_head.weight', w.get('model.embed_tokens.weight')!], ['model.embed_tokens.weight', own(a, 'model.embed_tokens.weight')]]) })],
    ['ensure_weight_tying: one shared copy for both', { modulesToSave: ['embed_tokens', 'lm_head'], ensureWeightTying: true }, (a, w) => ({ cfg: tiedCfg, weights: new Map([...w, ['model.embed_tokens.weight', own(a, 'model.embed_tokens.weight')]]) })],
  ];
  for (const [name, extra, reference] of cases) {
    test(name, async () => {
      const base = tiedBase();
      const a = await createAdapter(lora(extra), base, 3);
      assert.equal(a.params.filter((p) => p.name.startsWith('save.')).length, 1);
      perturb(a);
      const ref = reference(a, base.weights);
      const want = await new CausalLM(ref.cfg, ref.weights, backend).logits(seq, null);
      // the reference has no LoRA factors: fold them in (v_proj only) by merging into the reference weights
      const mergedFactors = mergeLora({ cfg: base.cfg, weights: base.weights }, { ...a, config: lora({}), params: a.params.filter((p) => p.name.startsWith('lora.')) });
      for (const [k, v] of mergedFactors) if (k.includes('v_proj')) ref.weights.set(k, v);
      const wantWithFactors = await new CausalLM(ref.cfg, ref.weights, backend).logits(seq, null);
      const lm = new CausalLM(tiedCfg, base.weights, backend, { headCopy: true });
      const got = await lm.logits(seq, a);
      for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(got[t]!, wantWithFactors[t]!) < 1e-5, `position ${t}`);
      assert.ok(maxDiff(got[5]!, want[5]!) > 1e-4, 'the LoRA factors count too');
      // decode (one row: the head copy is for the base head only) agrees with the full pass
      const { cache } = await lm.prefill([seq.slice(0, 5)], a, 2);
      const step = await lm.decode(cache, [seq[5]!]);
      assert.ok(maxDiff(step[0]!, got[5]!) < 1e-5);
      // save -> load: PEFT's names and config, identical logits
      const dir = mkdtempSync(join(tmpdir(), 'plum-mts-'));
      saveAdapter(dir, a, base, '/models/tiny');
      const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      assert.deepEqual(json.modules_to_save, extra.modulesToSave);
      assert.equal(json.ensure_weight_tying, extra.ensureWeightTying ? true : undefined);
      const keys = [...readSafetensors(join(dir, 'adapter_model.safetensors')).tensors.keys()].filter((k) => !k.includes('lora_'));
      assert.deepEqual(keys, [`base_model.model.${a.params.find((p) => p.name.startsWith('save.'))!.name.slice(5)}`]);
      const back = await new CausalLM(tiedCfg, base.weights, backend).logits(seq, loadAdapter(dir, base));
      for (let t = 0; t < seq.length; t++) assert.equal(maxDiff(back[t]!, got[t]!), 0);
      // merged: untied exactly when the copies untie embedding and head
      const merged = mergeLora(base, a);
      const mcfg = parseConfig(mergedConfig(tiedCfg.raw, tiedCfg, merged));
      assert.equal(mcfg.tieWordEmbeddings, !!extra.ensureWeightTying);
      const fromMerged = await new CausalLM(mcfg, merged, backend).logits(seq);
      for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(fromMerged[t]!, got[t]!) < 1e-5);
    });
  }

  test('a PEFT folder with modules_to_save loads (keys with or without modules_to_save.default)', async () => {
    const base: BaseModel = { cfg: untiedCfg, weights: randomWeights(untiedCfg, 32) };
    const a = await createAdapter(lora({ modulesToSave: ['lm_head', 'norm'] }), base, 4);
    perturb(a);
    const want = await new CausalLM(untiedCfg, base.weights, backend).logits(seq, a);
    const dir = mkdtempSync(join(tmpdir(), 'plum-mts-peft-'));
    saveAdapter(dir, a, base, '/models/tiny');
    const t = readSafetensors(join(dir, 'adapter_model.safetensors')).tensors;
    const head = t.get('base_model.model.lm_head.weight')!;
    t.delete('base_model.model.lm_head.weight');
    t.set('base_model.model.lm_head.modules_to_save.default.weight', head);
    writeSafetensors(join(dir, 'adapter_model.safetensors'), t, { format: 'pt' });
    const got = await new CausalLM(untiedCfg, base.weights, backend).logits(seq, loadAdapter(dir, base));
    for (let i = 0; i < seq.length; i++) assert.equal(maxDiff(got[i]!, want[i]!), 0);
  });

  test('bad modules_to_save: an unknown module, a module also targeted, a tensor the config does not name', () => {
    const base: BaseModel = { cfg: untiedCfg, weights: randomWeights(untiedCfg, 33) };
    const dir = mkdtempSync(join(tmpdir(), 'plum-mts-bad-'));
    const write = (c: Record<string, unknown>, tensors: Map<string, NamedTensor> = new Map()) => {
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['v_proj'], ...c }));
      writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    };
    write({ modules_to_save: ['score'] });
    assert.throws(() => loadAdapter(dir, base), /adapter_config\.json: lora: modules_to_save "score" matches no module of this model/);
    write({ modules_to_save: ['v_proj'] });
    assert.throws(() => loadAdapter(dir, base), /adapter_config\.json: lora: model\.layers\.0\.self_attn\.v_proj is both a LoRA target and in modules_to_save/);
    write({ modules_to_save: null }, new Map([['base_model.model.lm_head.weight', { dtype: 'F32', shape: [40, 16], data: new Float32Array(640) }]]));
    assert.throws(() => loadAdapter(dir, base), /unexpected tensor "base_model\.model\.lm_head\.weight" in a LoRA adapter \(a whole module's tensor: is its module missing from adapter_config\.json's modules_to_save\?\)/);
  });
});

test('LoRA on a tied model\'s lm_head: the head\'s product changes, the embedding does not; merged untied; PEFT names; decode with the head copy', async () => {
  const tcfg = tinyConfig({ tie_word_embeddings: true });
  const weights = randomWeights(tcfg, 31);
  assert.ok(!weights.has('lm_head.weight'));
  const base: BaseModel = { cfg: tcfg, weights, tokenizer: null as unknown as PlumTokenizer, textKV: async () => [] };
  const a = await createAdapter({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'lm_head'], rslora: false }, base, 3);
  const head = a.params.filter((p) => p.name.startsWith('lora.lm_head.'));
  assert.deepEqual(head.map((p) => [p.name, p.shape]), [['lora.lm_head.A', [2, tcfg.hiddenSize]], ['lora.lm_head.B', [tcfg.vocabSize, 2]]]);
  perturb(a);
  // by hand: the merged head is E + (alpha / r) B A, the embedding stays E
  const merged = mergeLora(base, a);
  const E = weights.get('model.embed_tokens.weight')!;
  assert.deepEqual(merged.get('model.embed_tokens.weight'), E);
  const [A, B] = [head[0]!.data, head[1]!.data];
  const C = tcfg.hiddenSize;
  let maxErr = 0;
  for (let v = 0; v < tcfg.vocabSize; v++)
    for (let i = 0; i < C; i++) maxErr = Math.max(maxErr, Math.abs(merged.get('lm_head.weight')![v * C + i]! - (E[v * C + i]! + 2 * (B[v * 2]! * A[i]! + B[v * 2 + 1]! * A[C + i]!))));
  assert.ok(maxErr < 1e-6, `merged head: ${maxErr}`);
  const rawMerged = mergedConfig(tcfg.raw, tcfg, merged);
  assert.equal(rawMerged.tie_word_embeddings, false);
  const lm = new CausalLM(tcfg, weights, backend, { headCopy: true });
  const mergedLm = new CausalLM(parseConfig(rawMerged, 'config.json'), merged, backend);
  const seq = [1, 4, 9, 16, 25, 3];
  const [la, lmg, l0] = [await lm.logits(seq, a), await mergedLm.logits(seq), await lm.logits(seq)];
  for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(la[t]!, lmg[t]!) < 1e-5, `position ${t}: ${maxDiff(la[t]!, lmg[t]!)}`);
  assert.ok(maxDiff(la[5]!, l0[5]!) > 1e-3, 'the head LoRA changes the logits');
  // decode steps (one row: the transposed head copy) go through the head's LoRA too
  const { cache } = await lm.prefill([seq.slice(0, 3)], a, 4);
  for (let t = 3; t < seq.length; t++) {
    const [step] = await lm.decode(cache, [seq[t]!]);
    assert.ok(maxDiff(step!, la[t]!) < 1e-5, `decode at ${t}: ${maxDiff(step!, la[t]!)}`);
  }
  // saved under PEFT's name for the module, and loaded back
  const dir = mkdtempSync(join(tmpdir(), 'plum-lora-head-'));
  saveAdapter(dir, a, base, 'x');
  const tensors = readSafetensors(join(dir, 'adapter_model.safetensors')).tensors;
  assert.deepEqual(tensors.get('base_model.model.lm_head.lora_A.weight')!.shape, [2, C]);
  assert.deepEqual(tensors.get('base_model.model.lm_head.lora_B.weight')!.shape, [tcfg.vocabSize, 2]);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).target_modules, ['q_proj', 'lm_head']);
  const back = loadAdapter(dir, base);
  const lb = await lm.logits(seq, back);
  for (let t = 0; t < seq.length; t++) assert.equal(maxDiff(la[t]!, lb[t]!), 0);
  // PEFT's all-linear and layers_to_transform leave the output layer out
  const all = await createAdapter({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: 'all-linear', rslora: false }, base, 3);
  assert.ok(!all.params.some((p) => p.name.startsWith('lora.lm_head.')));
  const layered = await createAdapter({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'lm_head'], layers: [0], rslora: false }, base, 3);
  assert.deepEqual(layered.params.map((p) => p.name), ['lora.model.layers.0.self_attn.q_proj.A', 'lora.model.layers.0.self_attn.q_proj.B']);
});

test('LoRA on embed_tokens (PEFT\'s LoRA Embedding): E[ids] + s A^T[ids] B^T, A from zero; a tied head untouched; lora_embedding_A/B; DoRA and lora_bias refused', async () => {
  const tcfg = tinyConfig({ tie_word_embeddings: true });
  const weights = randomWeights(tcfg, 32);
  const base: BaseModel = { cfg: tcfg, weights, tokenizer: null as unknown as PlumTokenizer, textKV: async () => [] };
  const config: MethodConfig = { kind: 'lora', r: 2, alpha: 2, dropout: 0.5, targetModules: ['embed_tokens'], rslora: false };
  const a = await createAdapter(config, base, 4);
  const [A, B] = a.params;
  assert.deepEqual([A!.name, A!.shape, B!.name, B!.shape], ['lora.model.embed_tokens.A', [2, tcfg.vocabSize], 'lora.model.embed_tokens.B', [tcfg.hiddenSize, 2]]);
  assert.ok(A!.data.every((x) => x === 0) && B!.data.some((x) => x !== 0), 'A starts at zero, B does not');
  perturb(a);
  const E = weights.get('model.embed_tokens.weight')!;
  const C = tcfg.hiddenSize;
  const merged = mergeLora(base, a);
  assert.deepEqual(merged.get('lm_head.weight'), E, 'the tied head keeps the base embedding');
  let maxErr = 0;
  for (let v = 0; v < tcfg.vocabSize; v++)
    for (let c = 0; c < C; c++) maxErr = Math.max(maxErr, Math.abs(merged.get('model.embed_tokens.weight')![v * C + c]! - (E[v * C + c]! + A!.data[v]! * B!.data[c * 2]! + A!.data[tcfg.vocabSize + v]! * B!.data[c * 2 + 1]!)));
  assert.ok(maxErr < 1e-6, `merged embedding: ${maxErr}`);
  const lm = new CausalLM(tcfg, weights, backend);
  const mergedLm = new CausalLM(parseConfig(mergedConfig(tcfg.raw, tcfg, merged), 'config.json'), merged, backend);
  const seq = [1, 4, 9, 16, 25];
  const [la, lmg, l0] = [await lm.logits(seq, a), await mergedLm.logits(seq), await lm.logits(seq)];
  for (let t = 0; t < seq.length; t++) assert.ok(maxDiff(la[t]!, lmg[t]!) < 1e-5, `position ${t}: ${maxDiff(la[t]!, lmg[t]!)}`);
  assert.ok(maxDiff(la[4]!, l0[4]!) > 1e-3, 'the embedding LoRA changes the logits');
  // no dropout on embeddings (PEFT's Embedding layer has none): training and scoring agree
  const batch = prepareBatch(tcfg, a, makeBatches(rows.map((r) => ({ ids: r.ids.map((x) => x % tcfg.vocabSize), labels: r.labels.map((x) => (x < 0 ? x : x % tcfg.vocabSize)) })), { batchSize: 2, seed: 0, epoch: 0, padId: 0 })[0]!);
  const step = await backend.compile(buildSftStep(tcfg, a, batch.shape));
  const lossAt = async (i: number): Promise<number> => ((await step.run(graphFeeds(step, a, weights, batch.feeds, i))).loss_sum as Float32Array)[0]!;
  const [s3, s4] = [await lossAt(3), await lossAt(4)];
  assert.equal(s3, s4, 'dropout 0.5 in the config, none on the embedding: every step the same loss');
  const dir = mkdtempSync(join(tmpdir(), 'plum-lora-embed-'));
  saveAdapter(dir, a, base, 'x');
  const tensors = readSafetensors(join(dir, 'adapter_model.safetensors')).tensors;
  assert.deepEqual([...tensors.keys()].sort(), ['base_model.model.model.embed_tokens.lora_embedding_A', 'base_model.model.model.embed_tokens.lora_embedding_B']);
  assert.deepEqual(tensors.get('base_model.model.model.embed_tokens.lora_embedding_A')!.shape, [2, tcfg.vocabSize]);
  const lb = await lm.logits(seq, loadAdapter(dir, base));
  for (let t = 0; t < seq.length; t++) assert.equal(maxDiff(la[t]!, lb[t]!), 0);
  await assert.rejects(createAdapter({ ...config, dora: true } as MethodConfig, base, 1), /lora: DoRA on embed_tokens is not supported/);
  await assert.rejects(createAdapter({ ...config, loraBias: true } as MethodConfig, base, 1), /lora: lora_bias on embed_tokens is not supported/);
});
