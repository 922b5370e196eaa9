import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initModel } from '../model/init.js';
import { loadModel } from '../model/load.js';
import { createApp } from './app.js';
import type { GenerationRequest, GenerationResult } from './scheduler.js';
import { ToolCallStream, parseToolCalls } from './tools.js';

const weather = (city: string): string => `{"name": "get_weather", "arguments": {"city": "${city}"}}`;

test('parseToolCalls: Hermes blocks, Llama JSON, Mistral lists; anything else stays text', () => {
  const h = parseToolCalls(`Let me check.\n<tool_call>\n${weather('Paris')}\n</tool_call>\n<tool_call>\n${weather('Oslo')}\n</tool_call>`);
  assert.equal(h.content, 'Let me check.');
  assert.deepEqual(h.calls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)]), [
    ['function', 'get_weather', { city: 'Paris' }],
    ['function', 'get_weather', { city: 'Oslo' }],
  ]);
  assert.match(h.calls[0]!.id, /^call_[0-9a-f]{24}$/);
  assert.notEqual(h.calls[0]!.id, h.calls[1]!.id);
  // an unterminated last block (generation stopped at the closing tag) still counts
  assert.equal(parseToolCalls(`<tool_call>${weather('Rome')}`).calls.length, 1);
  assert.equal(parseToolCalls(`<tool_call>${weather('Rome')}`).content, null);

  const llama = parseToolCalls(' {"name": "get_weather", "parameters": {"city": "Lima"}}; {"name": "now", "parameters": {}}');
  assert.deepEqual(llama.calls.map((c) => [c.function.name, c.function.arguments]), [['get_weather', '{"city":"Lima"}'], ['now', '{}']]);
  assert.equal(llama.content, null);
  const mistral = parseToolCalls(`[TOOL_CALLS][${weather('Kyiv')}, {"name": "now", "arguments": "{}"}]`);
  assert.deepEqual(mistral.calls.map((c) => c.function.name), ['get_weather', 'now']);

  for (const text of ['The weather is fine.', '{"answer": 42}', '[1, 2]', '<tool_call>{"name": "x", "arguments": [1]}</tool_call>', '<tool_call>not json</tool_call>']) {
    assert.deepEqual(parseToolCalls(text), { content: text, calls: [] }, text);
  }
});

/** Feed `text` to a ToolCallStream in pieces of `size` characters: what was streamed, and finish(). */
function streamIn(text: string, size: number): { streamed: string; rest: string; calls: number } {
  const s = new ToolCallStream();
  let streamed = '';
  for (let i = 0; i < text.length; i += size) streamed += s.push(text.slice(i, i + size));
  const end = s.finish();
  return { streamed, rest: end.text, calls: end.calls.length };
}

test('ToolCallStream: text before a call streams, the call is held; text that only looked like one is flushed at the end', () => {
  for (const size of [1, 3, 50]) {
    const call = `Checking <tool_call>${weather('Paris')}</tool_call>`;
    assert.deepEqual(streamIn(call, size), { streamed: 'Checking ', rest: '', calls: 1 }, `size ${size}`);
    const plain = 'a <tool that is not <tool_ and ends with <tool_c';
    const r = streamIn(plain, size);
    assert.equal(r.streamed + r.rest, plain, `size ${size}`);
    assert.equal(r.calls, 0);
    assert.ok(!r.streamed.endsWith('<tool_c'), 'a possible marker is held back');
    assert.deepEqual(streamIn(`  ${weather('Oslo')}`, size), { streamed: '', rest: '', calls: 1 });
    assert.deepEqual(streamIn('{"answer": 42}', size), { streamed: '', rest: '{"answer": 42}', calls: 0 });
  }
});

/** A tiny model whose chat template renders tools and assistant calls (Hermes-like). */
function toolModel() {
  const dir = join(mkdtempSync(join(tmpdir(), 'plum-tools-')), 'm');
  initModel({ preset: 'tiny', arch: 'llama', seed: 3, out: dir });
  const cfgFile = join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  cfg.chat_template =
    '{% if tools %}[tools:{% for t in tools %}{{ t.function.name }};{% endfor %}]{% endif %}' +
    '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if m.tool_calls %}{% for c in m.tool_calls %}' +
    '<tool_call>{{ c.function.name }}={{ c.function.arguments.city }}</tool_call>{% endfor %}{% endif %}{% endfor %}' +
    '{% if add_generation_prompt %}[assistant]{% endif %}';
  writeFileSync(cfgFile, JSON.stringify(cfg));
  return loadModel(dir);
}

