import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';
import { PlumError } from '../util/errors.js';
import { readPairs, splitHhRlhf, writePairs, type PreferencePair } from './pairs.js';

const dir = mkdtempSync(join(tmpdir(), 'plum-pairs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string | Uint8Array): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const jsonl = (...records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const strip = (pairs: PreferencePair[]) => pairs.map(({ source: _, ...p }) => p);

function failsWith(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PlumError, String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

test('prompt-chosen-rejected: plain and TRL conversational records', () => {
  const f = write(
    'pcr.jsonl',
    jsonl(
      { prompt: 'Hi', chosen: 'Hello!', rejected: 'Go away.', prompt_id: 'p1' },
      { prompt: [{ role: 'system', content: 'Be brief.' }, user('2+2?')], chosen: [assistant('4')], rejected: [assistant('5')] },
    ),
  );
  const pairs = readPairs(f);
  assert.deepEqual(strip(pairs), [
    { prompt: 'Hi', chosen: 'Hello!', rejected: 'Go away.', promptId: 'p1' },
    { prompt: '2+2?', messages: [{ role: 'system', content: 'Be brief.' }, user('2+2?')], chosen: '4', rejected: '5' },
  ]);
  assert.deepEqual(pairs.map((p) => p.source), [{ file: f, line: 1 }, { file: f, line: 2 }]);
});

test('openai preference records', () => {
  const rec = { input: { messages: [user('Hello'), assistant('Hi!'), user('Tell a joke')] }, preferred_output: [assistant('Knock knock')], non_preferred_output: [assistant('No.')] };
  assert.deepEqual(strip(readPairs(write('oa.jsonl', jsonl(rec)))), [
    { prompt: 'Tell a joke', messages: [user('Hello'), assistant('Hi!'), user('Tell a joke')], chosen: 'Knock knock', rejected: 'No.' },
  ]);
});

test('HH-RLHF: shared dialogue prefix -> messages, final turns -> chosen/rejected; gzip', () => {
  const rec = {
    chosen: '\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I pick a lock?\n\nAssistant: I can\u2019t help with that.',
    rejected: '\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I pick a lock?\n\nAssistant: Get a tension wrench.',
  };
  const expected = [{ prompt: 'How do I pick a lock?', messages: [user('Hi'), assistant('Hello!'), user('How do I pick a lock?')], chosen: 'I can\u2019t help with that.', rejected: 'Get a tension wrench.' }];
  assert.deepEqual(strip(readPairs(write('hh.jsonl', jsonl(rec)))), expected);
  assert.deepEqual(strip(readPairs(write('hh.jsonl.gz', gzipSync(jsonl(rec))))), expected);
  // Replies that start alike: the prompt is cut back to the last Assistant turn of the common prefix.
  const same = splitHhRlhf('\n\nHuman: Q\n\nAssistant: Sure thing', '\n\nHuman: Q\n\nAssistant: Sure, no');
  assert.deepEqual(same, { ok: true, pair: { prompt: 'Q', messages: [user('Q')], chosen: 'Sure thing', rejected: 'Sure, no' } });
  assert.deepEqual(splitHhRlhf('Hi', 'Ho'), { ok: false, problem: 'chosen and rejected share no "\\n\\nAssistant:" turn; both must be the same dialogue with different final replies' });
});

test('LLaMA-Factory DPO: sharegpt (JSON array, system) and alpaca (history)', () => {
  const sharegpt = [
    { conversations: [{ from: 'system', value: 'S' }, { from: 'human', value: 'Q' }], chosen: { from: 'gpt', value: 'good' }, rejected: { from: 'gpt', value: 'bad' } },
    { conversations: [{ from: 'human', value: 'Q2' }], chosen: { from: 'gpt', value: 'g2' }, rejected: { from: 'gpt', value: 'b2' }, system: 'S2' },
  ];
  const f = write('sg.json', JSON.stringify(sharegpt, null, 2));
  const pairs = readPairs(f);
  assert.deepEqual(strip(pairs), [
    { prompt: 'Q', messages: [{ role: 'system', content: 'S' }, user('Q')], chosen: 'good', rejected: 'bad' },
    { prompt: 'Q2', messages: [{ role: 'system', content: 'S2' }, user('Q2')], chosen: 'g2', rejected: 'b2' },
  ]);
  assert.deepEqual(pairs.map((p) => p.source!.line), [2, 22]); // where each array element starts
  const alpaca = { instruction: 'Translate', input: 'chat', chosen: 'cat', rejected: 'dog', history: [['hi', 'hello']] };
  assert.deepEqual(strip(readPairs(write('al.jsonl', jsonl(alpaca)))), [
    { prompt: 'Translate\nchat', messages: [user('hi'), assistant('hello'), user('Translate\nchat')], chosen: 'cat', rejected: 'dog' },
  ]);
});

test('round trips: prompt-chosen-rejected and openai keep every field but the source', () => {
  const pairs: PreferencePair[] = [
    { prompt: 'Hi', chosen: 'Hello', rejected: 'Bye', promptId: 'x1' },
    { prompt: 'Q', messages: [{ role: 'system', content: 'S' }, user('Q')], chosen: 'A', rejected: 'B', promptId: 'x2' },
  ];
  const pcr = join(dir, 'rt.jsonl');
  writePairs(pcr, pairs, 'prompt-chosen-rejected');
  assert.deepEqual(strip(readPairs(pcr)), pairs);
  assert.equal(readFileSync(pcr, 'utf8').split('\n')[0], '{"prompt":"Hi","chosen":"Hello","rejected":"Bye","prompt_id":"x1"}');
  const oa = join(dir, 'rt-openai.jsonl.gz');
  writePairs(oa, pairs, 'openai');
  // OpenAI has no prompt id and always a conversation
  assert.deepEqual(strip(readPairs(oa)), [
    { prompt: 'Hi', messages: [user('Hi')], chosen: 'Hello', rejected: 'Bye' },
    { prompt: 'Q', messages: pairs[1]!.messages, chosen: 'A', rejected: 'B' },
  ]);
});

test('bad input: one-line errors with file:line; unknown formats', () => {
  let f = write('bad1.jsonl', jsonl({ prompt: 'a', chosen: 'b', rejected: 'c' }) + '{oops\n' + jsonl({ prompt: 1, chosen: 'b', rejected: 'c' }));
  failsWith(() => readPairs(f), `${f}:2: not valid JSON (Expected property name or '}'); each line must be one JSON object (and 1 more invalid record)`);
  f = write('bad2.jsonl', jsonl({ prompt: 'a', chosen: 'b' }));
  failsWith(() => readPairs(f), `${f}:1: rejected must be a string or [{"role": "assistant", "content": "..."}]`);
  f = write('bad3.jsonl', jsonl({ input: { messages: [user('q')] }, preferred_output: [assistant('a'), assistant('b')], non_preferred_output: [assistant('c')] }));
  failsWith(() => readPairs(f), `${f}:1: preferred_output must hold exactly one {"role": "assistant", "content"} message`);
  f = write('bad4.jsonl', jsonl({ question: 'q', answer: 'a' }));
  failsWith(() => readPairs(f), new RegExp(`^${f}:1: cannot tell the preference format from this record \\(question, answer\\); expected .* or pass --from prompt-chosen-rejected\\|openai\\|hh-rlhf\\|sharegpt\\|alpaca$`));
  failsWith(() => readPairs(f, { format: 'dpo' as never }), 'readPairs: unknown preference format "dpo"; use one of prompt-chosen-rejected, openai, hh-rlhf, sharegpt, alpaca');
  failsWith(() => writePairs(join(dir, 'x.jsonl'), [], 'hh-rlhf' as never), 'writePairs: unknown preference format "hh-rlhf"; use one of prompt-chosen-rejected, openai');
  f = write('bad5.jsonl.gz', 'not gzip at all');
  failsWith(() => readPairs(f), new RegExp(`^${f}:1: not valid JSON`)); // no gzip magic: read as text
  f = write('bad6.jsonl', jsonl({ chosen: '\n\nHuman: a\n\nAssistant: b', rejected: 'Human: a' }));
  failsWith(() => readPairs(f, { format: 'hh-rlhf' }), `${f}:1: chosen and rejected share no "\\n\\nAssistant:" turn; both must be the same dialogue with different final replies`);
});

const hh = sharedPath('datasets/hh-rlhf/harmless-base-test.jsonl.gz');
test('shared HH-RLHF harmless-base test split: 2,312 pairs', { skip: hh ? false : SKIP_NO_SHARED }, () => {
  const pairs = readPairs(hh!);
  assert.equal(pairs.length, 2312);
  const first = pairs[0]!;
  assert.equal(first.prompt, 'okay some of these do not have anything to do with pens');
  assert.deepEqual(first.messages!.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
  assert.equal(first.messages![0]!.content, 'what are some pranks with a pen i can do?');
  assert.equal(first.chosen, 'No, sorry!  All of these involve a pen, the point is that you can get funny results by doing pranks with pens.');
  assert.match(first.rejected, /^There are lots of funny things you can do with pens, here’s one example: use the pen as a zipper\./);
  // line 87: the chosen transcript ends with an empty Assistant turn
  assert.deepEqual([pairs[86]!.chosen, pairs[86]!.rejected, pairs[86]!.source!.line], ['', 'Sure, the address is ...', 87]);
  assert.ok(pairs.every((p) => p.messages!.at(-1)!.role === 'user' || p.messages!.at(-1)!.role === 'assistant'));
});

const lf = sharedPath('datasets/llama-factory-demo/dpo_en_demo.json');
test('shared LLaMA-Factory dpo_en_demo.json: 300 pairs', { skip: lf ? false : SKIP_NO_SHARED }, () => {
  const pairs = readPairs(lf!);
  assert.equal(pairs.length, 300);
  assert.equal(pairs[0]!.prompt, "Hi! I'd like to create a new language game simulating the first person perspective of a character named Angela.");
  assert.match(pairs[0]!.chosen, /^That sounds like a fun and engaging idea! Here are some tips/);
  assert.deepEqual(pairs[0]!.source, { file: lf, line: 2 });
  assert.equal(pairs.filter((p) => p.messages!.some((m) => m.role === 'system')).length, 80);
  assert.equal(pairs.filter((p) => p.messages!.length > 1).length, 186);
  assert.equal(pairs[299]!.source!.line, 7210);
});
