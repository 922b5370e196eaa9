import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../util/random.js';
import { generateCorpus } from './corpus.js';
import { makeCopyDrill, makeCueDrill, makeDrill } from './drills.js';

test('a drill is a document and 4-8 answered questions whose answers come from the document', () => {
  for (let i = 0; i < 200; i++) {
    const lines = makeDrill(rng(i)).split('\n');
    assert.match(lines[0]!, /^Document: [A-Z]/);
    const doc = lines[0]!.toLowerCase();
    const answers = lines.map((l, j) => (l.startsWith('Answer:') ? j : -1)).filter((j) => j > 0);
    assert.ok(answers.length >= 4 && answers.length <= 8, `drill ${i}: ${answers.length} answers`);
    for (const j of answers) {
      const a = lines[j]!.slice('Answer:'.length).trim();
      const items = a === '' ? lines.slice(j + 1).filter((l) => l.startsWith('- ')).map((l) => l.slice(2)) : [a];
      assert.ok(items.length > 0, `drill ${i}: empty answer`);
      const asked = lines[j - 1]!;
      for (const item of items) {
        if (/^Write .* in upper case\.?$|^Write in upper case:|^Repeat in upper case:/.test(asked)) assert.equal(item, item.toUpperCase());
        const inQuestion = asked.toLowerCase().includes(item.toLowerCase());
        assert.ok(doc.includes(item.toLowerCase()) || inQuestion, `drill ${i}: answer "${item}" to "${asked}" is neither in the document nor the question`);
      }
    }
  }
  assert.equal(makeDrill(rng(5)), makeDrill(rng(5)));
});

test('a copy drill repeats its word list; drills and copies join the corpus as text records', () => {
  for (let i = 0; i < 50; i++) {
    const [words, repeat] = makeCopyDrill(rng(i)).split(' = ') as [string, string];
    assert.equal(repeat, words);
    assert.equal(words.split(' ').length, 6);
  }
  const c = generateCorpus({ seed: 1, stories: 0, chats: 10, drills: 5, copies: 3 });
  assert.equal(c.length, 18);
  assert.equal(c.filter((r) => r.kind === 'text' && r.text.startsWith('Document: ')).length, 5);
  assert.equal(c.filter((r) => r.kind === 'text' && r.text.includes(' = ')).length, 3);
});

test('a cue drill is a short document and one cue whose answer is in the document', () => {
  const kinds = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const text = makeCueDrill(rng(i));
    const m = /^(.*?\.) (Person:|Place:|Animal:|Question: .*\? Answer:) (\S+)$/.exec(text);
    assert.ok(m, `cue drill ${i}: ${text}`);
    const [, doc, cue, answer] = m;
    kinds.add(cue!.split(' ')[0]!);
    assert.ok(doc!.includes(answer!), `cue drill ${i}: "${answer}" not in "${doc}"`);
    assert.ok(doc!.split('. ').length <= 3);
  }
  assert.deepEqual([...kinds].sort(), ['Animal:', 'Person:', 'Place:', 'Question:']);
});
