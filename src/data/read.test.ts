import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlumError } from '../util/errors.js';
import { arrayElementLines, readSftFile } from './read.js';
import { writeData } from './testing.js';

const jsonl = (...records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** readSftFile must fail with exactly this one-line message. */
function failsWith(file: string, message: string, opts = {}): void {
  assert.throws(
    () => readSftFile(file, opts),
    (e: unknown) => {
      assert.ok(e instanceof PlumError, String(e));
      assert.equal(e.message, message);
      assert.ok(!e.message.includes('\n'));
      return true;
    },
  );
}

test('OpenAI chat JSONL: messages, per-message weights, line numbers (blank lines skipped)', () => {
  const file = writeData(
    'chat.jsonl',
    jsonl({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }) +
      '\n' +
      jsonl({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'a' },
          { role: 'assistant', content: 'b', weight: 0 },
          { role: 'user', content: 'c' },
          { role: 'assistant', content: 'd' },
        ],
      }),
  );
  const { format, records } = readSftFile(file);
  assert.equal(format, 'openai-chat');
  assert.deepEqual(records, [
    { kind: 'chat', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }], source: { file, line: 1 } },
    {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
        { role: 'assistant', content: 'd' },
      ],
      weights: [0, 0, 0, 0, 1],
      source: { file, line: 3 },
    },
  ]);
});

test('OpenAI chat: content as text parts (joined) and the developer role (read as system); other parts refused by name', () => {
  const file = writeData(
    'parts.jsonl',
    jsonl({
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hello, ' }, { type: 'text', text: 'world' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Hi!' }] },
      ],
    }),
  );
  assert.deepEqual(readSftFile(file).records[0]!.kind === 'chat' && readSftFile(file).records[0], {
    kind: 'chat',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello, world' }, { role: 'assistant', content: 'Hi!' }],
    source: { file, line: 1 },
  });
  const img = writeData('img.jsonl', jsonl({ messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'x' } }] }, { role: 'assistant', content: 'a cat' }] }));
  failsWith(img, `${img}:1: messages[0].content[1].type is "image_url"; only text parts ({"type": "text", "text": "..."}) can be learned by a text model`);
});

test('OpenAI chat with tool calls: arguments parsed to objects for the template, tool results, record-level tools; bad calls named', () => {
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
  const file = writeData(
    'tools.jsonl',
    jsonl({
      tools,
      messages: [
        { role: 'user', content: 'Find x' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'lookup', arguments: '{"q": "x"}' } }] },
        { role: 'tool', tool_call_id: 'a', content: 'found' },
        { role: 'assistant', content: 'It is found.', weight: 1 },
      ],
    }),
  );
  assert.deepEqual(readSftFile(file).records[0], {
    kind: 'chat',
    messages: [
      { role: 'user', content: 'Find x' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'a', type: 'function', function: { name: 'lookup', arguments: { q: 'x' } } }] },
      { role: 'tool', content: 'found', tool_call_id: 'a' },
      { role: 'assistant', content: 'It is found.' },
    ],
    weights: [0, 1, 0, 1],
    tools,
    source: { file, line: 1 },
  });
  const call = (args: string) => jsonl({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'f', arguments: args } }] }] });
  const bad = writeData('bad-args.jsonl', call('{"q": '));
  failsWith(bad, `${bad}:1: messages[1].tool_calls[0].function.arguments is not a JSON object (${(() => { try { JSON.parse('{"q": '); } catch (e) { return (e as Error).message; } })()}); write the call's arguments as a JSON object string`);
  const noContent = writeData('no-content.jsonl', jsonl({ messages: [{ role: 'user' }, { role: 'assistant', content: 'a' }] }));
  failsWith(noContent, `${noContent}:1: messages[0].content is missing; add "content": "..."`);
  // an empty or null tool_calls (some exports write one on every message) means no calls
  const empty = writeData('empty-calls.jsonl', jsonl({ messages: [{ role: 'user', content: 'q', tool_calls: null }, { role: 'assistant', content: 'a', tool_calls: [] }] }));
  assert.deepEqual(readSftFile(empty).records[0]!.kind === 'chat' && (readSftFile(empty).records[0] as { messages: unknown }).messages, [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }]);
  const userCalls = writeData('user-calls.jsonl', jsonl({ messages: [{ role: 'user', content: 'q', tool_calls: [{ function: { name: 'f' } }] }, { role: 'assistant', content: 'a' }] }));
  failsWith(userCalls, `${userCalls}:1: messages[0].tool_calls is only allowed on assistant messages (this one is user); remove it`);
});

