/**
 * The API through real HTTP on localhost: response and chunk shapes, streaming == non-streaming,
 * 50 concurrent requests, errors (and serving on after them), adapters, the prefix cache.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../model/generate.js';
import { CompletionText } from './completion-text.js';
import { makeFixture, postJson, readSse, startTestServer } from './testing.js';

const KEY = 'sk-plum-test';
const fx = await makeFixture();
const { lm, tokenizer, eosIds } = fx.model;
const srv = await startTestServer({ model: fx.model, adapters: fx.adapters, apiKey: KEY });
after(() => srv.close());
const auth = { authorization: `Bearer ${KEY}` };
const post = (path: string, body: unknown, headers: Record<string, string> = auth) => postJson(srv.url + path, body, headers);
const stream = async (path: string, body: Record<string, unknown>): Promise<any[]> => {
  const res = await fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ ...body, stream: true }) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const data = await readSse(res);
  assert.equal(data.at(-1), '[DONE]');
  return data.slice(0, -1).map((d) => JSON.parse(d));
};
const chat = (model: string, user: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'system', content: 'You are a terse assistant.' }, { role: 'user', content: user }],
  temperature: 0,
  max_tokens: 12,
  ...extra,
});

test('chat: streamed deltas add up to the non-streamed text; objects have OpenAI shapes', async () => {
  const body = chat('tiny', 'Say something.');
  const { status, json } = await post('/v1/chat/completions', body);
  assert.equal(status, 200);
  assert.equal(json.object, 'chat.completion');
  assert.match(json.id, /^chatcmpl-/);
  assert.equal(json.model, 'tiny');
  const [choice] = json.choices;
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.finish_reason, 'length');
  assert.equal(json.usage.completion_tokens, 12);
  assert.equal(json.usage.total_tokens, json.usage.prompt_tokens + 12);

  const chunks = await stream('/v1/chat/completions', { ...body, stream_options: { include_usage: true } });
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.model === 'tiny'));
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, json.usage);
  const last = chunks.at(-2).choices[0];
  assert.deepEqual([last.delta, last.finish_reason], [{}, 'length']);
  const deltas = chunks.slice(1, -2).map((c) => c.choices[0].delta.content);
  assert.ok(deltas.length > 1, 'text arrives in several chunks');
  assert.equal(deltas.join(''), choice.message.content);
});

test('completions: several prompts x n choices, streamed and not, and stop strings', async () => {
  const body = { model: 'lora', prompt: ['Once upon a time', 'The cat'], n: 2, max_tokens: 10, temperature: 0 };
  const { json } = await post('/v1/completions', body);
  assert.equal(json.object, 'text_completion');
  assert.deepEqual(json.choices.map((c: any) => c.index), [0, 1, 2, 3]);
  assert.equal(json.choices[0].text, json.choices[1].text, 'greedy choices of one prompt agree');
  const chunks = await stream('/v1/completions', body);
  assert.ok(chunks.every((c) => c.object === 'text_completion'));
  for (let i = 0; i < 4; i++) {
    const mine = chunks.flatMap((c) => c.choices).filter((c) => c.index === i);
    assert.equal(mine.map((c) => c.text).join(''), json.choices[i].text);
    assert.equal(mine.at(-1).finish_reason, 'length');
  }
  const text: string = json.choices[2].text;
  const stop = [...text].slice(1).find((ch) => ch !== '\uFFFD')!; // a character the greedy answer has
  const cut = text.slice(0, text.indexOf(stop));
  assert.ok(stop);
  const stopped = await post('/v1/completions', { ...body, prompt: 'The cat', n: 1, stop: [stop, 'never-seen'] });
  assert.deepEqual([stopped.json.choices[0].text, stopped.json.choices[0].finish_reason], [cut, 'stop']);
  const streamed = await stream('/v1/completions', { ...body, prompt: 'The cat', n: 1, stop });
  assert.equal(streamed.map((c) => c.choices[0].text).join(''), cut);
});

test('seeded sampling is reproducible; choices of one request differ', async () => {
  const body = { model: 'tiny', prompt: 'Hello', n: 2, max_tokens: 16, temperature: 1.5, top_p: 0.95, seed: 7 };
  const a = (await post('/v1/completions', body)).json.choices.map((c: any) => c.text);
  const b = (await post('/v1/completions', body)).json.choices.map((c: any) => c.text);
  assert.deepEqual(a, b);
  assert.notEqual(a[0], a[1]);
});

test('50 concurrent requests over several models, streamed or not, each get their own greedy answer', async () => {
  const models = ['tiny', 'lora', 'soft', 'prefix'] as const;
  const reqs = Array.from({ length: 50 }, (_, i) => ({ model: models[i % 4]!, prompt: `Request ${i}: ${'more '.repeat(i % 7)}`, max_tokens: 4 + (i % 9), temperature: 0 }));
  const answers = await Promise.all(
    reqs.map(async (r, i) => {
      if (i % 2) return (await post('/v1/completions', r)).json.choices[0].text as string;
      return (await stream('/v1/completions', r)).map((c) => c.choices[0].text).join('');
    }),
  );
  for (let i = 0; i < reqs.length; i++) {
    const r = reqs[i]!;
    const adapter = r.model === 'tiny' ? null : fx.adapters[r.model];
    const [g] = await generate(lm, [tokenizer.encode(r.prompt)], { temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens: r.max_tokens, eosIds, adapter });
    const t = new CompletionText(tokenizer, []);
    assert.equal(answers[i], g!.tokens.map((id) => t.push(id).delta).join('') + t.finish(), `request ${i} (${r.model})`);
  }
});

test("vLLM's sampling extensions (top_k, min_p, repetition_penalty) reach the sampler", async () => {
  const body = { model: 'tiny', prompt: 'tell me more tell me more about', max_tokens: 12, temperature: 1, seed: 3, top_k: 50, min_p: 0.05, repetition_penalty: 1.8 };
  const got = (await post('/v1/completions', body)).json.choices[0].text as string;
  const [g] = await generate(lm, [tokenizer.encode(body.prompt)], { temperature: 1, topK: 50, topP: 1, minP: 0.05, repetitionPenalty: 1.8, seed: 3, maxTokens: 12, eosIds });
  const t = new CompletionText(tokenizer, []);
  assert.equal(got, g!.tokens.map((id) => t.push(id).delta).join('') + t.finish());
  const plain = (await post('/v1/completions', { ...body, top_k: undefined, min_p: undefined, repetition_penalty: undefined })).json.choices[0].text as string;
  assert.notEqual(plain, got);
});

test('/health answers while a long generation streams', async () => {
  const res = await fetch(srv.url + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ model: 'tiny', prompt: 'Go on', max_tokens: 300, temperature: 0, stream: true }),
  });
  let health: any = null;
  let chunksAfterHealth = 0;
  await readSse(res, (d) => {
    if (health) chunksAfterHealth++;
    else if (!health && d !== '[DONE]') {
      health = {}; // ask once, from the first chunk
      void fetch(srv.url + '/health').then(async (h) => (health = await h.json()));
    }
  });
  assert.equal(health.status, 'ok');
  assert.equal(health.running, 1, 'health answered during the generation');
  assert.ok(chunksAfterHealth > 10);
});

test('errors are OpenAI-shaped 4xx and the server keeps serving', async () => {
  const bad = async (status: number, res: Promise<{ status: number; json: any }>, code: string | null, param: string | null = null) => {
    const { status: s, json } = await res;
    assert.equal(s, status, JSON.stringify(json));
    assert.deepEqual(Object.keys(json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(json.error.type, 'invalid_request_error');
    assert.deepEqual([json.error.code, json.error.param], [code, param]);
    return json.error.message as string;
  };
  assert.match(await bad(400, post('/v1/chat/completions', '{"model": "tiny", '), null), /parse the JSON/);
  assert.match(await bad(400, post('/v1/chat/completions', { model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] }), null, 'messages.0.role'), /messages\.0\.role/);
  await bad(400, post('/v1/chat/completions', { model: 'tiny', messages: [] }), null, 'messages');
  await bad(400, post('/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 0 }), null, 'max_tokens');
  assert.match(await bad(404, post('/v1/chat/completions', chat('gpt-4o', 'hi')), 'model_not_found', 'model'), /gpt-4o/);
  const long = 'word '.repeat(200);
  assert.match(await bad(400, post('/v1/chat/completions', chat('tiny', long)), 'context_length_exceeded', 'messages'), /maximum context length is 512/);
  await bad(400, post('/v1/completions', { model: 'soft', prompt: 'Hi', max_tokens: 600 }), 'context_length_exceeded', 'prompt');
  await bad(401, post('/v1/chat/completions', chat('tiny', 'hi'), {}), 'invalid_api_key');
  await bad(401, post('/v1/chat/completions', chat('tiny', 'hi'), { authorization: 'Bearer sk-wrong' }), 'invalid_api_key');
  assert.equal((await fetch(srv.url + '/v1/models')).status, 401);
  await bad(404, post('/v1/nothing', {}), 'unknown_url');
  const ok = await post('/v1/chat/completions', chat('tiny', 'still there?'));
  assert.equal(ok.status, 200);
  assert.equal((await fetch(srv.url + '/health')).status, 200, '/health needs no key');
});

test('/v1/models lists the base and every adapter; an adapter id changes the output', async () => {
  const list = await (await fetch(srv.url + '/v1/models', { headers: auth })).json();
  assert.equal(list.object, 'list');
  assert.deepEqual(list.data.map((m: any) => m.id), ['tiny', 'lora', 'soft', 'prefix']);
  assert.ok(list.data.every((m: any) => m.object === 'model' && m.owned_by === 'plum'));
  const texts = await Promise.all(['tiny', 'lora', 'soft', 'prefix'].map(async (m) => (await post('/v1/chat/completions', chat(m, 'Hello'))).json.choices[0].message.content));
  assert.equal(new Set(texts).size, 4, `every model answers differently: ${JSON.stringify(texts)}`);
});

test('prefix cache over HTTP: a shared system prompt is reused, outputs equal a server without the cache', async () => {
  const plain = await startTestServer({ model: fx.model, adapters: fx.adapters, prefixCacheTokens: 0 });
  try {
    const system = 'You are the support assistant of Plum. Answer politely, briefly, and only about Plum.';
    const bodies = ['soft', 'lora', 'tiny'].flatMap((model) =>
      ['How do I install it?', 'Is there a GPU build?', 'Thanks!'].map((q) => ({ model, messages: [{ role: 'system', content: system }, { role: 'user', content: q }], temperature: 0, max_tokens: 8 })),
    );
    const before = (await (await fetch(srv.url + '/health')).json()).prefix_cache;
    for (const b of bodies) {
      const want = (await postJson(plain.url + '/v1/chat/completions', b)).json.choices[0].message.content;
      assert.equal((await post('/v1/chat/completions', b)).json.choices[0].message.content, want, `${b.model}: ${b.messages[1]!.content}`);
    }
    const now = (await (await fetch(srv.url + '/health')).json()).prefix_cache;
    assert.equal(now.hits - before.hits, 6);
    assert.ok(now.hit_tokens - before.hit_tokens >= 6 * 32);
    const metrics = await (await fetch(srv.url + '/metrics')).text();
    assert.match(metrics, new RegExp(`^plum_prefix_cache_hits_total ${now.hits}$`, 'm'));
    assert.equal((await (await fetch(plain.url + '/health')).json()).prefix_cache.hits, 0);
  } finally {
    await plain.close();
  }
});

test('a client that disconnects frees its rows (streamed and not)', async () => {
  const health = async () => (await fetch(srv.url + '/health')).json();
  const before = (await health()).generated_tokens;
  const body = JSON.stringify({ model: 'lora', prompt: 'Keep talking', max_tokens: 400, temperature: 0, stream: true });
  const ac = new AbortController();
  const res = await fetch(srv.url + '/v1/completions', { method: 'POST', headers: auth, body, signal: ac.signal });
  let chunks = 0;
  await readSse(res, () => ++chunks === 3 && ac.abort()).catch(() => {});
  const ac2 = new AbortController();
  const plain = fetch(srv.url + '/v1/completions', { method: 'POST', headers: auth, body: body.replace('"stream":true', '"stream":false'), signal: ac2.signal });
  // Abort once the server is generating for it (a fixed delay raced a fast machine).
  for (const t0 = Date.now(); (await health()).running === 0 && Date.now() - t0 < 5000; ) await new Promise((r) => setTimeout(r, 2));
  ac2.abort();
  await assert.rejects(plain);
  await new Promise((r) => setTimeout(r, 200));
  const after = await health();
  assert.deepEqual([after.running, after.waiting], [0, 0]);
  assert.ok(after.generated_tokens - before < 200, `generation stopped early (${after.generated_tokens - before} tokens)`);
});
