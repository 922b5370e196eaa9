import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PlumError } from '../util/errors.js';
import { SCHEMA_VERSION, VoteError, VoteStore, nextPrompt, validateVote, voteProgress, type VoteTarget } from './store.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-store-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('cast returns the stored vote; votes() lists active votes in order, filtered by voter and prompt', () =>
  withDir((dir) => {
    const store = VoteStore.open(join(dir, 'v.sqlite'));
    const a = store.cast({ voter: 'ann', promptId: 'p1', kind: 'best', candidateId: 'p1-0' });
    assert.deepEqual({ ...a, createdAt: '' }, { id: 1, voter: 'ann', promptId: 'p1', kind: 'best', candidateId: 'p1-0', ranking: null, createdAt: '' });
    assert.ok(!Number.isNaN(Date.parse(a.createdAt)));
    const b = store.cast({ voter: 'bob', promptId: 'p1', kind: 'rank', ranking: ['p1-1', 'p1-0'] });
    const c = store.cast({ voter: 'ann', promptId: 'p2', kind: 'all-bad' });
    assert.deepEqual(b.ranking, ['p1-1', 'p1-0']);
    assert.equal(c.candidateId, null);
    assert.deepEqual(store.votes().map((v) => v.id), [1, 2, 3]);
    assert.deepEqual(store.votes({ voter: 'ann' }).map((v) => v.id), [1, 3]);
    assert.deepEqual(store.votes({ promptId: 'p1' }).map((v) => v.id), [1, 2]);
    assert.deepEqual(store.votes({ voter: 'ann', promptId: 'p1' }).map((v) => v.id), [1]);
    assert.deepEqual([...store.votedPrompts('ann')].sort(), ['p1', 'p2']);
    assert.deepEqual(store.summary(), { votes: 3, voters: 2, prompts: 2 });
    store.close();
  }));

test('undoLast marks only that voter\'s latest vote undone, one at a time, and keeps history', () =>
  withDir((dir) => {
    const file = join(dir, 'v.sqlite');
    const store = VoteStore.open(file);
    store.cast({ voter: 'ann', promptId: 'p1', kind: 'best', candidateId: 'p1-0' });
    store.cast({ voter: 'ann', promptId: 'p2', kind: 'worst', candidateId: 'p2-1' });
    store.cast({ voter: 'bob', promptId: 'p3', kind: 'up', candidateId: 'p3-0' });
    assert.equal(store.undoLast('ann')?.id, 2);
    assert.deepEqual(store.votes().map((v) => v.id), [1, 3]);
    assert.deepEqual([...store.votedPrompts('ann')], ['p1']);
    assert.equal(store.lastVote('ann')?.id, 1);
    assert.equal(store.undoLast('ann')?.id, 1);
    assert.equal(store.undoLast('ann'), null);
    assert.equal(store.undoLast('nobody'), null);
    assert.deepEqual(store.votes().map((v) => v.id), [3]);
    store.close();
    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT id, undone_at FROM votes ORDER BY id').all() as { id: number; undone_at: string | null }[];
    assert.deepEqual(rows.map((r) => [r.id, r.undone_at !== null]), [[1, true], [2, true], [3, false]]);
    db.close();
  }));

test('reopening keeps every vote, undo marks and the schema version; new ids continue', () =>
  withDir((dir) => {
    const file = join(dir, 'v.sqlite');
    let store = VoteStore.open(file);
    store.cast({ voter: 'ann', promptId: 'p1', kind: 'best', candidateId: 'p1-0' });
    store.cast({ voter: 'ann', promptId: 'p2', kind: 'down', candidateId: 'p2-0' });
    store.undoLast('ann');
    const before = store.votes();
    store.close();
    store = VoteStore.open(file);
    assert.deepEqual(store.votes(), before);
    assert.equal(store.cast({ voter: 'ann', promptId: 'p2', kind: 'all-bad' }).id, 3);
    store.close();
    const db = new Database(file, { readonly: true });
    assert.deepEqual(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get(), { value: String(SCHEMA_VERSION) });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
  }));

