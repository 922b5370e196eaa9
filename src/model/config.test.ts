import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectedTensorShapes, parseConfig } from './config.js';
import { PlumError } from '../util/errors.js';

const base = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
};
const cfg = (over: Record<string, unknown>) => parseConfig({ ...base, ...over }, 'm/config.json');
const rejects = (over: Record<string, unknown>, message: RegExp): void => {
  assert.throws(() => cfg(over), (e: unknown) => e instanceof PlumError && message.test(e.message));
};

test('transformers 5 layout: rope_theta and the scaling come from rope_parameters', () => {
  const c = cfg({ rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
  assert.equal(c.ropeTheta, 500000);
  assert.deepEqual(c.ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(cfg({ rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }).ropeTheta, 1e6);
  assert.equal(cfg({ rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }).ropeScaling, null);
  // rope_parameters wins over a stale top-level field, as in transformers 5
  assert.equal(cfg({ rope_theta: 10000, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }).ropeTheta, 1e6);
  // transformers 4 layout and the defaults
  assert.equal(cfg({ rope_theta: 1e6 }).ropeTheta, 1e6);
  assert.equal(cfg({}).ropeTheta, 10000);
  assert.deepEqual(cfg({ rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling, { type: 'linear', factor: 2 });
});

test('rope_parameters per layer type: one shared set is accepted, different sets are refused', () => {
  const p = { rope_type: 'default', rope_theta: 1e6 };
  const types = ['full_attention', 'full_attention', 'full_attention', 'full_attention'];
  assert.equal(cfg({ layer_types: types, rope_parameters: { full_attention: p } }).ropeTheta, 1e6);
  const mixed = { architectures: ['Qwen2ForCausalLM'], use_sliding_window: true, sliding_window: 4, layer_types: ['full_attention', 'sliding_attention', 'full_attention', 'sliding_attention'] };
  rejects({ ...mixed, rope_parameters: { full_attention: p, sliding_attention: { ...p, rope_theta: 1e4 } } }, /m\/config\.json: rope_parameters differ between layer types/);
});

test('YaRN parameters and HF defaults', () => {
  const y = cfg({ max_position_embeddings: 131072, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }).ropeScaling;
  assert.deepEqual(y, { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 32768, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * Math.log(4) + 1, truncate: true });
  // no factor: the ratio of the context lengths; explicit attention_factor wins
  const r = cfg({ max_position_embeddings: 8192, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4, original_max_position_embeddings: 2048, attention_factor: 1.5, beta_fast: 16, truncate: false } }).ropeScaling;
  assert.deepEqual(r, { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 2048, betaFast: 16, betaSlow: 1, attentionFactor: 1.5, truncate: false });
  const m = cfg({ rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, mscale: 1, mscale_all_dim: 0.5 } }).ropeScaling;
  assert.ok(m?.type === 'yarn' && Math.abs(m.attentionFactor - (0.1 * Math.log(40) + 1) / (0.05 * Math.log(40) + 1)) < 1e-12);
  assert.deepEqual(cfg({ rope_scaling: { rope_type: 'dynamic', factor: 2 } }).ropeScaling, { type: 'dynamic', factor: 2 });
  // the pretraining length: top level (wins), else in the dict, else max_position_embeddings (transformers 5)
  const l3 = { rope_type: 'llama3', rope_theta: 5e5, factor: 8, low_freq_factor: 1, high_freq_factor: 4 };
  const orig = (over: Record<string, unknown>) => (cfg({ max_position_embeddings: 131072, rope_parameters: l3, ...over }).ropeScaling as { originalMaxPositionEmbeddings: number }).originalMaxPositionEmbeddings;
  assert.equal(orig({}), 131072);
  assert.equal(orig({ original_max_position_embeddings: 8192 }), 8192);
  assert.equal(orig({ rope_parameters: { ...l3, original_max_position_embeddings: 4096 } }), 4096);
  assert.equal(orig({ rope_parameters: { ...l3, original_max_position_embeddings: 4096 }, original_max_position_embeddings: 8192 }), 8192);
});

test('unsupported RoPE settings name the field', () => {
  rejects({ rope_scaling: { rope_type: 'longrope', short_factor: [1], long_factor: [1] } }, /m\/config\.json: rope_scaling type "longrope" is not supported \(supported: default, linear, dynamic, llama3, yarn\)/);
  rejects({ rope_parameters: { rope_type: 'linear', rope_theta: 1e4 } }, /m\/config\.json: rope_parameters\.factor must be a number for rope_type "linear"/);
  rejects({ partial_rotary_factor: 0.5 }, /partial_rotary_factor 0\.5 is not supported/);
  rejects({ rope_parameters: { rope_type: 'default', rope_theta: 'big' } }, /rope_parameters\.rope_theta must be a positive number/);
});

test('sliding windows per layer, as HF decides them', () => {
  const full = ['full_attention', 'full_attention', 'full_attention', 'full_attention'];
  // Llama: none; Mistral: every layer when sliding_window is set
  assert.deepEqual([cfg({ sliding_window: 4 }).slidingWindow, cfg({ sliding_window: 4 }).layerTypes], [null, full]);
  const mistral = cfg({ architectures: ['MistralForCausalLM'], sliding_window: 4 });
  assert.deepEqual([mistral.slidingWindow, mistral.layerTypes], [4, ['sliding_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention']]);
  assert.equal(cfg({ architectures: ['MistralForCausalLM'], sliding_window: null }).slidingWindow, null);
  // Qwen2/3: only with use_sliding_window, from max_window_layers on (HF default 28)
  const qwen = { architectures: ['Qwen2ForCausalLM'], sliding_window: 4 };
  assert.equal(cfg({ ...qwen, max_window_layers: 1 }).slidingWindow, null);
  const q = cfg({ ...qwen, use_sliding_window: true, max_window_layers: 2 });
  assert.deepEqual([q.slidingWindow, q.layerTypes], [4, ['full_attention', 'full_attention', 'sliding_attention', 'sliding_attention']]);
  assert.equal(cfg({ ...qwen, use_sliding_window: true }).slidingWindow, null); // 4 layers < 28
  // explicit layer_types (transformers 5 writes them)
  const lt = ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'];
  assert.deepEqual(cfg({ architectures: ['Qwen3ForCausalLM'], use_sliding_window: true, sliding_window: 2, layer_types: lt }).layerTypes, lt);
  assert.equal(cfg({ architectures: ['Qwen3ForCausalLM'], sliding_window: 2, layer_types: lt }).slidingWindow, null);
  rejects({ layer_types: ['full_attention'] }, /m\/config\.json: layer_types has 1 entries for num_hidden_layers 4/);
  rejects({ layer_types: ['full_attention', 'chunked_attention', 'full_attention', 'full_attention'] }, /layer_types\[1\] "chunked_attention" is not supported/);
});

test('mlp_bias adds the three MLP biases to the tensor table', () => {
  const shapes = expectedTensorShapes(cfg({ mlp_bias: true }));
  assert.deepEqual(shapes.get('model.layers.3.mlp.gate_proj.bias'), [24]);
  assert.deepEqual(shapes.get('model.layers.0.mlp.up_proj.bias'), [24]);
  assert.deepEqual(shapes.get('model.layers.0.mlp.down_proj.bias'), [16]);
  assert.equal(expectedTensorShapes(cfg({})).has('model.layers.0.mlp.up_proj.bias'), false);
});

test('attention_bias and mlp_bias apply where HF reads them (Llama; Qwen3 attention), not to Qwen2 or Mistral', () => {
  const traits = (over: Record<string, unknown>) => {
    const c = cfg({ attention_bias: true, mlp_bias: true, ...over });
    return [c.qkvBias, c.oBias, c.mlpBias];
  };
  assert.deepEqual(traits({}), [true, true, true]);
  assert.deepEqual(traits({ architectures: ['Qwen3ForCausalLM'] }), [true, true, false]);
  assert.deepEqual(traits({ architectures: ['Qwen2ForCausalLM'] }), [true, false, false]); // q/k/v bias always, o_proj never
  assert.deepEqual(traits({ architectures: ['MistralForCausalLM'] }), [false, false, false]);
});
