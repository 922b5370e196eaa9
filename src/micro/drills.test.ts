import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../util/random.js';
import { generateCorpus } from './corpus.js';
import { makeChatDrill, makeCopyDrill, makeCueDrill, makeDrill } from './drills.js';
import { DEFAULT_SYSTEM } from './tasks.js';

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

test('a copy drill repeats its list of 4-10 distinct words; drills and copies join the corpus as text records', () => {
  const lengths = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const [words, repeat] = makeCopyDrill(rng(i)).split(' = ') as [string, string];
    assert.equal(repeat, words);
    const list = words.split(' ');
    assert.equal(new Set(list).size, list.length);
    lengths.add(list.length);
  }
  assert.deepEqual([...lengths].sort((a, b) => a - b), [4, 5, 6, 7, 8, 9, 10]);
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

test('a chat drill: the first turn laid out as the chat tasks are, 3-6 replies that come from the document', () => {
  const layouts = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const msgs = makeChatDrill(rng(i));
    assert.deepEqual(msgs[0], { role: 'system', content: DEFAULT_SYSTEM });
    const turns = msgs.slice(1);
    assert.ok(turns.length >= 6 && turns.length <= 12 && turns.length % 2 === 0, `chat drill ${i}: ${turns.length} turns`);
    turns.forEach((m, j) => assert.equal(m.role, j % 2 === 0 ? 'user' : 'assistant'));
    const first = turns[0]!.content;
    const m = /^Document: (.*)\nQuestion: .*\?( Answer in one word\.)?$/s.exec(first) ?? /^[^\n]*\.\nDocument: (.*)$/s.exec(first);
    assert.ok(m, `chat drill ${i}: first turn "${first}"`);
    layouts.add(first.startsWith('Document: ') ? 'question' : 'instruction');
    const doc = m[1]!.toLowerCase();
    for (let j = 2; j < turns.length; j += 2) assert.ok(!turns[j]!.content.includes('Document:'), `chat drill ${i}: the document is given once`);
    for (let j = 1; j < turns.length; j += 2) {
      const asked = turns[j - 1]!.content.toLowerCase();
      const items = turns[j]!.content.split('\n').map((l) => l.replace(/^- /, '').toLowerCase());
      for (const item of items) assert.ok(doc.includes(item) || asked.includes(item), `chat drill ${i}: reply "${item}" is neither in the document nor the question`);
    }
  }
  assert.deepEqual([...layouts].sort(), ['instruction', 'question']);
  assert.deepEqual(makeChatDrill(rng(3)), makeChatDrill(rng(3)));
  const c = generateCorpus({ seed: 1, stories: 0, chats: 4, chatDrills: 6 });
  assert.equal(c.filter((r) => r.kind === 'dialogue').length, 6);
});