/** The app with its scheduler replaced by one that "generates" `reply` in 4-character pieces. */
function scripted(reply: string, finishReason: GenerationResult['finishReason'] = 'stop') {
  const model = toolModel();
  const serving = createApp({ model, modelId: 'm' });
  const prompts: string[] = [];
  serving.scheduler.submit = (req: GenerationRequest) => {
    prompts.push(model.tokenizer.decode(req.prompt));
    for (let i = 0; i < reply.length; i += 4) req.onText?.(reply.slice(i, i + 4));
    return { done: Promise.resolve({ text: reply, finishReason, completionTokens: 9 }), cancel: () => {} };
  };
  const post = async (body: unknown) => {
    const res = await serving.app.request('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  };
  return { post, prompts };
}

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const history = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
  { role: 'user', content: 'And Oslo?' },
];

test('chat with tools: the template sees tools and earlier calls; a reply with calls becomes tool_calls, streamed or not', async () => {
  const reply = `Looking.<tool_call>\n${weather('Oslo')}\n</tool_call>`;
  const { post, prompts } = scripted(reply);
  const res = await post({ model: 'm', messages: history, tools });
  assert.equal(res.status, 200, res.text);
  const [choice] = JSON.parse(res.text).choices;
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, 'Looking.');
  assert.equal(choice.message.tool_calls.length, 1);
  assert.deepEqual(choice.message.tool_calls[0].function, { name: 'get_weather', arguments: '{"city":"Oslo"}' });
  assert.match(prompts[0]!, /^\[tools:get_weather;\]/);
  assert.ok(prompts[0]!.includes('[assistant]<tool_call>get_weather=Paris</tool_call>[tool]sunny'), prompts[0]);

  const sse = await post({ model: 'm', messages: history, tools, stream: true });
  const chunks = sse.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices[0]);
  const text = chunks.map((c) => c.delta.content ?? '').join('');
  assert.equal(text, 'Looking.');
  const calls = chunks.flatMap((c) => c.delta.tool_calls ?? []);
  assert.deepEqual(calls.map((c: any) => [c.index, c.type, c.function.name, c.function.arguments]), [[0, 'function', 'get_weather', '{"city":"Oslo"}']]);
  assert.equal(chunks.at(-1).finish_reason, 'tool_calls');
});

test('chat with tools: a text reply stays text (streamed whole), tool_choice none leaves tools out, a cut-off call is length', async () => {
  const { post, prompts } = scripted('It is <tool sunny there.');
  const plain = JSON.parse((await post({ model: 'm', messages: history, tools })).text).choices[0];
  assert.deepEqual([plain.message.content, plain.message.tool_calls, plain.finish_reason], ['It is <tool sunny there.', undefined, 'stop']);
  const sse = await post({ model: 'm', messages: history, tools, stream: true });
  const chunks = sse.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices[0]);
  assert.equal(chunks.map((c) => c.delta.content ?? '').join(''), 'It is <tool sunny there.');
  assert.equal(chunks.at(-1).finish_reason, 'stop');
  await post({ model: 'm', messages: history, tools, tool_choice: 'none' });
  assert.ok(!prompts.at(-1)!.includes('[tools:'), 'tool_choice none: no tools in the prompt');

  const cut = scripted(`<tool_call>${weather('Oslo').slice(0, 20)}`, 'length');
  const c = JSON.parse((await cut.post({ model: 'm', messages: history, tools })).text).choices[0];
  assert.deepEqual([c.finish_reason, c.message.tool_calls], ['length', undefined]);
});

test('chat with tools: unsupported tool_choice, a template without tools and a bad call in the history are 400s', async () => {
  const { post } = scripted('x');
  for (const [choice, want] of [
    ['required', /tool_choice "required" is not supported.*use "auto"/],
    [{ type: 'function', function: { name: 'get_weather' } }, /named function \(get_weather\)/],
  ] as const) {
    const r = await post({ model: 'm', messages: history, tools, tool_choice: choice });
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error.message, want);
  }
  const bad = structuredClone(history);
  bad[1]!.tool_calls![0]!.function.arguments = '{"city": ';
  const r = await post({ model: 'm', messages: bad, tools });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error.message, /messages.1.tool_calls.0.function.arguments.*JSON object/);

  // the plain default template (no chat_template) never mentions tools
  const dir = join(mkdtempSync(join(tmpdir(), 'plum-tools-')), 'plain');
  initModel({ preset: 'tiny', arch: 'llama', seed: 3, out: dir });
  const app = createApp({ model: loadModel(dir), modelId: 'p' }).app;
  const res = await app.request('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'p', messages: history, tools }) });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as any).error.message, /chat template does not render tools/);
});
