import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { VoteStore } from './store.js';
import { parseCommand, runTerminalVoter } from './terminal.js';
import { SAMPLE_SETS, scratch } from './web/testing.js';

async function drive(store: VoteStore, voter: string, input: string) {
  const output = new PassThrough();
  let text = '';
  output.on('data', (b: Buffer) => (text += b.toString('utf8')));
  const result = await runTerminalVoter({ sets: SAMPLE_SETS, store, voter, input: Readable.from([input]), output });
  return { result, text };
}

test('parseCommand reads numbers, w<n>, r lists, letters; anything else is unknown', () => {
  assert.deepEqual(parseCommand(' 2 '), { kind: 'best', n: 2 });
  assert.deepEqual(parseCommand('w3'), { kind: 'worst', n: 3 });
  assert.deepEqual(parseCommand('W 1'), { kind: 'worst', n: 1 });
  assert.deepEqual(parseCommand('r 3 1 2'), { kind: 'rank', ns: [3, 1, 2] });
  assert.deepEqual(parseCommand('r3,1'), { kind: 'rank', ns: [3, 1] });
  assert.deepEqual(parseCommand('x'), { kind: 'all-bad' });
  assert.deepEqual(parseCommand('?'), { kind: 'help' });
  assert.deepEqual(parseCommand(''), { kind: 'empty' });
  assert.deepEqual(parseCommand('best'), { kind: 'unknown', text: 'best' });
});

test('the terminal voter, driven through its input: best, worst, ranking, all bad, undo, skip, errors', async () => {
  const tmp = scratch();
  const store = VoteStore.open(tmp.store);
  try {
    // p-1: worst 3 then best 2 | p-2: skip | p-3: rank 3 1 (2 implied) | p-2: 9 is no candidate, hello,
    // u (undoes the ranking: back to p-3) | p-3: rank 2 1 3 | p-2: all bad, and every prompt is voted
    const { result, text } = await drive(store, 'tess', ['w3', '2', 's', 'r 3 1', '9', 'hello', 'u', 'r 2 1 3', 'x', 'q', ''].join('\n'));
    assert.deepEqual(result, { cast: 5, undone: 1, stopped: 'done' });
    assert.deepEqual(
      store.votes({ voter: 'tess' }).map((v) => [v.promptId, v.kind, v.candidateId ?? v.ranking ?? null]),
      [
        ['p-1', 'worst', 'p-1-2'],
        ['p-1', 'best', 'p-1-1'],
        ['p-3', 'rank', ['p-3-1', 'p-3-0', 'p-3-2']],
        ['p-2', 'all-bad', null],
      ],
    );
    assert.match(text, /^Voting as tess on 3 prompts \(store .*votes\.sqlite\)\. Type \? for help\.\n/);
    assert.match(text, /── Prompt 1 of 3 · p-1 · you: 0 of 3 voted ─+\nWrite a haiku about the sea\.\n\n  \[1\] Waves fold into foam\n      salt wind combs/);
    assert.match(text, /saved: worst = \[3\] on prompt 1\n> saved: best = \[2\] on prompt 1\n/);
    assert.match(text, /saved: ranking 3 > 1 > 2 on prompt 3/);
    assert.match(text, /not saved: candidate "#9" is not a candidate of prompt "p-2"/);
    assert.match(text, /unknown command "hello"; type \? for help/);
    assert.match(text, /undone: ranking 3 > 1 > 2 on prompt 3\n\n── Prompt 3 of 3/);
    assert.match(text, /All 3 prompts voted by tess\.\n$/);
  } finally {
    store.close();
    tmp.cleanup();
  }
});

test('the terminal voter resumes at the first unvoted prompt, stops at q or the end of input', async () => {
  const tmp = scratch();
  const store = VoteStore.open(tmp.store);
  try {
    store.cast({ voter: 'ann', promptId: 'p-1', kind: 'all-bad' });
    const q = await drive(store, 'ann', 'q\n1\n');
    assert.deepEqual(q.result, { cast: 0, undone: 0, stopped: 'quit' });
    assert.match(q.text, /── Prompt 2 of 3 · p-2 · you: 1 of 3 voted/);
    assert.match(q.text, /1 of 3 prompts voted by ann\.\n$/);
    const eof = await drive(store, 'ann', '3\n');
    assert.deepEqual(eof.result, { cast: 1, undone: 0, stopped: 'eof' });
    assert.deepEqual([...store.votedPrompts('ann')].sort(), ['p-1', 'p-2']);
    const u = await drive(store, 'nobody', 'u\nq\n');
    assert.match(u.text, /nothing to undo\n/);
  } finally {
    store.close();
    tmp.cleanup();
  }
});
