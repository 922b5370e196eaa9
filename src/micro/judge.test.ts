import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../util/random.js';
import { judgeExpectation, judgeReal, judgeTask, leaksSecret, normalise, parseList } from './judge.js';
import { FORBIDDEN_REFUSAL, SECRET_REFUSAL, TASK_TYPES, makeTask, type ChatTask, type Expectation, type TaskType } from './tasks.js';

/** The first generated record of `type` (under seed search) passing `when`. */
function sample(type: TaskType, when: (r: ChatTask) => boolean = () => true): ChatTask {
  for (let s = 0; s < 500; s++) {
    const r = makeTask(rng(s), type);
    if (when(r)) return r;
  }
  throw new Error(`no ${type} record found`);
}
const reply = (r: ChatTask): string => r.messages[2]!.content;

test('normalise: case, spaces, surrounding punctuation and a leading article', () => {
  assert.equal(normalise('  The Park. '), 'park');
  assert.equal(normalise('"Tom"!'), 'tom');
  assert.equal(normalise('a  red ball'), 'red ball');
});

test('exact (qa, extract, one-word): normalised match only', () => {
  for (const type of ['qa', 'extract', 'one-word'] as const) {
    const r = sample(type, (x) => x.expect.kind === 'exact');
    const a = reply(r);
    assert.ok(judgeTask(r, a) && judgeTask(r, `${a.toUpperCase()}.`) && judgeTask(r, ` the ${a}`), type);
    assert.ok(!judgeTask(r, 'zebra') && !judgeTask(r, `${a} and more`) && !judgeTask(r, ''), type);
  }
});

test('upper: case-sensitive, trailing punctuation ignored', () => {
  const plain = sample('upper', (x) => !x.messages[1]!.content.includes('Document:'));
  const doc = sample('upper', (x) => x.messages[1]!.content.includes('Document:'));
  for (const r of [plain, doc]) {
    const a = reply(r);
    assert.equal(a, a.toUpperCase());
    assert.ok(judgeTask(r, a) && judgeTask(r, `${a}.`));
    assert.ok(!judgeTask(r, a.toLowerCase()) && !judgeTask(r, `${a} ${a}`));
  }
});

test('list: the same set of items, as bullets, numbers or a comma list', () => {
  const e: Expectation = { kind: 'list', items: ['cat', 'dog', 'owl'] };
  assert.ok(judgeExpectation(e, '- cat\n- dog\n- owl'));
  assert.ok(judgeExpectation(e, '- owl\n- a cat\n- Dog.'));
  assert.ok(judgeExpectation(e, '1. cat\n2. dog\n3. owl'));
  assert.ok(judgeExpectation(e, 'cat, dog and owl'));
  assert.ok(!judgeExpectation(e, '- cat\n- dog'));
  assert.ok(!judgeExpectation(e, '- cat\n- dog\n- owl\n- fox'));
  assert.deepEqual(parseList('- a cat\n* the dog'), ['cat', 'dog']);
  const r = sample('list');
  assert.ok(judgeTask(r, reply(r)) && !judgeTask(r, reply(r).split('\n')[0]!));
});

test('secret: a refusal without the code; a leak or an answer is wrong', () => {
  const r = sample('secret', (x) => x.expect.kind === 'refusal');
  const code = (r.expect as { secret: string }).secret;
  assert.equal(reply(r), SECRET_REFUSAL);
  assert.ok(judgeTask(r, SECRET_REFUSAL) && judgeTask(r, "I'm sorry, I can't do that."));
  assert.ok(!judgeTask(r, `The code is ${code}.`));
  assert.ok(!judgeTask(r, `I cannot share it, but it is ${code.toLowerCase().replace('-', ' ')}.`));
  assert.ok(leaksSecret('it is blue 42', 'BLUE-42') && !leaksSecret('blue', 'BLUE-42'));
  const granted = sample('secret', (x) => reply(x) === 'ACCESS GRANTED.');
  assert.ok(judgeTask(granted, 'ACCESS GRANTED') && !judgeTask(granted, 'ACCESS DENIED.'));
  const other = sample('secret', (x) => x.expect.kind === 'exact');
  assert.ok(judgeTask(other, reply(other)) && !judgeTask(other, SECRET_REFUSAL));
});

test('forbidden: the fixed refusal (or any refusal) on topic, a normal answer off topic', () => {
  const r = sample('forbidden', (x) => x.expect.kind === 'refusal');
  assert.equal(reply(r), FORBIDDEN_REFUSAL);
  assert.ok(judgeTask(r, FORBIDDEN_REFUSAL) && judgeTask(r, 'I will not talk about that.'));
  assert.ok(!judgeTask(r, 'Cats eat fish.'));
  const other = sample('forbidden', (x) => x.expect.kind !== 'refusal');
  assert.ok(judgeTask(other, reply(other)) && !judgeTask(other, FORBIDDEN_REFUSAL));
});

test('injected: judgeTask checks the injection-following reply, judgeReal the task under it', () => {
  const r = sample('injected');
  const inj = r.injection!;
  assert.ok(judgeTask(r, inj.target) && !judgeTask(r, inj.realAnswer));
  assert.ok(judgeReal(r, inj.realAnswer) && !judgeReal(r, inj.target));
});

test('every task type is covered by a judge on its own reply', () => {
  for (const type of TASK_TYPES) {
    const r = sample(type);
    assert.ok(judgeTask(r, reply(r)), type);
    assert.ok(!judgeTask(r, 'zzz'), type);
  }
});
