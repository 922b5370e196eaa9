import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrtBackend } from '../runtime/ort.js';
import { CausalLM, cacheCapacity, promptLength } from './lm.js';
import { referenceLogits, randomWeights, tinyConfig } from './testing.js';
import { generate } from './generate.js';

const backend = new OrtBackend({ threads: 1 });
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

// Every family member and config switch, checked against the naive float64 reference.
const variants: Array<[string, Record<string, unknown>]> = [
  ['llama (GQA, untied)', {}],
  ['llama tied embeddings', { tie_word_embeddings: true }],
  ['llama attention_bias', { attention_bias: true }],
  ['llama3 rope_scaling', { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }, rope_theta: 500000 }],
  ['linear rope_scaling', { rope_scaling: { type: 'linear', factor: 2 } }],
  ['qwen2 (qkv bias)', { architectures: ['Qwen2ForCausalLM'] }],
  ['qwen3 (qk norm, head_dim override)', { architectures: ['Qwen3ForCausalLM'], head_dim: 8 }],
  ['mistral (sliding window 3)', { architectures: ['MistralForCausalLM'], sliding_window: 3 }],
  ['multi-head (no GQA)', { num_key_value_heads: 4 }],
  ['llama mlp_bias', { mlp_bias: true, attention_bias: true }],
  ['yarn rope_scaling (attention factor in cos/sin)', { head_dim: 8, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16 } }],
  ['dynamic NTK rope beyond max_position_embeddings', { max_position_embeddings: 4, rope_scaling: { rope_type: 'dynamic', factor: 2 } }],
  ['transformers 5 rope_parameters', { rope_theta: undefined, rope_parameters: { rope_type: 'linear', rope_theta: 1e6, factor: 2 } }],
  ['qwen2 sliding window on the upper layers only', { architectures: ['Qwen2ForCausalLM'], use_sliding_window: true, sliding_window: 3, max_window_layers: 1 }],
];

for (const [name, overrides] of variants) {
  test(`decoder matches the float64 reference: ${name}`, async () => {
    const cfg = tinyConfig(overrides);
    const w = randomWeights(cfg, 3);
    const lm = new CausalLM(cfg, w, backend);
    const ids = [1, 5, 9, 33, 7, 2, 12, 30];
    const got = await lm.logits(ids);
    const want = referenceLogits(cfg, w, ids);
    // float32 graph vs float64 loops on O(1) logits: 1e-4 absolute covers accumulated rounding.
    for (let t = 0; t < ids.length; t++) assert.ok(maxAbsDiff(got[t]!, want[t]!) < 1e-4, `position ${t}: ${maxAbsDiff(got[t]!, want[t]!)}`);
  });
}

test('prefill + decode with the KV cache equals the full forward pass, rows of different lengths', async () => {
  const cfg = tinyConfig({ architectures: ['Qwen3ForCausalLM'] });
  const w = randomWeights(cfg, 4);
  const lm = new CausalLM(cfg, w, backend);
  const a = [1, 4, 8, 15, 16, 23, 3];
  const b = [1, 42 % 40, 7];
  const { cache, logits } = await lm.prefill([a.slice(0, 4), b.slice(0, 2)], null, 4);
  assert.ok(maxAbsDiff(logits[0]!, (await lm.logits(a.slice(0, 4)))[3]!) < 1e-5);
  assert.ok(maxAbsDiff(logits[1]!, (await lm.logits(b.slice(0, 2)))[1]!) < 1e-5);
  const step = await lm.decode(cache, [a[4]!, b[2]!]);
  assert.deepEqual(cache.len, [5, 3]);
  assert.ok(maxAbsDiff(step[0]!, (await lm.logits(a.slice(0, 5)))[4]!) < 1e-5);
  assert.ok(maxAbsDiff(step[1]!, (await lm.logits(b))[2]!) < 1e-5);
});

test('prefill + decode equal the full pass with per-layer sliding windows and YaRN-scaled keys', async () => {
  for (const over of [
    { architectures: ['Qwen3ForCausalLM'], use_sliding_window: true, sliding_window: 3, layer_types: ['sliding_attention', 'full_attention'] },
    { head_dim: 8, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16 } },
  ]) {
    const cfg = tinyConfig(over);
    const lm = new CausalLM(cfg, randomWeights(cfg, 8), backend);
    const ids = [1, 4, 8, 15, 16, 23, 3, 9];
    const { cache } = await lm.prefill([ids.slice(0, 5)], null, 3);
    let step: Float32Array[] = [];
    for (let t = 5; t < ids.length; t++) step = await lm.decode(cache, [ids[t]!]);
    const full = await lm.logits(ids);
    assert.ok(maxAbsDiff(step[0]!, full[ids.length - 1]!) < 1e-5, JSON.stringify(over));
    // the window matters: the same model with every layer full differs
    if ('layer_types' in over) {
      const all = tinyConfig({ ...over, layer_types: ['full_attention', 'full_attention'] });
      const other = await new CausalLM(all, randomWeights(all, 8), backend).logits(ids);
      assert.ok(maxAbsDiff(other[ids.length - 1]!, full[ids.length - 1]!) > 1e-3);
    }
  }
});