test("ShareGPT with LLaMA-Factory's function_call / observation turns and tools", () => {
  const fn = { name: 'lookup', description: 'find', parameters: { type: 'object', properties: { q: { type: 'string' } } } };
  const file = writeData(
    'sg-tools.json',
    JSON.stringify([
      {
        conversations: [
          { from: 'human', value: 'Find x' },
          { from: 'function_call', value: '{"name": "lookup", "arguments": {"q": "x"}}' },
          { from: 'observation', value: 'found' },
          { from: 'gpt', value: 'It is found.' },
        ],
        tools: JSON.stringify([fn]),
      },
    ]),
  );
  assert.deepEqual(readSftFile(file).records[0], {
    kind: 'chat',
    messages: [
      { role: 'user', content: 'Find x' },
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'lookup', arguments: { q: 'x' } } }] },
      { role: 'tool', content: 'found' },
      { role: 'assistant', content: 'It is found.' },
    ],
    tools: [{ type: 'function', function: fn }],
    source: { file, line: 1, index: 0 },
  });
  const bad = writeData('sg-bad.json', JSON.stringify([{ conversations: [{ from: 'human', value: 'q' }, { from: 'function_call', value: 'lookup(x)' }, { from: 'gpt', value: 'a' }] }]));
  assert.throws(() => readSftFile(bad), (e: unknown) => e instanceof PlumError && /\[0\]\.conversations\[1\]\.value is not JSON/.test(e.message));
});

test('prompt/completion JSONL (CRLF line ends)', () => {
  const file = writeData('pc.jsonl', jsonl({ prompt: 'Q: 2+2?\nA:', completion: ' 4' }, { prompt: '', completion: 'x' }).replaceAll('\n', '\r\n'));
  const { format, records } = readSftFile(file);
  assert.equal(format, 'prompt-completion');
  assert.deepEqual(records, [
    { kind: 'text', prompt: 'Q: 2+2?\nA:', completion: ' 4', source: { file, line: 1 } },
    { kind: 'text', prompt: '', completion: 'x', source: { file, line: 2 } },
  ]);
});

test('Alpaca JSON: instruction + "\\n" + input, optional system and history; element start lines', () => {
  const text = JSON.stringify(
    [
      { instruction: 'Say hi.', input: '', output: 'Hi!' },
      { instruction: 'Translate:', input: 'chat', output: 'cat', system: 'You translate French.' },
      { instruction: 'And this?', output: 'dog', history: [['Translate: chien', 'dog?']] },
    ],
    null,
    2,
  );
  const file = writeData('alpaca.json', text);
  const { format, records } = readSftFile(file);
  assert.equal(format, 'alpaca');
  assert.deepEqual(arrayElementLines(text), [2, 7, 13]);
  assert.deepEqual(
    records.map((r) => (r.kind === 'chat' ? r.messages : null)),
    [
      [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi!' }],
      [{ role: 'system', content: 'You translate French.' }, { role: 'user', content: 'Translate:\nchat' }, { role: 'assistant', content: 'cat' }],
      [
        { role: 'user', content: 'Translate: chien' },
        { role: 'assistant', content: 'dog?' },
        { role: 'user', content: 'And this?' },
        { role: 'assistant', content: 'dog' },
      ],
    ],
  );
  assert.deepEqual(records.map((r) => r.source), [
    { file, line: 2, index: 0 },
    { file, line: 7, index: 1 },
    { file, line: 13, index: 2 },
  ]);
});

test('ShareGPT JSON: conversations with human/gpt/system and a top-level system; the messages variant', () => {
  const file = writeData(
    'sharegpt.json',
    JSON.stringify([
      { conversations: [{ from: 'system', value: 'S' }, { from: 'human', value: 'Q1' }, { from: 'gpt', value: 'A1' }, { from: 'human', value: 'Q2' }, { from: 'gpt', value: 'A2' }] },
      { conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }], system: 'Top' },
    ]),
  );
  const { format, records } = readSftFile(file);
  assert.equal(format, 'sharegpt');
  assert.deepEqual(
    records.map((r) => (r.kind === 'chat' ? r.messages : null)),
    [
      [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Q1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'Q2' },
        { role: 'assistant', content: 'A2' },
      ],
      [{ role: 'system', content: 'Top' }, { role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }],
    ],
  );
  const variant = writeData('sharegpt-messages.json', JSON.stringify([{ messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }] }]));
  for (const format of [undefined, 'sharegpt'] as const) {
    const r = readSftFile(variant, { format });
    assert.deepEqual(r.records[0], { kind: 'chat', messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }], source: { file: variant, line: 1, index: 0 } });
  }
});

