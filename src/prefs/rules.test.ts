import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlumError } from '../util/errors.js';
import { aggregate } from './aggregate.js';
import type { CandidateSet } from './candidates.js';
import { castRuleVotes, isRefusal, loadModuleRule, parseRule, REFUSAL_PHRASES, scoreSets, votesForScores } from './rules.js';
import { VoteStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'plum-rules-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function failsWith(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PlumError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

const set = (promptId: string, texts: string[]): CandidateSet => ({
  promptId,
  prompt: `prompt ${promptId}`,
  candidates: texts.map((text, k) => ({ id: `${promptId}-${k}`, text })),
});

test('isRefusal: listed phrases near the start, any case, curly apostrophes', () => {
  assert.ok(REFUSAL_PHRASES.includes("I can't") && REFUSAL_PHRASES.includes('As an AI') && REFUSAL_PHRASES.includes("I won't"));
  for (const t of ["I can't help with that.", 'i cannot do this', 'I\u2019m sorry, but no.', 'As an AI, I do not have opinions.', "Well... I won't."]) assert.ok(isRefusal(t), t);
  for (const t of ['Sure! Here is a poem.', 'The cat sat on the mat.', `${'x'.repeat(200)} I cannot`]) assert.ok(!isRefusal(t), t);
});

test('built-in rules score candidates', async () => {
  const s = set('p', ["I'm sorry, I can't.", 'Here you go: 42', 'one two three four five six']);
  const score = async (spec: string) => (await scoreSets(parseRule(spec), [s]))[0];
  assert.deepEqual(await score('refusal'), [1, 0, 0]);
  assert.deepEqual(await score('no-refusal'), [0, 1, 1]);
  assert.deepEqual(await score('regex-must:\\d+'), [0, 1, 0]);
  assert.deepEqual(await score('regex-must:/HERE/i'), [0, 1, 0]);
  assert.deepEqual(await score('regex-must-not:sorry'), [0, 1, 1]);
  // words: 4, 4, 6; chars: 19, 15, 27
  assert.deepEqual(await score('length:5-'), [-1, -1, 0]);
  assert.deepEqual(await score('length:-4'), [0, 0, -2]);
  assert.deepEqual(await score('length:16-20:chars'), [0, -1, -7]);
  assert.equal(parseRule('length:1-9').name, 'length:1-9');
  assert.equal(parseRule('refusal', 'safe').name, 'safe');
});

test('bad rule specs: one line with the fix', () => {
  failsWith(() => parseRule('polite'), '--rule polite: unknown rule "polite"; use one of refusal, no-refusal, regex-must, regex-must-not, length, or --module FILE');
  failsWith(() => parseRule('regex-must'), '--rule regex-must: regex-must needs an argument, e.g. regex-must:PATTERN');
  failsWith(() => parseRule('refusal:x'), '--rule refusal:x: refusal takes no argument; use --rule refusal');
  failsWith(() => parseRule('length:9-3'), '--rule length:9-3: MIN 9 is larger than MAX 3; swap them');
  failsWith(() => parseRule('length:abc'), '--rule length:abc: expected length:MIN-MAX, length:MIN-MAX:chars, length:MIN- or length:-MAX (whole numbers; words by default)');
  failsWith(() => parseRule('regex-must:('), '--rule regex-must:(: invalid regular expression (Invalid regular expression: /(/: Unterminated group); fix the pattern');
});

test('votesForScores: distinct -> rank; ties -> up (top) / down (bottom); all equal -> nothing', () => {
  const s = set('p', ['a', 'b', 'c', 'd']);
  assert.deepEqual(votesForScores(s, [0.5, 2, -1, 1]), { outcome: 'ranked', votes: [{ promptId: 'p', kind: 'rank', ranking: ['p-1', 'p-3', 'p-0', 'p-2'] }] });
  assert.deepEqual(votesForScores(s, [1, 0, 1, 0.5]), {
    outcome: 'split',
    votes: [
      { promptId: 'p', kind: 'up', candidateId: 'p-0' },
      { promptId: 'p', kind: 'down', candidateId: 'p-1' },
      { promptId: 'p', kind: 'up', candidateId: 'p-2' },
    ],
  });
  assert.deepEqual(votesForScores(s, [3, 3, 3, 3]), { outcome: 'tied', votes: [] });
});

test('castRuleVotes into a VoteStore: idempotent reruns, module rules, aggregation of the votes', async () => {
  // lengths: p 16, 14, 20, 11; q 3, 3; r 7, 13; s 2, 2, 1
  const sets = [
    set('p', ["I can't do that.", 'Sure: 1, 2, 3.', 'As an AI I will not.', 'Here it is.']),
    set('q', ['No.', 'No!']),
    set('r', ['ok fine', "I won't do it"]),
    set('s', ['aa', 'bb', 'c']),
  ];
  const store = VoteStore.open(join(dir, 'votes.sqlite'));
  try {
    const rule = parseRule('no-refusal');
    const first = await castRuleVotes(store, rule, sets);
    assert.deepEqual(first, { voter: 'rule:no-refusal', prompts: 4, ranked: 1, split: 1, tied: 2, votes: 5, replaced: 0, meanScore: 8 / 11 });
    const listed = () => store.votes({ voter: 'rule:no-refusal' }).map((v) => [v.promptId, v.kind, v.candidateId, v.ranking]);
    const before = listed();
    assert.deepEqual(before, [
      ['p', 'down', 'p-0', null],
      ['p', 'up', 'p-1', null],
      ['p', 'down', 'p-2', null],
      ['p', 'up', 'p-3', null],
      ['r', 'rank', null, ['r-0', 'r-1']],
    ]);
    const again = await castRuleVotes(store, rule, sets);
    assert.equal(again.replaced, 5);
    assert.deepEqual(listed(), before);

    const mod = join(dir, 'shortest.mjs');
    writeFileSync(mod, 'export default (c) => -c.text.length;\n');
    const m = await loadModuleRule(mod);
    assert.equal(m.name, 'shortest');
    const r = await castRuleVotes(store, m, sets);
    assert.deepEqual([r.ranked, r.split, r.tied, r.votes], [2, 1, 1, 5]);
    const { pairs, report } = aggregate(sets, store.votes());
    assert.equal(report.voters, 2);
    assert.deepEqual(
      pairs.map((x) => [x.promptId, x.chosen, x.rejected]),
      [
        ['p', 'Here it is.', 'As an AI I will not.'], // short and answering beats long and refusing
        ['r', 'ok fine', "I won't do it"],
        ['s', 'c', 'bb'], // aa and bb tie at the bottom: the later one in input order
      ],
    );
    assert.equal(report.perPrompt[1]!.skipped, 'no-preferences');
  } finally {
    store.close();
  }
});

test('module rules: named export, missing function, bad scores', async () => {
  const named = join(dir, 'named.mjs');
  writeFileSync(named, 'export function score(c) { return c.text.includes("!") ? 1 : 0; }\n');
  const rule = await loadModuleRule(named, 'bang');
  assert.deepEqual(await scoreSets(rule, [set('p', ['a!', 'b'])]), [[1, 0]]);
  const empty = join(dir, 'empty.mjs');
  writeFileSync(empty, 'export const x = 1;\n');
  await assert.rejects(loadModuleRule(empty), { message: `--module ${empty}: exports no function; export function score(candidate, set) { return number } (or a default export)` });
  const nan = join(dir, 'nan.mjs');
  writeFileSync(nan, 'export default () => NaN;\n');
  await assert.rejects(scoreSets(await loadModuleRule(nan), [set('p', ['a'])]), { message: 'rule nan: score of prompt p candidate p-0 is NaN; a score must be a finite number' });
  await assert.rejects(loadModuleRule(join(dir, 'none.mjs')), { message: `--module ${join(dir, 'none.mjs')}: no such file; check the path` });
});
