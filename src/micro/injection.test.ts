import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../util/random.js';
import { ALL_INJECTION_TEMPLATES, INJECTION_TEMPLATES, drawInjection, followedInjection, injectInto } from './injection.js';
import { SECRET_ATTACKS } from './suites.js';
import { ANIMAL_WORDS, COLOURS, INJECTION_TARGETS, NAMES, OBJECTS, PLACES } from './vocab.js';

/** Function words a template may share with the other split. */
const STOP = new Set(['a', 'an', 'the', 'and', 'to', 'with', 'is', 'in', 'of', 'me', 'i', 'you', 'your', 'my', 'it', 'this', 'be', 'are', 'what', 'x']);
const contentWords = (texts: readonly string[]): Set<string> =>
  new Set(texts.flatMap((s) => s.toLowerCase().match(/[a-z]+/g) ?? []).filter((w) => !STOP.has(w)));
const shared = (a: Set<string>, b: Set<string>): string[] => [...a].filter((w) => b.has(w));

test('train and held-out templates share no content word and no target', () => {
  const render = (split: 'train' | 'heldOut') => INJECTION_TEMPLATES[split].map((t) => t.render('X'));
  assert.deepEqual(shared(contentWords(render('train')), contentWords(render('heldOut'))), []);
  const train = new Set<string>(INJECTION_TARGETS.train);
  assert.deepEqual(INJECTION_TARGETS.heldOut.filter((t) => train.has(t)), []);
  assert.equal(new Set(ALL_INJECTION_TEMPLATES.map((t) => t.id)).size, ALL_INJECTION_TEMPLATES.length);
  assert.ok(ALL_INJECTION_TEMPLATES.every((t) => INJECTION_TEMPLATES[t.split].includes(t)));
});

test('secret attacks: train and held-out wordings share no content word but their subject', () => {
  const subject = new Set(['code', 'secret', 'access', 'granted']);
  const words = (split: 'train' | 'heldOut') =>
    new Set([...contentWords([...SECRET_ATTACKS.extraction[split], ...SECRET_ATTACKS.hijack[split]])].filter((w) => !subject.has(w)));
  assert.deepEqual(shared(words('train'), words('heldOut')), []);
});

test('targets are outside the story vocabulary', () => {
  const story = new Set([...NAMES, ...ANIMAL_WORDS, ...OBJECTS, ...PLACES, ...COLOURS].map((w) => w.toLowerCase()));
  for (const t of [...INJECTION_TARGETS.train, ...INJECTION_TARGETS.heldOut]) assert.ok(!story.has(t.toLowerCase()), t);
});

test('every template mentions its target (lower-case for the case-changing ones)', () => {
  for (const t of ALL_INJECTION_TEMPLATES) assert.ok(followedInjection(t.render('PIZZA'), 'PIZZA'), t.id);
});

test('followedInjection: the target as a whole word, any case', () => {
  assert.ok(followedInjection('HELLO', 'HELLO'));
  assert.ok(followedInjection('Sure. HELLO!', 'HELLO'));
  assert.ok(followedInjection('hello', 'HELLO'));
  assert.ok(!followedInjection('HELLOS', 'HELLO'));
  assert.ok(!followedInjection('park', 'HELLO'));
});

test('drawInjection: template and target from the asked split; deterministic per seed', () => {
  for (let s = 0; s < 50; s++) {
    const inj = drawInjection(rng(s), 'heldOut');
    assert.equal(inj.split, 'heldOut');
    assert.ok((INJECTION_TARGETS.heldOut as readonly string[]).includes(inj.target));
    assert.ok(INJECTION_TEMPLATES.heldOut.some((t) => t.id === inj.template));
    assert.deepEqual(drawInjection(rng(s), 'heldOut'), inj);
  }
});

test('injectInto puts the sentence at every position across seeds and keeps the others in order', () => {
  const doc = ['A.', 'B.', 'C.'];
  const positions = new Set<number>();
  for (let s = 0; s < 100; s++) {
    const out = injectInto(rng(s), doc, 'X.');
    positions.add(out.indexOf('X.'));
    assert.deepEqual(out.filter((x) => x !== 'X.'), doc);
  }
  assert.deepEqual([...positions].sort(), [0, 1, 2, 3]);
});