test('an explicit format overrides detection (Alpaca records in JSONL)', () => {
  const file = writeData('alpaca.jsonl', jsonl({ instruction: 'I', output: 'O' }));
  const r = readSftFile(file, { format: 'alpaca' });
  assert.deepEqual(r.records[0], { kind: 'chat', messages: [{ role: 'user', content: 'I' }, { role: 'assistant', content: 'O' }], source: { file, line: 1 } });
  failsWith(file, `${file}:1: prompt is missing; add "prompt": "..."`, { format: 'prompt-completion' });
});

const ok = { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] };

test('bad data: one line naming file:line and field, with the count of further bad records', () => {
  const bad = (name: string, text: string, message: string): void => {
    const file = writeData(name, text);
    failsWith(file, message.replaceAll('FILE', file));
  };
  bad('empty.jsonl', '\n  \n', 'FILE: the file is empty; put one JSON record per line (JSONL) or a JSON array of records in it');
  bad(
    'malformed.jsonl',
    jsonl(ok) + '{"messages": [}\n',
    `FILE:2: not valid JSON (Unexpected token '}', "{"messages": [}" is not valid JSON); each line must be one complete JSON object`,
  );
  bad(
    'no-assistant.jsonl',
    jsonl(ok, { messages: [{ role: 'user', content: 'Hi' }] }),
    'FILE:2: messages has no assistant turn; add {"role": "assistant", "content": "..."} with the reply to learn',
  );
  bad(
    'type.jsonl',
    jsonl(ok, { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 42 }] }),
    'FILE:2: messages[1].content must be a string (got number); put the text in quotes',
  );
  bad('missing.jsonl', jsonl({ messages: [{ role: 'user' }, { role: 'assistant', content: 'x' }] }), 'FILE:1: messages[0].content is missing; add "content": "..."');
  bad(
    'role.jsonl',
    jsonl({ messages: [{ role: 'user', content: 'Hi' }, { role: 'bot', content: 'x' }] }),
    'FILE:1: messages[1].role is "bot", not one of "system", "user", "assistant", "developer", "tool"; use one of those',
  );
  bad('empty-messages.jsonl', jsonl({ messages: [] }), 'FILE:1: messages is empty; add the conversation as {"role", "content"} objects');
  bad('not-array.jsonl', jsonl({ messages: 'Hi' }), 'FILE:1: messages must be an array (got string); use a JSON array [...]');
  bad(
    'weight.jsonl',
    jsonl({ messages: [{ role: 'user', content: 'Hi', weight: 1 }, { role: 'assistant', content: 'x' }] }),
    'FILE:1: messages[0].weight is only allowed on assistant messages (this one is user); remove it',
  );
  bad('weight-value.jsonl', jsonl({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'x', weight: 0.5 }] }), 'FILE:1: messages[1].weight is 0.5, not one of 0, 1; use one of those');
  bad(
    'all-weight-0.jsonl',
    jsonl({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'x', weight: 0 }] }),
    'FILE:1: messages gives every assistant turn weight 0, so there is nothing to learn; set "weight": 1 on one of them or remove the record',
  );
  bad(
    'many.jsonl',
    jsonl(ok, ok, { messages: [{ role: 'user', content: 1 }] }) + 'oops\n' + jsonl({ messages: [] }),
    `FILE:3: messages[0].content must be a string (got number); put the text in quotes (and 2 more invalid records)`,
  );
  bad('record.jsonl', jsonl(ok) + '[1, 2]\n', 'FILE:2: the record must be an object (got array); use a JSON object {...}');
  bad(
    'unknown.jsonl',
    jsonl({ body: 'hello' }),
    'FILE:1: cannot tell the data format from this record (body); expected "messages" (OpenAI chat), "prompt" + "completion", "instruction" + "output" (Alpaca), "conversations" (ShareGPT) or "text" (corpus), or pass --format openai-chat|prompt-completion|alpaca|sharegpt|corpus',
  );
  bad('text.txt', 'hello\n', 'FILE:1: not JSON (starts with "h"); write one JSON object per line (JSONL) or a JSON array of records');
});

