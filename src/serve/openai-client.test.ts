/** The official `openai` npm client against the server: it parses every object and error Plum sends. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { makeFixture, startTestServer } from './testing.js';

const fx = await makeFixture();
const srv = await startTestServer({ model: fx.model, adapters: { support: fx.adapters.lora }, apiKey: 'sk-local' });
after(() => srv.close());
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sk-local', maxRetries: 0 });
const messages = [
  { role: 'system' as const, content: 'You are helpful.' },
  { role: 'user' as const, content: 'Write a haiku about plums.' },
];

test('models.list returns the base model and the adapter', async () => {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['tiny', 'support']);
  assert.equal((await client.models.retrieve('support')).id, 'support');
});

test('chat.completions.create, with and without stream, agree for greedy decoding', async () => {
  const full = await client.chat.completions.create({ model: 'support', messages, temperature: 0, max_completion_tokens: 15 });
  const text = full.choices[0]!.message.content ?? '';
  assert.equal(full.choices[0]!.finish_reason, 'length');
  assert.equal(full.usage?.completion_tokens, 15);
  let streamed = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  const s = await client.chat.completions.create({ model: 'support', messages, temperature: 0, max_completion_tokens: 15, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of s) {
    streamed += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  assert.equal(streamed, text);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, full.usage);
  const base = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 15 });
  assert.notEqual(base.choices[0]!.message.content, text, 'the adapter changes the answer');
});

test('completions.create and the stream helper', async () => {
  const c = await client.completions.create({ model: 'tiny', prompt: 'Once upon', max_tokens: 6, temperature: 0 });
  assert.equal(c.choices[0]!.finish_reason, 'length');
  const runner = client.chat.completions.stream({ model: 'tiny', messages, temperature: 0, max_tokens: 6 });
  const done = await runner.finalChatCompletion();
  const direct = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 6 });
  assert.equal(done.choices[0]!.message.content, direct.choices[0]!.message.content);
});

test('errors become the client exceptions with status, code and param', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(2000) }] }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.code, 'context_length_exceeded');
    assert.equal(e.param, 'messages');
    return true;
  });
  const wrong = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), OpenAI.AuthenticationError);
  const ok = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 });
  assert.equal(ok.choices.length, 1);
});
