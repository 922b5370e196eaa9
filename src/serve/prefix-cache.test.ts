import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KVCache } from '../model/lm.js';
import { PrefixCache } from './prefix-cache.js';

const entry = (slots: number, tokens: number): { kv: KVCache; tokens: number } => ({
  kv: { capacity: slots, k: [], v: [], len: [slots], adapter: null },
  tokens,
});
const seq = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

test('lookup returns the longest cached block prefix within the limit, per model', () => {
  const c = new PrefixCache(1000, 4);
  const ids = seq(20);
  c.insert('m', ids, entry(8, 8));
  c.insert('m', ids, entry(16, 16));
  assert.equal(c.lookup('m', ids, 19)?.tokens, 16);
  assert.equal(c.lookup('m', ids, 15)?.tokens, 8, 'the limit keeps a token to compute');
  assert.equal(c.lookup('m', [...seq(8), 99, ...seq(11, 9)], 19)?.tokens, 8, 'a different block 3 falls back to block 2');
  assert.equal(c.lookup('other', ids, 19), null, 'entries of one model are not shared with another');
  assert.equal(c.lookup('m', seq(20, 1), 19), null);
  assert.deepEqual([c.stats().hits, c.stats().misses, c.stats().hit_tokens], [3, 2, 32]);
});

test('least recently used entries are evicted past the slot budget; unaligned or oversized entries are skipped', () => {
  const c = new PrefixCache(20, 4);
  const a = seq(9);
  const b = seq(9, 100);
  const d = seq(9, 200);
  c.insert('m', a, entry(8, 8));
  c.insert('m', b, entry(8, 8));
  assert.ok(c.lookup('m', a, 8)); // a is now more recent than b
  c.insert('m', d, entry(8, 8)); // 24 > 20: evict b
  assert.ok(c.lookup('m', a, 8));
  assert.equal(c.lookup('m', b, 8), null);
  assert.ok(c.lookup('m', d, 8));
  assert.deepEqual([c.stats().entries, c.stats().slots, c.stats().evictions], [2, 16, 1]);
  c.insert('m', seq(30), entry(6, 6)); // not a block multiple
  c.insert('m', seq(30), entry(24, 24)); // larger than the whole budget
  assert.equal(c.stats().entries, 2);
  const off = new PrefixCache(0);
  off.insert('m', seq(40), entry(16, 16));
  assert.equal(off.lookup('m', seq(40), 39), null);
  assert.equal(off.stats().misses, 0, 'a disabled cache counts nothing');
});