test('open refuses files that are not vote stores, and stores from a newer schema, with one-line errors', () =>
  withDir((dir) => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'hello, this is not a database at all\n');
    assert.throws(() => VoteStore.open(text), { name: 'PlumError', message: `${text}: not a Plum vote store (not an SQLite database); pass another --store path` });
    const other = join(dir, 'other.sqlite');
    let db = new Database(other);
    db.exec('CREATE TABLE t (x)');
    db.close();
    assert.throws(() => VoteStore.open(other), /an SQLite database but not a Plum vote store \(no meta table\)/);
    const newer = join(dir, 'newer.sqlite');
    VoteStore.open(newer).close();
    db = new Database(newer);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    assert.throws(() => VoteStore.open(newer), /schema v99 is newer than this Plum understands .*; upgrade plum$/);
  }));

const sets = new Map<string, VoteTarget>([
  ['p1', { promptId: 'p1', candidates: [{ id: 'p1-0' }, { id: 'p1-1' }, { id: 'p1-2' }] }],
]);

test('validateVote accepts good votes and names the field of bad ones', () => {
  validateVote(sets, { voter: 'a', promptId: 'p1', kind: 'best', candidateId: 'p1-2' });
  validateVote(sets, { voter: 'a', promptId: 'p1', kind: 'rank', ranking: ['p1-2', 'p1-0', 'p1-1'] });
  validateVote(sets, { voter: 'a', promptId: 'p1', kind: 'all-bad' });
  const bad: Array<[Parameters<typeof validateVote>[1], string, RegExp]> = [
    [{ voter: 'a', promptId: 'nope', kind: 'best', candidateId: 'p1-0' }, 'promptId', /^prompt "nope" is not in the candidates file$/],
    [{ voter: 'a', promptId: 'p1', kind: 'best', candidateId: 'p2-0' }, 'candidateId', /^candidate "p2-0" is not a candidate of prompt "p1" \(one of p1-0, p1-1, p1-2\)$/],
    [{ voter: 'a', promptId: 'p1', kind: 'worst' }, 'candidateId', /needs candidateId/],
    [{ voter: 'a', promptId: 'p1', kind: 'all-bad', candidateId: 'p1-0' }, 'candidateId', /takes no candidateId/],
    [{ voter: 'a', promptId: 'p1', kind: 'rank', ranking: ['p1-0', 'p1-1'] }, 'ranking', /each candidate of prompt "p1" once/],
    [{ voter: 'a', promptId: 'p1', kind: 'rank', ranking: ['p1-0', 'p1-0', 'p1-1'] }, 'ranking', /once/],
    [{ voter: 'a', promptId: 'p1', kind: 'rank' }, 'ranking', /once/],
    [{ voter: 'a', promptId: 'p1', kind: 'best', candidateId: 'p1-0', ranking: ['p1-0'] }, 'ranking', /takes no ranking/],
  ];
  for (const [v, field, message] of bad) {
    assert.throws(
      () => validateVote(sets, v),
      (e: unknown) => e instanceof VoteError && e instanceof PlumError && e.field === field && message.test(e.message),
      JSON.stringify(v),
    );
  }
});

test('nextPrompt walks file order from a prompt, wrapping, skipping voted ones; voteProgress counts file prompts', () =>
  withDir((dir) => {
    const list = ['a', 'b', 'c', 'd'].map((promptId) => ({ promptId }));
    const id = (s: { promptId: string } | null) => s?.promptId ?? null;
    assert.equal(id(nextPrompt(list, new Set())), 'a');
    assert.equal(id(nextPrompt(list, new Set(['a', 'b']))), 'c');
    assert.equal(id(nextPrompt(list, new Set(['b']), 'c')), 'd');
    assert.equal(id(nextPrompt(list, new Set(['b']), 'd')), 'a');
    assert.equal(id(nextPrompt(list, new Set(['a', 'b', 'd']), 'c')), 'c');
    assert.equal(id(nextPrompt(list, new Set(['a', 'b', 'c', 'd']), 'c')), null);
    const store = VoteStore.open(join(dir, 'v.sqlite'));
    store.cast({ voter: 'ann', promptId: 'a', kind: 'all-bad' });
    store.cast({ voter: 'ann', promptId: 'gone', kind: 'all-bad' });
    store.cast({ voter: 'bob', promptId: 'a', kind: 'all-bad' });
    assert.deepEqual(voteProgress(store, ['a', 'b'], 'ann'), { voter: 'ann', voted: 1, total: 2, overall: { votes: 3, voters: 2, prompts: 2 } });
    assert.deepEqual(voteProgress(store, ['a', 'b'], null).voted, 0);
    store.close();
  }));
