import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createDecodeStream, loadTokenizer, type PlumTokenizer } from '../model/tokenizer.js';
import { encodeChat } from '../model/load.js';
import { REPO_ROOT } from '../testing/shared.js';
import { CompletionText } from './completion-text.js';

/** One character per token id. */
const charTok = { createDecodeStream: () => createDecodeStream((ids) => String.fromCharCode(...ids), {}) } as unknown as PlumTokenizer;
const ids = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function run(text: string, stops: string[]): { deltas: string[]; value: string; stopped: boolean } {
  const t = new CompletionText(charTok, stops);
  const deltas: string[] = [];
  for (const id of ids(text)) {
    const r = t.push(id);
    if (r.delta) deltas.push(r.delta);
    if (r.stopped) return { deltas, value: t.value, stopped: true };
  }
  const rest = t.finish();
  if (rest) deltas.push(rest);
  return { deltas, value: t.value, stopped: false };
}

test('without stop strings every token is sent at once and the deltas make the text', () => {
  const r = run('hello world', []);
  assert.deepEqual(r.deltas, [...'hello world']);
  assert.equal(r.value, 'hello world');
});

test('a stop string ends the text before it and is never sent, even split over tokens', () => {
  const r = run('say END now', ['END']);
  assert.equal(r.stopped, true);
  assert.equal(r.value, 'say ');
  assert.equal(r.deltas.join(''), 'say ');
  assert.ok(!r.deltas.some((d) => d.includes('E')), 'the start of the stop string was held back');
});

test('held-back text that does not become a stop string is released, and the earliest of several stops wins', () => {
  const r = run('an EN and E. Later STOP', ['END', '.']);
  assert.equal(r.value, 'an EN and E');
  assert.equal(r.deltas.join(''), r.value);
  const r2 = run('abcab', ['abd']);
  assert.equal(r2.value, 'abcab');
  assert.equal(r2.deltas.join(''), 'abcab', 'a partial stop at the end is sent when the choice ends');
});

test('the first token decodes in the context of the prompt: no stray space after a chat header (space-after-newline tokenizer)', () => {
  const tok = loadTokenizer(join(REPO_ROOT, 'models', 'plum-micro'));
  const prompt = encodeChat(tok, [{ role: 'user', content: 'Write in upper case: red ball' }]);
  const full = [...tok.encode(tok.decode(prompt) + 'RED BALL')] as number[];
  assert.deepEqual(full.slice(0, prompt.length), prompt);
  const generated = full.slice(prompt.length);
  const text = (context: number[] | undefined) => {
    const t = new CompletionText(tok, [], context);
    for (const id of generated) t.push(id);
    t.finish();
    return t.value;
  };
  assert.equal(text(prompt), 'RED BALL');
  assert.equal(text(undefined), ' RED BALL', 'without the prompt the line-start space shows');
});
