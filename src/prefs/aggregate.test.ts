import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, bradleyTerry, latestVotes, voterPreferences } from './aggregate.js';
import type { CandidateSet } from './candidates.js';
import type { Vote, VoteKind } from './store.js';

let nextId = 1;
function vote(voter: string, promptId: string, kind: VoteKind, target: string | string[] | null = null): Vote {
  return {
    id: nextId++,
    voter,
    promptId,
    kind,
    candidateId: typeof target === 'string' ? target : null,
    ranking: Array.isArray(target) ? target : null,
    createdAt: '2025-01-01T00:00:00.000Z',
  };
}
const set = (promptId: string, ids: string[], extra: Partial<CandidateSet> = {}): CandidateSet => ({
  promptId,
  prompt: `prompt ${promptId}`,
  candidates: ids.map((id) => ({ id, text: `text of ${id}` })),
  ...extra,
});

/** One MM iteration, written out independently of the implementation. */
function mmStep(wins: number[][], p: number[], prior: number): number[] {
  return p.map((pi, i) => {
    let wi = prior / 2;
    let d = prior / (pi + 1);
    p.forEach((pj, j) => {
      if (j === i) return;
      wi += wins[i]![j]!;
      d += (wins[i]![j]! + wins[j]![i]!) / (pi + pj);
    });
    return wi / d;
  });
}

// A beat B 2-1, A beat C 3-0, B and C split 1-1.
const WINS = [
  [0, 2, 3],
  [1, 0, 1],
  [0, 1, 0],
];

test('bradleyTerry: first MM iteration by hand, the next ones vs a written-out update', () => {
  // W + prior/2 = [5.5, 2.5, 1.5]; denominators from p = 1: 1/2 + 3/2 + 3/2 = 3.5, 1/2 + 3/2 + 2/2 = 3 (twice)
  const one = bradleyTerry(WINS, { maxIterations: 1 });
  const hand = [5.5 / 3.5, 2.5 / 3, 1.5 / 3];
  one.scores.forEach((s, i) => assert.ok(Math.abs(s - Math.log(hand[i]!)) < 1e-12, `score ${i}`));
  let p = [1, 1, 1];
  for (let k = 0; k < 5; k++) p = mmStep(WINS, p, 1);
  bradleyTerry(WINS, { maxIterations: 5 }).scores.forEach((s, i) => assert.ok(Math.abs(s - Math.log(p[i]!)) < 1e-12));
});

test('bradleyTerry: converges to the MAP fixed point (expected wins = actual wins), ordered A > B > C', () => {
  const { scores, iterations } = bradleyTerry(WINS);
  assert.ok(iterations < 1000, `iterations ${iterations}`);
  assert.ok(scores[0]! > scores[1]! && scores[1]! > scores[2]!);
  const p = scores.map(Math.exp);
  p.forEach((pi, i) => {
    let expected = pi / (pi + 1); // prior 1: one virtual game vs the reference
    p.forEach((pj, j) => j !== i && (expected += ((WINS[i]![j]! + WINS[j]![i]!) * pi) / (pi + pj)));
    const actual = WINS[i]!.reduce((a, b) => a + b, 0) + 0.5;
    assert.ok(Math.abs(expected - actual) < 1e-8, `candidate ${i}: expected ${expected} vs ${actual}`);
  });
  // The same MAP estimate from scipy.optimize.minimize (BFGS) on the log-posterior.
  const ref = [0.93847348, -0.15791235, -0.75099271];
  scores.forEach((s, i) => assert.ok(Math.abs(s - ref[i]!) < 1e-7, `score ${i} = ${s}`));
});

test('bradleyTerry: two candidates with a vanishing prior give the MLE odds; perfect separation stays finite and symmetric', () => {
  const { scores } = bradleyTerry([[0, 3], [1, 0]], { prior: 1e-6 });
  assert.ok(Math.abs(scores[0]! - scores[1]! - Math.log(3)) < 1e-5);
  const sep = bradleyTerry([[0, 5], [0, 0]]).scores;
  assert.ok(Number.isFinite(sep[0]!) && Number.isFinite(sep[1]!));
  assert.ok(Math.abs(sep[0]! + sep[1]!) < 1e-7); // ln p_A = -ln p_B by symmetry about the reference
  // p/(p+1/p)*5 + p/(p+1) = 5.5 at the fixed point
  const pa = Math.exp(sep[0]!);
  assert.ok(Math.abs((5 * pa) / (pa + 1 / pa) + pa / (pa + 1) - 5.5) < 1e-7);
  assert.deepEqual(bradleyTerry([[0, 0], [0, 0]]).scores, [0, 0]);
});

test('voterPreferences: best, worst, rank and thumbs; contradictions cancel', () => {
  const ids = ['a', 'b', 'c'];
  assert.deepEqual([...voterPreferences(ids, [vote('x', 'p', 'best', 'b')])].sort(), [['0,1', -1], ['1,2', 1]]);
  assert.deepEqual([...voterPreferences(ids, [vote('x', 'p', 'worst', 'a')])].sort(), [['0,1', -1], ['0,2', -1]]);
  assert.deepEqual([...voterPreferences(ids, [vote('x', 'p', 'rank', ['c', 'a', 'b'])])].sort(), [['0,1', 1], ['0,2', -1], ['1,2', -1]]);
  assert.deepEqual([...voterPreferences(ids, [vote('x', 'p', 'up', 'a'), vote('x', 'p', 'up', 'b'), vote('x', 'p', 'down', 'c')])].sort(), [['0,2', 1], ['1,2', 1]]);
  // best a says a > c, worst a says c > a: no preference on (a, c); best a and worst a also cancel (a, b)
  assert.deepEqual([...voterPreferences(ids, [vote('x', 'p', 'best', 'a'), vote('x', 'p', 'worst', 'a')])], []);
  assert.deepEqual([...voterPreferences(ids, [vote('x', 'p', 'all-bad')])], []);
});

