import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlumError } from '../util/errors.js';
import { appendCandidates, readCandidates, type CandidateSet } from './candidates.js';

const dir = mkdtempSync(join(tmpdir(), 'plum-cands-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `c${n++}.jsonl`);

function failsWith(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PlumError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

const setA: CandidateSet = {
  promptId: 'a',
  prompt: 'Tell a story',
  messages: [{ role: 'user', content: 'Tell a story' }],
  candidates: [
    { id: 'a-0', text: 'Once', finishReason: 'stop', tokens: 1 },
    { id: 'a-1', text: 'Twice', finishReason: 'length', tokens: 2 },
  ],
  meta: { seed: 3 },
};
const setB: CandidateSet = { promptId: 'b', prompt: 'Hi', candidates: [{ id: 'b-0', text: 'Hello' }] };

test('appendCandidates + readCandidates round trip, one line per set', () => {
  const file = fresh();
  appendCandidates(file, setA);
  appendCandidates(file, setB);
  assert.deepEqual(readCandidates(file), [setA, setB]);
  assert.equal(readFileSync(file, 'utf8').split('\n').length, 3); // two lines + final newline
});

test('bad files: one line naming file:line and the fix', () => {
  const write = (text: string): string => {
    const f = fresh();
    writeFileSync(f, text);
    return f;
  };
  const a = JSON.stringify(setA);
  let f = write(`${a}\n{not json}\n${JSON.stringify(setB)}\n`);
  failsWith(() => readCandidates(f), `${f}:2: not valid JSON (Expected property name or '}'); each line must be one candidate set object`);
  f = write(`${a}\n${a}\n`);
  failsWith(() => readCandidates(f), `${f}:2: duplicate promptId "a" (first on line 1); keep one of the two lines`);
  f = write(JSON.stringify({ ...setB, candidates: [setB.candidates[0], setB.candidates[0]] }) + '\n');
  failsWith(() => readCandidates(f), `${f}:1: candidates[1].id "b-0" appears twice in this set; candidate ids must be unique`);
  f = write(JSON.stringify({ promptId: 'c', candidates: [] }) + '\n');
  failsWith(() => readCandidates(f), `${f}:1: prompt is missing; add "prompt": "..."`);
  f = write(JSON.stringify({ promptId: 'c', prompt: 'x', candidates: [] }) + '\n');
  failsWith(() => readCandidates(f), `${f}:1: candidates is empty; a set needs at least one candidate`);
  failsWith(() => readCandidates(join(dir, 'nope.jsonl')), `${join(dir, 'nope.jsonl')}: no such candidates file; check the path (plum sample writes one)`);
});

test('a partial last line (crash during an append): reported, or cut off with repair; the next append is clean', () => {
  const file = fresh();
  appendCandidates(file, setA);
  appendFileSync(file, JSON.stringify(setB).slice(0, 20)); // no newline: the write was cut short
  failsWith(() => readCandidates(file), `${file}:2: incomplete last line (an interrupted write); rerun plum sample with this --out to drop it, or delete the line`);
  const told: string[] = [];
  assert.deepEqual(readCandidates(file, { repair: true, onRepair: (m) => told.push(m) }), [setA]);
  assert.deepEqual(told, [`${file}:2: dropped a partial last line (left by an interrupted write)`]);
  assert.equal(readFileSync(file, 'utf8'), JSON.stringify(setA) + '\n');
  appendCandidates(file, setB);
  assert.deepEqual(readCandidates(file), [setA, setB]);
});

test('a complete last line without its newline is kept, and the next append starts a new line', () => {
  const file = fresh();
  writeFileSync(file, JSON.stringify(setA));
  appendCandidates(file, setB);
  assert.deepEqual(readCandidates(file), [setA, setB]);
});

test('appendCandidates validates the set', () => {
  failsWith(() => appendCandidates(fresh(), { ...setB, promptId: '' }), 'appendCandidates: promptId is empty; give every prompt an id');
});