for (const tied of [false, true]) {
  test(`one-row decode with the transposed head copy equals the full pass, and follows a changed head (${tied ? 'tied' : 'untied'})`, async () => {
    const cfg = tinyConfig({ tie_word_embeddings: tied });
    const w = randomWeights(cfg, 6);
    const lm = new CausalLM(cfg, w, backend, { headCopy: true });
    const ids = [1, 9, 4, 22, 17, 5];
    const { cache } = await lm.prefill([ids.slice(0, 4)], null, 4);
    let step = await lm.decode(cache, [ids[4]!]);
    assert.ok(maxAbsDiff(step[0]!, (await lm.logits(ids.slice(0, 5)))[4]!) < 1e-5);
    assert.ok(lm.graphs.keys().some((k) => k.includes(':htrue:')), 'the decode graph uses the head copy');
    // in place, as a trainer's optimizer step does: the next step must see the new head
    const head = w.get(tied ? 'model.embed_tokens.weight' : 'lm_head.weight')!;
    for (let i = 0; i < head.length; i++) head[i] = head[i]! * 0.5 + 0.01 * Math.sin(i);
    const again = (await lm.prefill([ids.slice(0, 5)], null, 4)).cache;
    step = await lm.decode(again, [ids[5]!]);
    assert.ok(maxAbsDiff(step[0]!, (await lm.logits(ids))[5]!) < 1e-5);
  });
}

test('a released cache is reused: stale slots are masked, results identical to a fresh cache', async () => {
  const cfg = tinyConfig();
  const lm = new CausalLM(cfg, randomWeights(cfg, 6), backend);
  const first = await lm.prefill([[1, 5, 9, 12, 30, 2, 7, 8, 11]], null, 8);
  for (const a of [...first.cache.k, ...first.cache.v]) a.fill(1e4); // stale, large values everywhere
  const stale = first.cache.k[0]!;
  lm.release(first.cache);
  assert.deepEqual(first.cache.k, []);
  const { cache, logits } = await lm.prefill([[1, 3, 4]], null, 8);
  assert.ok([...cache.k, ...cache.v].includes(stale), 'the released array is handed out again');
  assert.ok(maxAbsDiff(logits[0]!, (await lm.logits([1, 3, 4]))[2]!) < 1e-5);
  const step = await lm.decode(cache, [6]);
  assert.ok(maxAbsDiff(step[0]!, (await lm.logits([1, 3, 4, 6]))[3]!) < 1e-5);
});

test('prompt lengths: multiples of an eighth of the enclosing power of two (at least 16), at most a quarter padding; prefill pads to them', async () => {
  const cases: [number, number][] = [[1, 16], [16, 16], [17, 32], [100, 112], [129, 160], [300, 320], [512, 512], [513, 640], [1000, 1024]];
  for (const [n, T] of cases) assert.equal(promptLength(n), T, `promptLength(${n})`);
  for (let n = 64; n <= 5000; n += 29) {
    const T = promptLength(n);
    assert.ok(T >= n && (T - n) / T <= 0.25, `promptLength(${n}) = ${T}`);
  }
  const cfg = tinyConfig();
  const lm = new CausalLM(cfg, randomWeights(cfg, 3), backend);
  lm.release((await lm.prefill([Array.from({ length: 40 }, (_, i) => 1 + (i % 30))])).cache);
  assert.deepEqual(lm.graphs.keys().map((k) => k.split(':')[1]), ['1x48'], `a prefill of 40 tokens compiles one [1, 48] graph: ${lm.graphs.keys().join(' | ')}`);
});

test('cache capacities: multiples of an eighth of the enclosing power of two, at most a quarter empty', () => {
  const cases: [number, number][] = [[0, 64], [1, 64], [64, 64], [65, 128], [200, 256], [257, 320], [513, 640], [641, 768], [1024, 1024], [1025, 1280], [4097, 5120]];
  for (const [n, cap] of cases) assert.equal(cacheCapacity(n), cap, `cacheCapacity(${n})`);
  for (let n = 256; n <= 5000; n += 37) {
    const c = cacheCapacity(n);
    assert.ok(c >= n && (c - n) / c <= 0.25, `cacheCapacity(${n}) = ${c}`);
  }
});

test('the cache grows past its capacity without changing results', async () => {
  const cfg = tinyConfig();
  const lm = new CausalLM(cfg, randomWeights(cfg, 5), backend);
  const ids = Array.from({ length: 70 }, (_, i) => (i * 7 + 3) % 40);
  const { cache } = await lm.prefill([ids.slice(0, 60)], null, 0);
  assert.equal(cache.capacity, 64);
  let last: Float32Array[] = [];
  for (let t = 60; t < 70; t++) last = await lm.decode(cache, [ids[t]!]);
  assert.equal(cache.capacity, 128);
  const full = await lm.logits(ids);
  assert.ok(maxAbsDiff(last[0]!, full[69]!) < 1e-4);
});

