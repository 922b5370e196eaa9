/**
 * Documents and stories: short texts built from facts ("Tom went to the park."). Every fact
 * records what it mentions and the questions it answers, so a task built on a document knows
 * its answer. Within one document each fact kind appears at most once and every place, animal
 * and object is fresh, so each question has exactly one answer.
 */
import {
  ANIMALS, ANIMAL_VERBS, ANIMAL_WORDS, COLOURS, MOODS, NAMES, OBJECTS, PLACES, SIZES, WEATHER,
  intIn, joinAnd, pick, pickDistinct, withArticle, type Rand,
} from './vocab.js';

/** What a question asks for. */
export type Slot = 'person' | 'place' | 'animal' | 'object' | 'colour';

export interface QA {
  question: string;
  answer: string;
  slot: Slot;
  /** The document's sentence that answers it (filled in by makeDoc). */
  sentence?: string;
}

export interface Doc {
  sentences: string[];
  /** Entities in order of first mention. */
  people: string[];
  places: string[];
  animals: string[];
  objects: string[];
  questions: QA[];
}

export interface DocSpec {
  /** Number of fact sentences [min, max] (default [2, 4]). */
  sentences?: [number, number];
  /** People in the cast (default 1 or 2). */
  people?: number;
  /** Never mention these animals (a forbidden topic). */
  avoidAnimals?: readonly string[];
  /** Let "saw" and "found" facts list 2-3 animals / objects (for list tasks). */
  multi?: boolean;
  /** Accept only documents passing this check (rejection sampling). */
  accept?: (doc: Doc) => boolean;
}

/** Draws a document's entities: a fixed cast of people, every other entity fresh. */
class Cast {
  readonly people: string[];
  private used = new Set<string>();
  constructor(
    private rand: Rand,
    nPeople: number,
    avoid: readonly string[],
  ) {
    this.people = pickDistinct(rand, NAMES, nPeople);
    for (const a of avoid) this.used.add(a);
  }
  person = (): string => pick(this.rand, this.people);
  fresh(items: readonly string[], n = 1): string[] {
    const out = pickDistinct(this.rand, items.filter((i) => !this.used.has(i)), n);
    for (const o of out) this.used.add(o);
    return out;
  }
  one = (items: readonly string[]): string => this.fresh(items)[0]!;
}

interface Fact {
  sentence: string;
  qas: QA[];
  people: string[];
  places?: string[];
  animals?: string[];
  objects?: string[];
}

type FactMaker = (rand: Rand, cast: Cast, multi: boolean) => Fact | null;

const FACTS: Record<string, FactMaker> = {
  go: (_r, c) => {
    const [p, l] = [c.person(), c.one(PLACES)];
    const qas: QA[] = [
      { question: `Who went to the ${l}?`, answer: p, slot: 'person' },
      { question: `Where did ${p} go?`, answer: l, slot: 'place' },
    ];
    return { sentence: `${p} went to the ${l}.`, qas, people: [p], places: [l] };
  },
  see: (r, c, multi) => {
    const p = c.person();
    const as = c.fresh(ANIMAL_WORDS, multi ? intIn(r, 2, 3) : 1);
    const sentence = `${p} saw ${joinAnd(as.map(withArticle))}.`;
    if (as.length > 1) return { sentence, qas: [], people: [p], animals: as };
    const a = as[0]!;
    const qas: QA[] = [
      { question: `What animal did ${p} see?`, answer: a, slot: 'animal' },
      { question: `Who saw ${withArticle(a)}?`, answer: p, slot: 'person' },
    ];
    return { sentence, qas, people: [p], animals: as };
  },
  find: (r, c, multi) => {
    const p = c.person();
    const os = c.fresh(OBJECTS, multi ? intIn(r, 2, 3) : 1);
    if (os.length > 1) return { sentence: `${p} found ${joinAnd(os.map(withArticle))}.`, qas: [], people: [p], objects: os };
    const [o, col] = [os[0]!, pick(r, COLOURS)];
    const qas: QA[] = [
      { question: `What did ${p} find?`, answer: o, slot: 'object' },
      { question: `What colour is the ${o}?`, answer: col, slot: 'colour' },
      { question: `Who found the ${o}?`, answer: p, slot: 'person' },
    ];
    return { sentence: `${p} found ${withArticle(`${col} ${o}`)}.`, qas, people: [p], objects: os };
  },
  act: (r, c) => {
    const [a, l] = [c.one(ANIMAL_WORDS), c.one(PLACES)];
    if (!a) return null;
    const [base, past] = pick(r, ANIMAL_VERBS);
    const qas: QA[] = [
      { question: `Where did the ${a} ${base}?`, answer: l, slot: 'place' },
      { question: `What animal ${past} in the ${l}?`, answer: a, slot: 'animal' },
    ];
    return { sentence: `The ${a} ${past} in the ${l}.`, qas, people: [], animals: [a], places: [l] };
  },
  take: (_r, c) => {
    const [p, o, l] = [c.person(), c.one(OBJECTS), c.one(PLACES)];
    const qas: QA[] = [
      { question: `What did ${p} take to the ${l}?`, answer: o, slot: 'object' },
      { question: `Where did ${p} take the ${o}?`, answer: l, slot: 'place' },
      { question: `Who took the ${o}?`, answer: p, slot: 'person' },
    ];
    return { sentence: `${p} took ${withArticle(o)} to the ${l}.`, qas, people: [p], objects: [o], places: [l] };
  },
  pet: (r, c) => {
    const [p, a, col] = [c.person(), c.one(ANIMAL_WORDS), pick(r, COLOURS)];
    if (!a) return null;
    const qas: QA[] = [
      { question: `What animal does ${p} have?`, answer: a, slot: 'animal' },
      { question: `What colour is the ${a}?`, answer: col, slot: 'colour' },
      { question: `Who has ${withArticle(a)}?`, answer: p, slot: 'person' },
    ];
    return { sentence: `${p} has ${withArticle(`${col} ${a}`)}.`, qas, people: [p], animals: [a] };
  },
  sky: (r) => {
    const col = pick(r, COLOURS);
    return { sentence: `The sky was ${col}.`, qas: [{ question: 'What colour was the sky?', answer: col, slot: 'colour' }], people: [] };
  },
  give: (_r, c) => {
    if (c.people.length < 2) return null;
    const [p, q] = c.people as [string, string];
    const o = c.one(OBJECTS);
    const qas: QA[] = [
      { question: `Who got the ${o}?`, answer: q, slot: 'person' },
      { question: `What did ${p} give to ${q}?`, answer: o, slot: 'object' },
    ];
    return { sentence: `${p} gave ${withArticle(o)} to ${q}.`, qas, people: [p, q], objects: [o] };
  },
};
const FACT_KINDS = Object.keys(FACTS);

