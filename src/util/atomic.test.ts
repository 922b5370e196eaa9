import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeChunksAtomic, writeFileAtomic, writeJsonAtomic } from './atomic.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'plum-atomic-'));
}

test('writeFileAtomic writes strings and bytes, overwrites, and leaves no temp file', () => {
  const dir = tmp();
  try {
    const f = join(dir, 'sub', 'a.txt'); // parent folder is created
    writeFileAtomic(f, 'héllo');
    assert.equal(readFileSync(f, 'utf8'), 'héllo');
    writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...readFileSync(f)], [1, 2, 3]);
    assert.deepEqual(readdirSync(join(dir, 'sub')), ['a.txt']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeJsonAtomic uses 2-space indentation and a trailing newline', () => {
  const dir = tmp();
  try {
    const f = join(dir, 'x.json');
    writeJsonAtomic(f, { a: 1, b: [true] });
    assert.equal(readFileSync(f, 'utf8'), '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeChunksAtomic keeps the old file and removes the temp file when the producer throws', () => {
  const dir = tmp();
  try {
    const f = join(dir, 'c.bin');
    writeFileAtomic(f, 'old');
    function* broken(): Generator<Uint8Array> {
      yield new Uint8Array([9]);
      throw new Error('producer failed');
    }
    assert.throws(() => writeChunksAtomic(f, broken()), /producer failed/);
    assert.equal(readFileSync(f, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['c.bin']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