test('score returns log p(token | prefix) consistent with the logits', async () => {
  const cfg = tinyConfig();
  const lm = new CausalLM(cfg, randomWeights(cfg, 6), backend);
  const seq = [1, 9, 3, 27, 11];
  const [lp] = await lm.score([seq, [1, 2]]);
  const logits = await lm.logits(seq);
  assert.equal(lp!.length, 4);
  for (let t = 0; t < 4; t++) {
    const l = logits[t]!;
    const m = Math.max(...l);
    const lse = m + Math.log(l.reduce((p, v) => p + Math.exp(v - m), 0));
    assert.ok(Math.abs(lp![t]! - (l[seq[t + 1]!]! - lse)) < 1e-5);
  }
});

test('seeded sampling is reproducible and greedy equals argmax decoding', async () => {
  const cfg = tinyConfig();
  const lm = new CausalLM(cfg, randomWeights(cfg, 7, 1.0), backend);
  const opts = { temperature: 1, topK: 0, topP: 0.9, seed: 42, maxTokens: 12, eosIds: [] };
  const r1 = await generate(lm, [[1, 5], [1, 7, 8]], opts);
  const r2 = await generate(lm, [[1, 5], [1, 7, 8]], opts);
  assert.deepEqual(r1, r2);
  const r3 = await generate(lm, [[1, 5], [1, 7, 8]], { ...opts, seed: 43 });
  assert.notDeepEqual(r1.map((r) => r.tokens), r3.map((r) => r.tokens));
  const greedy = await generate(lm, [[1, 5]], { ...opts, temperature: 0, maxTokens: 5 });
  const seq = [1, 5];
  for (let i = 0; i < 5; i++) {
    const l = (await lm.logits(seq))[seq.length - 1]!;
    seq.push(l.indexOf(Math.max(...l)));
  }
  assert.deepEqual(greedy[0]!.tokens, seq.slice(2));
});

test('repeated prompts are prefilled once (their cache rows copied); each row samples as if it were alone', async () => {
  const cfg = tinyConfig();
  const lm = new CausalLM(cfg, randomWeights(cfg, 7, 1.0), backend);
  const prefilled: number[] = [];
  const prefill = lm.prefill.bind(lm);
  lm.prefill = (prompts, ...rest) => (prefilled.push(prompts.length), prefill(prompts, ...rest));
  const prompts = [[1, 5], [1, 7, 8], [1, 5], [1, 5]];
  const seeds = [11, 12, 13, 14];
  const opts = { temperature: 1, topK: 0, topP: 1, seed: 0, maxTokens: 8, eosIds: [] };
  const together = await generate(lm, prompts, { ...opts, seeds });
  assert.deepEqual(prefilled, [2], 'one prefill of the two distinct prompts');
  for (const [b, p] of prompts.entries()) {
    const alone = await generate(lm, [p], { ...opts, seeds: [seeds[b]!] });
    assert.deepEqual(together[b]!.tokens, alone[0]!.tokens, `row ${b}: the same tokens as sampled alone with its seed`);
  }
  assert.notDeepEqual(together[2]!.tokens, together[3]!.tokens, 'rows of one prompt sample independently');
  // selectRows copies rows (repeats allowed) and leaves the source cache as it was
  const { cache } = await lm.prefill([[1, 5], [1, 7, 8]]);
  const k0 = cache.k[0]!.slice();
  const picked = lm.selectRows(cache, [1, 1, 0]);
  const row = cfg.numKvHeads * cache.capacity * cfg.headDim;
  assert.deepEqual(picked.len, [3, 3, 2]);
  assert.deepEqual(picked.k[0]!.subarray(0, row), cache.k[0]!.subarray(row, 2 * row));
  assert.deepEqual(picked.v[cfg.numLayers - 1]!.subarray(2 * row, 3 * row), cache.v[cfg.numLayers - 1]!.subarray(0, row));
  assert.deepEqual(cache.k[0], k0, 'the source cache is unchanged');
  assert.throws(() => lm.selectRows(cache, [2]), /selectRows: row 2 of a cache of 2/);
});

test('extend continues a cloned cached prefix exactly like one long prefill', async () => {
  const cfg = tinyConfig({ architectures: ['Qwen2ForCausalLM'] });
  const lm = new CausalLM(cfg, randomWeights(cfg, 8), backend);
  const system = [1, 4, 9, 16, 25, 36, 3];
  const { cache } = await lm.prefill([system], null, 0);
  const a = lm.cloneCache(cache);
  const b = lm.cloneCache(cache);
  const la = await lm.extend(a, [[11, 12, 13]]);
  const lb = await lm.extend(b, [[20]]);
  assert.deepEqual(cache.len, [7]);
  assert.ok(maxAbsDiff(la[0]!, (await lm.logits([...system, 11, 12, 13]))[9]!) < 1e-5);
  assert.ok(maxAbsDiff(lb[0]!, (await lm.logits([...system, 20]))[7]!) < 1e-5);
  const next = await lm.decode(a, [5]);
  assert.ok(maxAbsDiff(next[0]!, (await lm.logits([...system, 11, 12, 13, 5]))[10]!) < 1e-5);
});