const addNew = (into: string[], items: readonly string[] = []): void => {
  for (const i of items) if (!into.includes(i)) into.push(i);
};

function tryDoc(rand: Rand, spec: DocSpec): Doc {
  const [lo, hi] = spec.sentences ?? [2, 4];
  const cast = new Cast(rand, spec.people ?? intIn(rand, 1, 2), spec.avoidAnimals ?? []);
  const doc: Doc = { sentences: [], people: [], places: [], animals: [], objects: [], questions: [] };
  const want = intIn(rand, lo, hi);
  for (const kind of pickDistinct(rand, FACT_KINDS, FACT_KINDS.length)) {
    if (doc.sentences.length >= want) break;
    const f = FACTS[kind]!(rand, cast, spec.multi ?? false);
    if (!f) continue;
    doc.sentences.push(f.sentence);
    doc.questions.push(...f.qas.map((q) => ({ ...q, sentence: f.sentence })));
    addNew(doc.people, f.people);
    addNew(doc.places, f.places);
    addNew(doc.animals, f.animals);
    addNew(doc.objects, f.objects);
  }
  return doc;
}

/** A document meeting `spec` (rejection sampling; throws if `accept` keeps failing). */
export function makeDoc(rand: Rand, spec: DocSpec = {}): Doc {
  for (let i = 0; i < 200; i++) {
    const doc = tryDoc(rand, spec);
    if (!spec.accept || spec.accept(doc)) return doc;
  }
  throw new Error('makeDoc: no document met the spec in 200 tries; loosen `accept`');
}

/** An entity kind a task can extract, and the Doc list that holds it. */
export type Entity = 'person' | 'place' | 'animal';
export const ENTITY_KEY = { person: 'people', place: 'places', animal: 'animals' } as const satisfies Record<Entity, keyof Doc>;

/** Documents with exactly one entity of `slot`: the answer to "extract the <slot>". */
export const single = (slot: Entity): ((d: Doc) => boolean) => {
  const key = ENTITY_KEY[slot];
  return (d) => d.sentences.length >= 2 && d.sentences.length <= 4 && d[key].length === 1;
};

/** Story-only sentences (no questions asked of them). */
const FILLERS: Array<(rand: Rand, people: string[]) => string> = [
  (r, ps) => `${pick(r, ps)} was ${pick(r, MOODS)}.`,
  (r, ps) => `Then ${pick(r, ps)} went home.`,
  (r, ps) => (ps.length > 1 ? `${ps[0]} and ${ps[1]} played with the ${pick(r, OBJECTS)}.` : `${ps[0]} played with the ${pick(r, OBJECTS)}.`),
  (r) => `The ${pick(r, ANIMAL_WORDS)} was ${pick(r, SIZES)}.`,
  (r, ps) => `${pick(r, ps)} waved to the ${pick(r, ANIMAL_WORDS)}.`,
  (r) => `The ${pick(r, ANIMAL_WORDS)} liked the ${pick(r, OBJECTS)}.`,
  (r, ps) => `${pick(r, ps)} liked the ${pick(r, Object.values(ANIMALS))}.`,
];

/** A short story of 2-5 sentences: an optional weather opening, facts and filler sentences. */
export function makeStory(rand: Rand): string {
  const n = intIn(rand, 2, 5);
  const opening = rand() < 0.3 ? [`It was ${withArticle(pick(rand, WEATHER))} day.`] : [];
  const doc = makeDoc(rand, { sentences: [1, Math.max(1, n - opening.length - 1)] });
  const people = doc.people.length > 0 ? doc.people : pickDistinct(rand, NAMES, 1);
  const body = doc.sentences.slice();
  while (opening.length + body.length < n) body.splice(intIn(rand, 1, body.length), 0, pick(rand, FILLERS)(rand, people));
  return [...opening, ...body].join(' ');
}
