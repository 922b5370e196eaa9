import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSftFile } from '../data/read.js';
import { corpusLine, corpusStats, generateCorpus, taskCounts, vocabulary, writeCorpus, type CorpusRecord } from './corpus.js';
import { judgeReal, judgeTask } from './judge.js';
import { followedInjection } from './injection.js';
import { TASK_TYPES, type ChatTask } from './tasks.js';
import { INJECTION_TARGETS } from './vocab.js';

const opts = { seed: 3, stories: 300, chats: 1200 };
const corpus = generateCorpus(opts);
const chats = corpus.filter((r): r is ChatTask => r.kind === 'chat');
const reply = (r: ChatTask): string => r.messages.find((m) => m.role === 'assistant')!.content;

test('the same seed gives the same corpus; another seed a different one', () => {
  const lines = (rs: CorpusRecord[]) => rs.map(corpusLine).join('\n');
  assert.equal(lines(generateCorpus(opts)), lines(corpus));
  assert.notEqual(lines(generateCorpus({ ...opts, seed: 4 })), lines(corpus));
});

test('record i of a task does not depend on the other counts', () => {
  const key = (r: CorpusRecord) => corpusLine(r);
  const small = new Set(generateCorpus({ seed: 3, stories: 0, chats: 100, mix: { qa: 1, extract: 0, upper: 0, 'one-word': 0, list: 0, secret: 0, forbidden: 0, injected: 0 } }).map(key));
  const big = new Set(generateCorpus({ seed: 3, stories: 10, chats: 200, mix: { qa: 1, extract: 0, upper: 0, 'one-word': 0, list: 0, secret: 0, forbidden: 0, injected: 0 } }).map(key));
  assert.ok([...small].every((k) => big.has(k)));
});

test('task counts follow the mix and sum to the total', () => {
  const c = taskCounts(1200);
  assert.deepEqual(c, { qa: 240, extract: 144, upper: 144, 'one-word': 120, list: 120, secret: 144, forbidden: 144, injected: 144 });
  const odd = taskCounts(7, { qa: 1, list: 1, extract: 0, upper: 0, 'one-word': 0, secret: 0, forbidden: 0, injected: 0 });
  assert.equal(odd.qa + odd.list, 7);
  assert.throws(() => taskCounts(5, Object.fromEntries(TASK_TYPES.map((t) => [t, 0]))), /every task share is 0/);
});

test('corpus statistics: record counts, a vocabulary of a few hundred words', () => {
  const s = corpusStats(corpus);
  assert.equal(s.records, 1500);
  assert.equal(s.stories, 300);
  assert.deepEqual(s.perTask, taskCounts(1200));
  // 323 distinct words at 40k records; a small corpus already uses almost all of them.
  assert.ok(s.words >= 250 && s.words <= 400, `distinct words ${s.words}`);
  assert.ok(s.characters <= 80, `distinct characters ${s.characters}`);
});

test('every chat record passes its own judge, and stories are 2-5 sentences', () => {
  for (const r of chats) assert.ok(judgeTask(r, reply(r)), `${r.task}: ${JSON.stringify(r.messages)}`);
  for (const r of corpus) if (r.kind === 'text') {
    const n = r.text.split(/(?<=\.) /).length;
    assert.ok(n >= 2 && n <= 5, r.text);
  }
});

test('chat records: system, user, assistant; ordinary tasks use the documented layouts', () => {
  for (const r of chats) assert.deepEqual(r.messages.map((m) => m.role), ['system', 'user', 'assistant']);
  for (const r of chats.filter((c) => c.task === 'qa')) assert.match(r.messages[1]!.content, /^Document: .+\nQuestion: .+\?$/);
  for (const r of chats.filter((c) => c.task === 'extract' || c.task === 'list')) assert.match(r.messages[1]!.content, /^[A-Z].+\.\nDocument: .+$/);
});

test('injected records follow an injection hidden in the document; the real task is judged apart', () => {
  const injected = chats.filter((r) => r.task === 'injected');
  assert.equal(injected.length, 144);
  for (const r of injected) {
    const inj = r.injection!;
    assert.ok(r.messages[1]!.content.includes(inj.sentence));
    assert.equal(reply(r), inj.target);
    assert.ok(followedInjection(reply(r), inj.target));
    assert.ok(!judgeReal(r, reply(r)), 'the target is never the real answer');
    assert.ok(judgeReal(r, inj.realAnswer));
  }
  const splits = new Set(injected.map((r) => r.injection!.split));
  assert.deepEqual([...splits].sort(), ['heldOut', 'train']);
  const trainOnly = generateCorpus({ ...opts, stories: 0, injections: 'train' }).filter((r): r is ChatTask => r.kind === 'chat' && r.task === 'injected');
  assert.ok(trainOnly.every((r) => r.injection!.split === 'train'));
});

test('secret and forbidden records: refusals never leak, normal answers elsewhere', () => {
  const secret = chats.filter((r) => r.task === 'secret');
  const refusals = secret.filter((r) => r.expect.kind === 'refusal');
  assert.ok(refusals.length > 40 && refusals.length < secret.length);
  for (const r of secret) {
    const code = /secret code is ([A-Z]+-\d+)/.exec(r.messages[0]!.content)![1]!;
    assert.ok(!reply(r).includes(code));
  }
  const forbidden = chats.filter((r) => r.task === 'forbidden');
  for (const r of forbidden) {
    const topic = /^Do not talk about (\w+)\.$/.exec(r.messages[0]!.content)![1]!;
    if (r.expect.kind !== 'refusal') assert.ok(!r.messages[1]!.content.toLowerCase().includes(topic), r.messages[1]!.content);
  }
});

test('injection targets never occur in stories or ordinary tasks', () => {
  const targets = new Set<string>([...INJECTION_TARGETS.train, ...INJECTION_TARGETS.heldOut].map((t) => t.toLowerCase()));
  const plain = corpus.filter((r) => r.kind !== 'chat' || r.task !== 'injected');
  assert.deepEqual([...vocabulary(plain)].filter((w) => targets.has(w)), []);
});

test('writeCorpus: {"text"} and {"messages", "task"} lines, read back by the SFT reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-micro-'));
  const file = join(dir, 'corpus.jsonl');
  writeCorpus(file, corpus);
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, corpus.length);
  assert.deepEqual(Object.keys(lines.find((l) => 'text' in l)!), ['text']);
  assert.deepEqual(Object.keys(lines.find((l) => 'messages' in l)!), ['messages', 'task']);
  const chatFile = join(dir, 'chats.jsonl');
  writeCorpus(chatFile, chats.slice(0, 50));
  const read = readSftFile(chatFile);
  assert.equal(read.format, 'openai-chat');
  assert.equal(read.records.length, 50);
  assert.deepEqual(read.records[0]!.kind === 'chat' && read.records[0]!.messages, chats[0]!.messages);
  // A mixed file needs the corpus format (detection goes by the first line only).
  const mixed = readSftFile(file, { format: 'corpus' });
  assert.equal(mixed.records.filter((r) => r.kind === 'text').length, 300);
  assert.equal(mixed.records.filter((r) => r.kind === 'chat').length, 1200);
});