test('latestVotes: a later vote of the same kind supersedes; thumbs per candidate', () => {
  const a = vote('ann', 'p', 'best', 'a');
  const b = vote('ann', 'p', 'best', 'b');
  const w = vote('ann', 'p', 'worst', 'c');
  const u1 = vote('ann', 'p', 'up', 'a');
  const u2 = vote('ann', 'p', 'up', 'b');
  const d1 = vote('ann', 'p', 'down', 'a');
  const other = vote('bob', 'p', 'best', 'a');
  assert.deepEqual(latestVotes([other, d1, u2, u1, w, b, a]).map((v) => v.id), [b.id, w.id, u2.id, d1.id, other.id]);
});

test('aggregate: four voters, BT pair best vs worst, disagreement 1/6', () => {
  const s = set('p', ['a', 'b', 'c', 'd']);
  const votes = [
    vote('ann', 'p', 'best', 'a'),
    vote('bob', 'p', 'rank', ['a', 'b', 'c', 'd']),
    vote('cat', 'p', 'worst', 'd'),
    vote('dan', 'p', 'best', 'b'),
  ];
  const { pairs, report } = aggregate([s], votes);
  assert.deepEqual(pairs, [{ prompt: 'prompt p', chosen: 'text of a', rejected: 'text of d', promptId: 'p' }]);
  const r = report.perPrompt[0]!;
  // wins: a>b 2, b>a 1, a>c 2, a>d 3, b>c 2, b>d 3, c>d 2
  const wins = [
    [0, 2, 2, 3],
    [1, 0, 2, 3],
    [0, 0, 0, 2],
    [0, 0, 0, 0],
  ];
  const bt = bradleyTerry(wins).scores;
  assert.deepEqual(Object.values(r.scores), bt);
  assert.equal(r.voters, 4);
  assert.equal(r.votes, 4);
  assert.equal(r.judgedPairs, 6);
  assert.equal(r.contestedPairs, 1); // (a, b): ann and bob say a, dan says b
  assert.equal(r.disagreement, 1 / 6);
  assert.equal(report.disagreement, 1 / 6);
  assert.equal(report.pairs, 1);
  assert.equal(report.voters, 4);
});

test('aggregate: tied top skipped, all-bad counted, thumbs give pairs and KTO rows, bad votes ignored', () => {
  const sets = [
    set('tie', ['a', 'b', 'c']),
    set('bad', ['a', 'b']),
    set('thumbs', ['a', 'b', 'c'], { messages: [{ role: 'user', content: 'prompt thumbs' }] }),
    set('none', ['a', 'b']),
  ];
  const votes = [
    vote('ann', 'tie', 'best', 'a'),
    vote('bob', 'tie', 'best', 'b'),
    vote('ann', 'bad', 'all-bad'),
    vote('ann', 'thumbs', 'up', 'a'),
    vote('ann', 'thumbs', 'down', 'c'),
    vote('ann', 'thumbs', 'best', 'zzz'), // not a candidate
    vote('ann', 'elsewhere', 'best', 'a'), // prompt not in the sets
    vote('bob', 'bad', 'rank', ['a']), // partial ranking
  ];
  const { pairs, thumbs, report } = aggregate(sets, votes);
  assert.deepEqual(pairs, [
    { prompt: 'prompt thumbs', messages: [{ role: 'user', content: 'prompt thumbs' }], chosen: 'text of a', rejected: 'text of c', promptId: 'thumbs' },
  ]);
  assert.deepEqual(
    thumbs.map((t) => [t.promptId, t.completion, t.label, t.voter]),
    [
      ['thumbs', 'text of a', true, 'ann'],
      ['thumbs', 'text of c', false, 'ann'],
    ],
  );
  assert.deepEqual(
    report.perPrompt.map((r) => [r.promptId, r.skipped, r.pairs, r.allBad, r.up, r.down, r.voters]),
    [
      ['tie', 'tied-top', 0, 0, 0, 0, 2],
      ['bad', 'no-preferences', 0, 1, 0, 0, 1],
      ['thumbs', undefined, 1, 0, 1, 1, 1],
      ['none', 'no-preferences', 0, 0, 0, 0, 0],
    ],
  );
  const { perPrompt, ...summary } = report;
  assert.equal(perPrompt.length, 4);
  assert.deepEqual(summary, {
    prompts: 4,
    promptsWithVotes: 3,
    pairs: 1,
    ties: 1,
    voters: 2,
    allBad: 1,
    thumbs: 2,
    disagreement: 1, // (a, b) on "tie": ann says a, bob says b
    unknownPromptVotes: 1,
    invalidVotes: 2,
  });
});

test('aggregate with margin: every pair whose score gap reaches the margin', () => {
  const s = set('p', ['a', 'b', 'c']);
  const votes = [vote('ann', 'p', 'rank', ['c', 'b', 'a']), vote('bob', 'p', 'rank', ['c', 'a', 'b'])];
  const all = aggregate([s], votes, { margin: 1e-6 }).pairs.map((p) => [p.chosen.slice(-1), p.rejected.slice(-1)]);
  assert.deepEqual(all, [['c', 'a'], ['c', 'b']]); // a and b tie (1 win each)
  const { scores } = aggregate([s], votes).report.perPrompt[0]!;
  const gap = scores.c! - scores.a!;
  assert.deepEqual(aggregate([s], votes, { margin: gap + 1e-9 }).pairs, []);
  assert.throws(() => aggregate([s], votes, { prior: 0 }), /aggregate options: prior must be greater than 0 \(got 0\)/);
});
