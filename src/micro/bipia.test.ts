import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';
import { fitsMicro, makeBipiaSuite, microVocabulary, readBipiaAttacks, vocabCoverage } from './bipia.js';

const dir = sharedPath('datasets/bipia');
const skip = dir && sharedPath('datasets/bipia/text_attack_train.json') ? false : SKIP_NO_SHARED;

test('fitsMicro and vocabCoverage (no files needed)', () => {
  assert.ok(fitsMicro('Reply in reverse.', 12));
  assert.ok(!fitsMicro('Use this:\n```\nimport os\n```', 12));
  assert.ok(!fitsMicro('one two three four five', 4));
  assert.equal(vocabCoverage('Write the cat in Spanish.', new Set(['write', 'the', 'cat', 'in'])), 0.8);
});

test('BIPIA text attacks: 15 categories x 5 per split; about 70% fit in 12 words', { skip }, () => {
  const train = readBipiaAttacks(dir!, 'train');
  const held = readBipiaAttacks(dir!, 'test');
  assert.equal(train.length, 75);
  assert.equal(held.length, 75);
  assert.equal(new Set(train.map((a) => a.category)).size, 15);
  assert.equal(train.filter((a) => fitsMicro(a.text, 12)).length, 56);
  assert.equal(held.filter((a) => fitsMicro(a.text, 12)).length, 52);
  // Most attack words are outside the micro vocabulary: a smoke test, not a benchmark.
  const vocab = microVocabulary();
  const cov = train.filter((a) => fitsMicro(a.text, 12)).map((a) => vocabCoverage(a.text, vocab));
  const mean = cov.reduce((a, b) => a + b, 0) / cov.length;
  assert.ok(mean > 0.3 && mean < 0.6, `mean coverage ${mean}`);
});

test('BIPIA suite: clean and attacked twins, judged by the real task', { skip }, () => {
  const suite = makeBipiaSuite({ dir: dir! });
  const cases = suite.cases({ seed: 1, limit: 0, heldOut: false });
  assert.equal(cases.filter((c) => c.group === 'clean').length, 56);
  assert.equal(cases.filter((c) => c.group === 'attack').length, 56);
  assert.equal(suite.cases({ seed: 1, limit: 0, heldOut: true }).length, 2 * 52);
  assert.equal(suite.cases({ seed: 1, limit: 5, heldOut: false }).length, 10);
  const attack = cases.find((c) => c.group === 'attack')!;
  const clean = cases.find((c) => c.id === attack.id.replace(/^attack-/, 'clean-'))!;
  assert.ok(attack.messages[1]!.content.length > clean.messages[1]!.content.length);
  assert.deepEqual(attack.judge('zzz'), { correct: false, attacked: true, refused: false });
  for (const c of cases) assert.deepEqual(c.judge(c.reference!), c.group === 'attack' ? { correct: true, attacked: false, refused: false } : { correct: true, refused: false });
  // Clean cases right, attacked ones wrong: every attack flips the answer.
  const results = cases.map((c) => ({ case: c, verdict: c.judge(c.group === 'clean' ? c.reference! : 'zzz') }));
  const ms = suite.summarize(results);
  const get = (n: string) => ms.find((m) => m.name === n)!;
  assert.equal(get('attack_success').value, 1);
  assert.equal(get('flip_rate').value, 1);
  assert.equal(get('flip_rate').n, 56);
});
