/**
 * The scheduler against the model's own generate(): batching rows of several adapters, rows
 * joining and leaving running batches, and the prefix cache must not change any output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../model/generate.js';
import type { ModelAdapter } from '../model/adapter.js';
import type { SamplingOptions } from '../model/sampling.js';
import { CompletionText } from './completion-text.js';
import { type GenerationRequest, Scheduler } from './scheduler.js';
import { makeFixture } from './testing.js';

const fx = await makeFixture();
const { lm, tokenizer, eosIds } = fx.model;
const adapters: Record<string, ModelAdapter | null> = { base: null, ...fx.adapters };
const greedy = { temperature: 0, topK: 0, topP: 1, seed: 0 };

/** What one request alone gives: generate() on a batch of one, detokenised like the server. */
async function alone(r: GenerationRequest): Promise<string> {
  const [g] = await generate(lm, [r.prompt], { ...r.sampling, maxTokens: r.maxTokens, eosIds, adapter: r.adapter });
  const t = new CompletionText(tokenizer, []);
  return g!.tokens.map((id) => t.push(id).delta).join('') + t.finish();
}

function request(model: string, text: string, maxTokens: number, sampling: SamplingOptions = greedy): GenerationRequest {
  const prompt = tokenizer.encode(text);
  return { model, adapter: adapters[model]!, prompt, cacheUpTo: prompt.length - 1, sampling, maxTokens, stop: [] };
}

test('rows of the base model, a LoRA, a soft prompt and a KV prefix, batched and joining running batches, equal generate() alone', async () => {
  const s = new Scheduler({ lm, tokenizer, eosIds, maxBatch: 4, prefixCacheSlots: 0 });
  const reqs = Array.from({ length: 16 }, (_, i) =>
    request(['base', 'lora', 'soft', 'prefix'][i % 4]!, `request number ${i}: ${'tell me more '.repeat(i % 4)}`, 3 + ((i * 5) % 11), i === 4 ? { ...greedy, temperature: 0.9, seed: 42 } : greedy),
  );
  const streamed = reqs.map(() => [] as string[]);
  const got = await Promise.all(reqs.map((r, i) => s.submit({ ...r, onText: (d) => streamed[i]!.push(d) }).done));
  for (let i = 0; i < reqs.length; i++) {
    assert.equal(got[i]!.text, await alone(reqs[i]!), `request ${i} (${reqs[i]!.model})`);
    assert.equal(streamed[i]!.join(''), got[i]!.text, 'streamed pieces add up to the text');
    assert.ok(got[i]!.completionTokens <= reqs[i]!.maxTokens);
  }
  assert.ok(s.stats().steps < reqs.reduce((a, r) => a + r.maxTokens, 0), 'rows were batched');
  assert.deepEqual([s.stats().running, s.stats().waiting], [0, 0]);
});

test('the prefix cache gives outputs identical to no cache, for the base model and every adapter kind, and counts hits', async () => {
  const system = 'You are a concise assistant. Answer in one short sentence, and never use lists.';
  const reqs = ['base', 'lora', 'soft', 'prefix'].flatMap((m) =>
    ['What is a llama?', 'Name a colour.', 'Why is the sky blue?'].map((q) => {
      const r = request(m, `${system}\n${q}`, 8);
      return { ...r, cacheUpTo: tokenizer.encode(system).length };
    }),
  );
  const off = new Scheduler({ lm, tokenizer, eosIds, maxBatch: 8, prefixCacheSlots: 0 });
  const on = new Scheduler({ lm, tokenizer, eosIds, maxBatch: 8, prefixCacheSlots: 4096 });
  const want = await Promise.all(reqs.map((r) => off.submit(r).done.then((g) => g.text)));
  // One at a time: the first request of each model fills the cache, the others hit it.
  for (let i = 0; i < reqs.length; i++) assert.equal((await on.submit(reqs[i]!).done).text, want[i], `request ${i} (${reqs[i]!.model})`);
  const st = on.stats().prefix_cache;
  assert.equal(st.hits, 8);
  assert.equal(st.misses, 4);
  assert.equal(st.entries, 4, 'one entry per model: adapters never share keys/values');
  assert.equal(st.hit_tokens, 8 * Math.floor(reqs[0]!.cacheUpTo / 16) * 16, 'hits reuse the block-aligned system prompt');
  // Concurrently, hits and misses in one batch.
  const again = await Promise.all(reqs.map((r) => on.submit(r).done.then((g) => g.text)));
  assert.deepEqual(again, want);
  assert.equal(on.stats().prefix_cache.hits, 20);
});

test('a cancelled row stops and frees its slot; the others finish', async () => {
  const s = new Scheduler({ lm, tokenizer, eosIds, maxBatch: 2, prefixCacheSlots: 0 });
  const long = s.submit({ ...request('base', 'a long one', 400) });
  const short = s.submit(request('lora', 'a short one', 4));
  let pieces = 0;
  const other = s.submit({ ...request('base', 'another', 6), onText: () => ++pieces === 2 && long.cancel() });
  const [l, sh, o] = await Promise.all([long.done, short.done, other.done]);
  assert.equal(l.finishReason, 'cancelled');
  assert.ok(l.completionTokens < 50);
  assert.equal(sh.completionTokens, 4);
  assert.equal(o.finishReason, 'length');
  // The loop frees the slot on its next turn; on a busy machine that can take a while.
  for (let i = 0; i < 100 && s.stats().running > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.stats().running, 0);
});

test('repetition penalty and min-p: the scheduler samples as generate() does (the penalty sees prompt and completion)', async () => {
  const s = new Scheduler({ lm, tokenizer, eosIds, maxBatch: 4, prefixCacheSlots: 0 });
  const settings = [
    { ...greedy, repetitionPenalty: 1.8 },
    { ...greedy, temperature: 1, seed: 3, minP: 0.2, repetitionPenalty: 1.3 },
  ];
  const reqs = settings.flatMap((sampling) => ['base', 'lora'].map((m) => request(m, 'tell me more tell me more about', 14, sampling)));
  const got = await Promise.all(reqs.map((r) => s.submit(r).done));
  for (let i = 0; i < reqs.length; i++) assert.equal(got[i]!.text, await alone(reqs[i]!), `request ${i}`);
  // the penalty changes the sampled text (else this test would not test it; a random model's
  // greedy choices rarely repeat a token, so the sampled row is the one that shows it)
  const plain = await alone(request('base', 'tell me more tell me more about', 14, { ...greedy, temperature: 1, seed: 3 }));
  assert.notEqual(await alone(request('base', 'tell me more tell me more about', 14, { ...greedy, temperature: 1, seed: 3, repetitionPenalty: 1.8 })), plain);
});
