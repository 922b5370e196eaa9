import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rope, ropeParameters, ropeTables } from './rope.js';
import { tinyConfig } from './testing.js';

// Expected values: Hugging Face's _compute_yarn_parameters / _compute_dynamic_ntk_parameters run
// in float32 with torch 1.13 (/usr/bin/python3, the formulas of transformers 5), printed to 17 digits.
const close = (got: number, want: number, what: string): void => assert.ok(Math.abs(got - want) <= 2e-7 * Math.abs(want), `${what}: ${got} vs ${want}`);

test('YaRN frequencies match HF: Qwen2.5 long-context settings (theta 1e6, factor 4, 32768 original positions)', () => {
  const cfg = tinyConfig({ hidden_size: 64, num_attention_heads: 1, num_key_value_heads: 1, rope_theta: 1e6, max_position_embeddings: 131072, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } });
  const { inv, attentionScaling } = ropeParameters(cfg);
  const want: Array<[number, number]> = [[0, 1], [5, 0.11547820270061493], [10, 0.01333521492779255], [11, 0.00865964312106371], [15, 0.001026617712341249], [20, 4.4456985051510856e-5], [25, 5.133812464919174e-6], [31, 3.8498163235090033e-7]];
  for (const [i, v] of want) close(inv[i]!, v, `inv_freq[${i}]`);
  close(attentionScaling, 0.1 * Math.log(4) + 1, 'attention factor'); // 1.1386...
});

test('YaRN without truncation, and the attention factor from mscale / mscale_all_dim', () => {
  const cfg = tinyConfig({ rope_scaling: { rope_type: 'yarn', factor: 8, original_max_position_embeddings: 64, truncate: false, mscale: 0.707, mscale_all_dim: 0.707 } });
  assert.equal(cfg.headDim, 4);
  const wide = tinyConfig({ head_dim: 16, rope_scaling: { rope_type: 'yarn', factor: 8, original_max_position_embeddings: 64, truncate: false } });
  const want = [1.0, 0.1789761483669281, 0.01319445762783289, 0.0039528473280370235, 0.0012499999720603228, 0.00039528473280370235, 0.0001250000059371814, 3.9528473280370235e-5];
  ropeParameters(wide).inv.forEach((v, i) => close(v, want[i]!, `inv_freq[${i}]`));
  assert.equal(ropeParameters(cfg).attentionScaling, 1); // equal mscales cancel
});

test('dynamic NTK: the default frequencies up to max_position_embeddings, a larger base beyond', () => {
  const cfg = tinyConfig({ hidden_size: 64, num_attention_heads: 1, num_key_value_heads: 1, max_position_embeddings: 2048, rope_scaling: { rope_type: 'dynamic', factor: 2 } });
  const short = ropeParameters(cfg, 100).inv;
  [[0, 1], [1, 0.7498942017555237], [16, 0.009999999776482582], [31, 0.0001333521504420787]].forEach(([i, v]) => close(short[i!]!, v!, `short inv_freq[${i}]`));
  const long = ropeParameters(cfg, 4096).inv;
  [[0, 1], [1, 0.7237839698791504], [16, 0.0056721000000834465], [31, 4.445071317604743e-5]].forEach(([i, v]) => close(long[i!]!, v!, `long inv_freq[${i}]`));
  // tables follow the longest position they are given; the Rope helper recomputes per call
  const pos = [0, 1, 4095];
  assert.deepEqual(new Rope(cfg).tables(pos), ropeTables(cfg, pos, ropeParameters(cfg, 4096)));
  assert.notDeepEqual(ropeTables(cfg, [0, 1, 2]).cos, ropeTables(cfg, [0, 1, 2], ropeParameters(cfg, 4096)).cos);
});

test('cos and sin carry the attention scaling; without scaling cos^2 + sin^2 = 1', () => {
  const plain = tinyConfig();
  const yarn = tinyConfig({ rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } });
  const a = ropeTables(plain, [3, 17]);
  const b = ropeTables(yarn, [3, 17]);
  const s = ropeParameters(yarn).attentionScaling;
  for (let i = 0; i < a.cos.length; i++) {
    assert.ok(Math.abs(a.cos[i]! ** 2 + a.sin[i]! ** 2 - 1) < 1e-6);
    assert.ok(Math.abs(b.cos[i]! ** 2 + b.sin[i]! ** 2 - s * s) < 1e-5);
  }
});
