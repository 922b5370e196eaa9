import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VoteStore } from '../../prefs/store.js';
import { scratch } from '../../prefs/web/testing.js';

const plum = (args: string[], input?: string) => spawnSync(process.execPath, ['bin/plum.js', ...args], { encoding: 'utf8', input });

/** Start `plum vote serve` as a child process; resolves with its URL once it prints it. */
function startServe(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['bin/plum.js', 'vote', 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /open (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => reject(new Error(`plum vote serve exited (${code}) before serving: ${err}`)));
  });
}

const exited = (child: ChildProcess) => new Promise<NodeJS.Signals | number | null>((done) => child.once('exit', (code, signal) => done(signal ?? code)));

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(new URL(path, url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

test('plum vote: bad options and a corrupt candidates file print one line and exit 1 before serving', () => {
  const tmp = scratch();
  try {
    const bad = join(tmp.dir, 'bad.jsonl');
    writeFileSync(bad, '{"promptId":"a","prompt":"x","candidates":[{"id":"a-0","text":"t"}]}\n{"promptId": "b", oops\n');
    const empty = join(tmp.dir, 'empty.jsonl');
    writeFileSync(empty, '');
    const cases: Array<[string[], RegExp]> = [
      [['vote', 'serve', '--store', tmp.store], /^plum: vote serve: --candidates: is required \(the JSONL file plum sample wrote\)\n$/],
      [['vote', 'serve', '--candidates', tmp.candidates], /^plum: vote serve: --store: is required/],
      [['vote', 'serve', '--candidates', tmp.candidates, '--store', tmp.store, '--port', '99999'], /^plum: vote serve: --port: "99999" is not a port from 0 to 65535/],
      [['vote', 'cli', '--candidates', tmp.candidates, '--store', tmp.store], /^plum: vote cli: --voter: is required \(the voter's name\)\n$/],
      [['vote', 'serve', '--candidates', bad, '--store', tmp.store], new RegExp(`^plum: ${bad}:2: .*\\n$`)],
      [['vote', 'serve', '--candidates', join(tmp.dir, 'missing.jsonl'), '--store', tmp.store], /^plum: .*missing\.jsonl: no such candidates file/],
      [['vote', 'serve', '--candidates', empty, '--store', tmp.store], /^plum: .*empty\.jsonl: no candidate sets; run plum sample to write some\n$/],
      [['vote', 'serve', '--candidates', tmp.candidates, '--store', tmp.candidates], /^plum: .*candidates\.jsonl: not a Plum vote store \(not an SQLite database\); pass another --store path\n$/],
    ];
    for (const [args, stderr] of cases) {
      const r = plum(args);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, stderr, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    assert.ok(!existsSync(tmp.store), 'no store is created for a bad run');
  } finally {
    tmp.cleanup();
  }
});

test('plum vote serve: votes answered 201 survive kill -9; a restart on the same store has them all', async () => {
  const tmp = scratch();
  const args = ['--candidates', tmp.candidates, '--store', tmp.store];
  try {
    const first = await startServe(args);
    const ids: number[] = [];
    for (const [voter, promptId, candidateId] of [['ann', 'p-1', 'p-1-0'], ['ann', 'p-2', 'p-2-1'], ['bob', 'p-1', 'p-1-2'], ['ann', 'p-3', 'p-3-2']]) {
      const r = await post(first.url, '/api/votes', { voter, promptId, kind: 'best', candidateId });
      assert.equal(r.status, 201);
      ids.push(r.json.id);
    }
    assert.equal((await post(first.url, '/api/undo', { voter: 'ann' })).json.undone.id, ids[3]);
    const last = await post(first.url, '/api/votes', { voter: 'bob', promptId: 'p-2', kind: 'rank', ranking: ['p-2-2', 'p-2-0', 'p-2-1'] });
    assert.equal(last.status, 201);
    // No pause, no shutdown: the process dies right after the last response.
    const gone = exited(first.child);
    first.child.kill('SIGKILL');
    assert.equal(await gone, 'SIGKILL');

    const second = await startServe(args);
    try {
      const res = await fetch(new URL('/api/progress?voter=ann', second.url));
      assert.deepEqual(await res.json(), { voter: 'ann', voted: 2, total: 3, overall: { votes: 4, voters: 2, prompts: 2 } });
      const store = VoteStore.open(tmp.store);
      assert.deepEqual(
        store.votes().map((v) => [v.id, v.voter, v.promptId, v.candidateId ?? v.ranking]),
        [
          [ids[0], 'ann', 'p-1', 'p-1-0'],
          [ids[1], 'ann', 'p-2', 'p-2-1'],
          [ids[2], 'bob', 'p-1', 'p-1-2'],
          [last.json.id, 'bob', 'p-2', ['p-2-2', 'p-2-0', 'p-2-1']],
        ],
      );
      store.close();
    } finally {
      const done = exited(second.child);
      second.child.kill('SIGTERM');
      assert.equal(await done, 0, 'SIGTERM stops the server cleanly');
    }
  } finally {
    tmp.cleanup();
  }
});

test('plum vote serve: a port in use is a one-line error', async () => {
  const tmp = scratch();
  try {
    const first = await startServe(['--candidates', tmp.candidates, '--store', tmp.store]);
    try {
      const port = new URL(first.url).port;
      const r = plum(['vote', 'serve', '--candidates', tmp.candidates, '--store', tmp.store, '--port', port]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr, `plum: port ${port} on 127.0.0.1 is already in use; choose another --port (0 picks a free one)\n`);
    } finally {
      first.child.kill('SIGKILL');
    }
  } finally {
    tmp.cleanup();
  }
});

test('plum vote cli reads commands from piped stdin into the same store', () => {
  const tmp = scratch();
  try {
    const r = plum(['vote', 'cli', '--candidates', tmp.candidates, '--store', tmp.store, '--voter', 'dan'], '1\nw2\nr 3 2 1\nq\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Voting as dan on 3 prompts/);
    assert.match(r.stdout, /2 of 3 prompts voted by dan\.\n$/);
    const store = VoteStore.open(tmp.store);
    assert.deepEqual(
      store.votes().map((v) => [v.voter, v.promptId, v.kind, v.candidateId ?? v.ranking]),
      [
        ['dan', 'p-1', 'best', 'p-1-0'],
        ['dan', 'p-2', 'worst', 'p-2-1'],
        ['dan', 'p-2', 'rank', ['p-2-2', 'p-2-1', 'p-2-0']],
      ],
    );
    store.close();
  } finally {
    tmp.cleanup();
  }
});
