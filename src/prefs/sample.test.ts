import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel } from '../model/init.js';
import { convertLlama2c } from '../model/llama2c.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';
import { PlumError } from '../util/errors.js';
import { readCandidates, type CandidateSet } from './candidates.js';
import { chatFor, promptHash, readPrompts, rowSeed, sampleCandidates, type PromptRecord, type SampleOptions } from './sample.js';

const dir = mkdtempSync(join(tmpdir(), 'plum-sample-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
function failsWith(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PlumError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

test('readPrompts: .txt lines and JSONL records; ids given or hashed from the content', () => {
  const txt = write('p.txt', 'Once upon a time\n\nThe dog\n');
  assert.deepEqual(readPrompts(txt), [
    { id: promptHash('Once upon a time'), prompt: 'Once upon a time', line: 1 },
    { id: promptHash('The dog'), prompt: 'The dog', line: 3 },
  ]);
  assert.equal(promptHash('Once upon a time'), 'd26049627369'); // sha256('"Once upon a time"'), 12 hex digits
  assert.match(promptHash('x'), /^[0-9a-f]{12}$/);
  const messages = [{ role: 'user', content: 'Hi' }];
  const jl = write('p.jsonl', [{ prompt: 'A', id: 'a' }, { messages }, { prompt: 'B', id: 7 }].map((r) => JSON.stringify(r)).join('\n'));
  assert.deepEqual(readPrompts(jl), [
    { id: 'a', prompt: 'A', line: 1 },
    { id: promptHash(messages), prompt: 'Hi', messages, line: 2 },
    { id: '7', prompt: 'B', line: 3 },
  ]);
});

test('readPrompts: errors name file:line and the fix', () => {
  let f = write('dup.txt', 'same\nother\nsame\n');
  failsWith(() => readPrompts(f), `${f}:3: prompt id "${promptHash('same')}" repeats line 1 (same text); give each prompt its own "id" or remove the repeat`);
  f = write('dup.jsonl', '{"prompt": "a", "id": "x"}\n{"prompt": "b", "id": "x"}\n');
  failsWith(() => readPrompts(f), `${f}:2: prompt id "x" repeats line 1; give each prompt its own "id" or remove the repeat`);
  f = write('both.jsonl', '{"prompt": "a", "messages": [{"role": "user", "content": "a"}]}\n');
  failsWith(() => readPrompts(f), `${f}:1: the record needs exactly one of "prompt" (text) or "messages" (a conversation)`);
  f = write('num.jsonl', '{"prompt": 3}\n');
  failsWith(() => readPrompts(f), `${f}:1: prompt must be a string (got number); put the text in quotes`);
  f = write('bad.jsonl', '{"prompt": "a"}\nprompt: b\n');
  failsWith(() => readPrompts(f), `${f}:2: not valid JSON (Unexpected token 'p', "prompt: b" is not valid JSON); write {"prompt": "..."} per line, or use a .txt file with one prompt per line`);
  failsWith(() => readPrompts(write('empty.txt', '\n')), `${join(dir, 'empty.txt')}: holds no prompts; add at least one`);
});

test('rowSeed depends on (seed, prompt id, k) only; chatFor adds the system message', () => {
  assert.equal(rowSeed(1, 'p', 0), rowSeed(1, 'p', 0));
  const seeds = new Set([rowSeed(1, 'p', 0), rowSeed(1, 'p', 1), rowSeed(2, 'p', 0), rowSeed(1, 'q', 0)]);
  assert.equal(seeds.size, 4);
  const p: PromptRecord = { id: 'x', prompt: 'Hi', line: 1 };
  assert.equal(chatFor(p, false), undefined);
  assert.deepEqual(chatFor(p, true, 'Be nice'), [{ role: 'system', content: 'Be nice' }, { role: 'user', content: 'Hi' }]);
  const own = [{ role: 'system', content: 'Mine' }, { role: 'user', content: 'Hi' }];
  assert.deepEqual(chatFor({ ...p, messages: own }, false, 'Be nice'), own);
});

const bin = sharedPath('models/stories260K/stories260K.bin');
const tok = sharedPath('models/stories260K/tok512.bin');
const skip = bin && tok ? false : SKIP_NO_SHARED;
const modelDir = join(dir, 'stories260K');
let model: LoadedModel;
before(() => {
  if (skip) return;
  convertLlama2c({ model: bin!, tokenizer: tok!, out: modelDir });
  model = loadModel(modelDir);
});

const PROMPTS = ['Once upon a time', 'Lily saw a big', 'The dog ran'];
const records = (texts: string[]): PromptRecord[] => texts.map((prompt, i) => ({ id: promptHash(prompt), prompt, line: i + 1 }));
const opts = (o: Partial<SampleOptions> = {}): SampleOptions => ({ n: 3, temperature: 1, topP: 1, topK: 0, seed: 7, maxTokens: 16, batchSize: 4, ...o });
async function collect(m: LoadedModel, prompts: PromptRecord[], o: SampleOptions): Promise<CandidateSet[]> {
  const out: CandidateSet[] = [];
  for await (const s of sampleCandidates(m, prompts, o)) out.push(s);
  return out;
}

test('stories260K: the same candidates whatever the batch size; stable ids; seeds matter', { skip }, async () => {
  const prompts = records(PROMPTS);
  const one = await collect(model, prompts, opts({ batchSize: 1 }));
  assert.deepEqual(await collect(model, prompts, opts({ batchSize: 4 })), one);
  assert.deepEqual(await collect(model, prompts, opts({ batchSize: 9 })), one);
  // a prompt sampled alone (as on resume) gets the same candidates
  assert.deepEqual(await collect(model, prompts.slice(2), opts()), one.slice(2));
  assert.deepEqual(one.map((s) => s.promptId), prompts.map((p) => p.id));
  assert.deepEqual(one[1]!.candidates.map((c) => c.id), [0, 1, 2].map((k) => `${prompts[1]!.id}-${k}`));
  for (const s of one) {
    assert.equal(new Set(s.candidates.map((c) => c.text)).size, 3, 'temperature 1: three different stories');
    for (const c of s.candidates) assert.ok(c.finishReason === 'stop' || (c.finishReason === 'length' && c.tokens === 16));
  }
  // plain prompts keep the completion's leading space (prompt + text reads as one story)
  assert.ok(one[1]!.candidates.every((c) => c.text.startsWith(' ')), JSON.stringify(one[1]!.candidates));
  const other = await collect(model, prompts, opts({ seed: 8 }));
  assert.notDeepEqual(other, one);
  const greedy = await collect(model, prompts.slice(0, 1), opts({ temperature: 0 }));
  assert.equal(new Set(greedy[0]!.candidates.map((c) => c.text)).size, 1);
});

test('chats: messages prompts and --chat use the template and are recorded in the set', async () => {
  const tiny = join(dir, 'tiny');
  initModel({ preset: 'tiny', seed: 1, out: tiny });
  const m = loadModel(tiny);
  const prompts: PromptRecord[] = [
    { id: 'plain', prompt: 'Hi', line: 1 },
    { id: 'conv', prompt: 'Bye', messages: [{ role: 'user', content: 'Bye' }], line: 2 },
  ];
  const sets = await collect(m, prompts, opts({ n: 2, maxTokens: 4, chat: true, system: 'S', meta: { model: 'tiny' } }));
  assert.deepEqual(sets.map((s) => s.messages), [
    [{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }],
    [{ role: 'system', content: 'S' }, { role: 'user', content: 'Bye' }],
  ]);
  assert.deepEqual(sets.map((s) => s.meta), [{ model: 'tiny' }, { model: 'tiny' }]);
  const plain = await collect(m, prompts.slice(0, 1), opts({ n: 1, maxTokens: 4 }));
  assert.equal(plain[0]!.messages, undefined);
});

const plum = (...args: string[]) => spawnSync(process.execPath, ['bin/plum.js', ...args], { encoding: 'utf8' });

test('plum sample: resumes (skips prompts already in --out), repairs a partial last line, same result as one run', { skip }, () => {
  const out = join(dir, 'cands.jsonl');
  const args = (prompts: string, o: string, batch: string) => ['sample', '--model', modelDir, '--prompts', prompts, '--n', '2', '--max-tokens', '12', '--seed', '3', '--batch-size', batch, '--out', o];
  let r = plum(...args(write('two.txt', PROMPTS.slice(0, 2).join('\n') + '\n'), out, '3'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${out}: wrote 2 prompts x 2 candidates\n`);
  const firstTwo = readFileSync(out, 'utf8');
  appendFileSync(out, '{"promptId": "half'); // an interrupted append
  const all = write('three.txt', PROMPTS.join('\n') + '\n');
  r = plum(...args(all, out, '3'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${out}: wrote 1 prompts x 2 candidates (2 prompts already there, skipped)\n`);
  assert.match(r.stderr, new RegExp(`^plum: ${out}:3: dropped a partial last line \\(left by an interrupted write\\)\n`));
  const text = readFileSync(out, 'utf8');
  assert.ok(text.startsWith(firstTwo));
  const once = join(dir, 'once.jsonl');
  r = plum(...args(all, once, '8'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(once, 'utf8'), text);
  assert.deepEqual(readCandidates(once).map((s) => s.meta), Array(3).fill({ model: modelDir, temperature: 1, topP: 1, topK: 0, seed: 3, maxTokens: 12 }));
  r = plum(...args(all, once, '8'));
  assert.equal(r.stdout, `${once}: all 3 prompts already sampled; nothing to do\n`);
  r = plum('sample', '--model', modelDir, '--prompts', all, '--n', '0', '--out', once);
  assert.equal(r.stderr, 'plum: sample: --n: Too small: expected number to be >=1\n');
  r = plum('sample', '--model', modelDir, '--prompts', all, '--n', '2', '--system', 'S', '--out', once);
  assert.equal(r.stderr, 'plum: sample: --system needs --chat (plain prompts are sent as text); add --chat or drop --system\n');
});