test('bad JSON arrays: parse errors with a line, empty arrays, fields named with the element index and its line', () => {
  const bad = (name: string, text: string, message: string): void => {
    const file = writeData(name, text);
    failsWith(file, message.replaceAll('FILE', file));
  };
  bad('trailing.json', '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": "d",}\n]', `FILE:3: not valid JSON (Expected double-quoted property name); fix the file so that it is one JSON array of records`);
  bad('empty.json', ' [ ] ', 'FILE: the JSON array is empty; add at least one record');
  bad(
    'output.json',
    JSON.stringify([{ instruction: 'a', output: 'b' }, { instruction: 'c', output: ['d'] }], null, 2),
    'FILE:6: [1].output must be a string (got array); put the text in quotes',
  );
  bad('element.json', JSON.stringify([{ instruction: 'a', output: 'b' }, 'c'], null, 1), 'FILE:6: [1] must be an object (got string); use a JSON object {...}');
  bad(
    'from.json',
    JSON.stringify([{ conversations: [{ from: 'human', value: 'q' }, { from: 'bot', value: 'a' }] }]),
    'FILE:1: [0].conversations[1].from is "bot", not one of "human", "user", "gpt", "assistant", "system", "function_call", "observation"; use one of those',
  );
  bad(
    'no-gpt.json',
    JSON.stringify([{ conversations: [{ from: 'human', value: 'q' }] }]),
    'FILE:1: [0].conversations has no assistant turn; add {"from": "gpt", "value": "..."} with the reply to learn',
  );
  bad('object.json', '{"messages": [\n]}', 'FILE: holds one JSON object spread over several lines; write one record per line (JSONL) or wrap the records in [ ... ]');
  bad(
    'pretty.jsonl',
    '{"messages": [\n  {"role": "user"}\n}',
    'FILE:1: not valid JSON (Unexpected end of JSON input); each line must be one complete JSON object (and 1 more invalid record)',
  );
});

test('arrayElementLines ignores brackets and newlines inside strings', () => {
  assert.deepEqual(arrayElementLines('[\n"a[\\"\\n",\n\n {"x": "]\\n,"},\n[1,\n2], 3\n]'), [2, 4, 5, 6]);
  assert.deepEqual(arrayElementLines('[]'), []);
});

test('a corpus: {"text"} records mixed with chat records, detected even when a chat comes first', () => {
  const file = writeData('corpus.jsonl', jsonl({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] }, { text: 'Once upon a time.' }));
  const r = readSftFile(file);
  assert.equal(r.format, 'corpus');
  assert.deepEqual(r.records.map((x) => x.kind), ['chat', 'text']);
  assert.deepEqual(r.records[1], { kind: 'text', prompt: '', completion: 'Once upon a time.', source: { file, line: 2 } });
});
