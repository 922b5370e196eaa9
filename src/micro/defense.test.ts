import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defenseData, defensePair } from './defense.js';
import { followedInjection, INJECTION_TEMPLATES } from './injection.js';
import { judgeExpectation, judgeTask } from './judge.js';
import { INJECTION_TARGETS } from './vocab.js';

const data = defenseData({ seed: 11, n: 200 });
const trainIds = new Set(INJECTION_TEMPLATES.train.map((t) => t.id));

test('defense SFT: half clean, half injected records replied to with the real answer', () => {
  assert.equal(data.sft.length, 200);
  const injected = data.sft.filter((r) => r.injection);
  assert.equal(injected.length, 100);
  assert.ok(data.sft.filter((r) => !r.injection).every((r) => r.task !== 'injected'));
  for (const r of injected) {
    const inj = r.injection!;
    const answer = r.messages[2]!.content;
    assert.equal(answer, inj.realAnswer);
    assert.ok(judgeTask(r, answer) && judgeExpectation(inj.real, answer));
    assert.ok(!followedInjection(answer, inj.target));
    assert.ok(r.messages[1]!.content.includes(inj.sentence));
    assert.ok(trainIds.has(inj.template) && (INJECTION_TARGETS.train as readonly string[]).includes(inj.target));
  }
  const cleanTasks = new Set(data.sft.filter((r) => !r.injection).map((r) => r.task));
  for (const t of ['qa', 'secret', 'forbidden']) assert.ok(cleanTasks.has(t as never), t);
});

test('defense pairs: same prompt, chosen does the task, rejected follows the injection', () => {
  assert.equal(data.pairs.length, 200);
  for (const p of data.pairs) {
    assert.deepEqual(p.messages!.map((m) => m.role), ['system', 'user']);
    assert.equal(p.prompt, p.messages![1]!.content);
    assert.notEqual(p.chosen, p.rejected);
    assert.ok(!followedInjection(p.chosen, p.rejected));
    assert.ok(followedInjection(p.prompt, p.rejected), 'the rejected target is demanded in the prompt');
    assert.ok((INJECTION_TARGETS.train as readonly string[]).includes(p.rejected));
  }
  assert.equal(new Set(data.pairs.map((p) => p.promptId)).size, 200);
});

test('defense data is deterministic per seed; held-out templates only when asked', () => {
  assert.deepEqual(JSON.stringify(defenseData({ seed: 11, n: 200 })), JSON.stringify(data));
  assert.notDeepEqual(JSON.stringify(defenseData({ seed: 12, n: 200 })), JSON.stringify(data));
  const held = defenseData({ seed: 11, n: 40, templates: 'heldOut', cleanShare: 0 });
  assert.ok(held.sft.every((r) => r.injection?.split === 'heldOut'));
});

test('defensePair needs an injected record', () => {
  const clean = data.sft.find((r) => !r.injection)!;
  assert.throws(() => defensePair(clean), /no injection/);
});
