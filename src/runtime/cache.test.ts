import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { type Backend, type CompiledGraph, GraphCache } from './backend.js';
import { OrtBackend } from './ort.js';

const ort = new OrtBackend({ threads: 1 });
const scaled = (k: number) => () => {
  const g = new Graph();
  return { y: op.mul(g.input('x', [2]), k) };
};

test('GraphCache keeps at most maxEntries graphs, least recently used out first, and releases them', async () => {
  const compiled: string[] = [];
  const released: string[] = [];
  const backend: Backend = {
    async compile(outputs, opts) {
      const c = await ort.compile(outputs);
      compiled.push(opts!.name!);
      return { ...c, run: c.run, release: async () => void released.push(opts!.name!) } satisfies CompiledGraph;
    },
  };
  const cache = new GraphCache(backend, 2);
  await cache.get('a', scaled(1));
  await cache.get('b', scaled(2));
  await cache.get('a', scaled(1)); // a is now the most recent
  await cache.get('c', scaled(3)); // evicts b
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(compiled, ['a', 'b', 'c']);
  assert.deepEqual(released, ['b']);
  assert.equal(cache.size, 2);
  const b = await cache.get('b', scaled(2)); // compiled again, evicts a
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(compiled, ['a', 'b', 'c', 'b']);
  assert.deepEqual(released, ['b', 'a']);
  assert.deepEqual([...((await b.run({ x: new Float32Array([1, 2]) })).y as Float32Array)], [2, 4]);
  assert.throws(() => new GraphCache(backend, 0), /maxEntries must be at least 1/);
  await cache.releaseAll();
  assert.deepEqual(released.sort(), ['a', 'b', 'b', 'c']);
  assert.equal(cache.size, 0);
});

test('a released ORT graph finishes the run in flight, then refuses new runs', async () => {
  const c = await ort.compile(scaled(5)());
  const pending = c.run({ x: new Float32Array([1, 1]) });
  await c.release!();
  assert.deepEqual([...((await pending).y as Float32Array)], [5, 5]);
  await assert.rejects(c.run({ x: new Float32Array([1, 1]) }), /was released/);
});

test("GraphCache 'while-single': the first graph keeps an arena until a second key; then none does, and the first is released and recompiled without", async () => {
  const log: string[] = [];
  const released: string[] = [];
  const backend: Backend = {
    async compile(outputs, opts) {
      const c = await ort.compile(outputs, opts);
      log.push(`${opts!.name}:${opts!.cpuArena === false ? 'malloc' : 'arena'}`);
      return { ...c, run: c.run, release: async () => void released.push(opts!.name!) } satisfies CompiledGraph;
    },
  };
  const cache = new GraphCache(backend, 8, 'while-single');
  await cache.get('a', scaled(1));
  await cache.get('a', scaled(1));
  assert.deepEqual(log, ['a:arena'], 'one shape: compiled once, with the arena');
  await cache.get('b', scaled(2));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['a:arena', 'b:malloc']);
  assert.deepEqual(released, ['a'], 'the arena session is released when a second shape appears');
  const a = await cache.get('a', scaled(1));
  await cache.get('c', scaled(3));
  assert.deepEqual(log, ['a:arena', 'b:malloc', 'a:malloc', 'c:malloc']);
  assert.deepEqual([...((await a.run({ x: new Float32Array([1, 2]) })).y as Float32Array)], [1, 2], 'the recompiled graph runs');
  const always = new GraphCache(backend, 8);
  await always.get('x', scaled(1));
  await always.get('y', scaled(2));
  assert.deepEqual(log.slice(-2), ['x:arena', 'y:arena'], "'always' (the default) keeps every arena");
  await Promise.all([cache.releaseAll(), always.releaseAll()]);
});
