/**
 * Reading drills: one document followed by every question the tasks can ask of it, each with its
 * answer, as plain text with loss on every token:
 *
 *   Document: Tom went to the park. Tom has a red cat.
 *   Question: Where did Tom go?
 *   Answer: park
 *   Write the animal in the document in upper case.
 *   Answer: CAT
 *
 * Why: in a chat record only the assistant turn is trained, a few tokens out of ~80, so a tiny
 * model sees little of the skill it needs most, copying a word out of a document. A drill puts
 * five to ten such answers in ~150 tokens, worded as the chat tasks word them, so the skill
 * transfers to the chat format.
 */
import { ENTITY_KEY, makeDoc, type Doc, type Entity } from './docs.js';
import { DEFAULT_SYSTEM, EXTRACT, UPPER_DOC, UPPER_PLAIN, upperPhrase, type MicroMessage } from './tasks.js';
import { ANIMAL_WORDS, COLOURS, NAMES, OBJECTS, PLACES, intIn, pick, pickDistinct, type Rand } from './vocab.js';

/** A question or instruction and its answer; `plain` when it does not need the document. */
type Item = [prompt: string, answer: string, plain?: true];

function docItems(rand: Rand, doc: Doc): Item[] {
  const items: Item[] = doc.questions.map((q) => [`Question: ${q.question}`, q.answer]);
  for (const q of doc.questions) if (q.slot === 'colour') items.push([`Question: ${q.question.replace(/\?$/, ' in the document?')} Answer in one word.`, q.answer]);
  for (const e of ['person', 'place', 'animal'] as Entity[]) {
    const found = doc[ENTITY_KEY[e]];
    if (found.length !== 1) continue;
    items.push([EXTRACT[e], found[0]!], [UPPER_DOC[e], found[0]!.toUpperCase()]);
    if (e === 'animal') items.push(['Question: What animal is in the document? Answer in one word.', found[0]!]);
  }
  for (const key of ['animals', 'objects'] as const) {
    if (doc[key].length >= 2) items.push([`List the ${key} in the document.`, doc[key].map((i) => `- ${i}`).join('\n')]);
  }
  if (rand() < 0.5) {
    const phrase = upperPhrase(rand);
    items.push([pick(rand, UPPER_PLAIN)(phrase), phrase.toUpperCase(), true]);
  }
  return items;
}

/** One drill: a document (sometimes with 2-3 animals or objects per sentence) and up to `maxItems` questions with answers. */
export function makeDrill(rand: Rand, maxItems = 8): string {
  const doc = makeDoc(rand, { multi: rand() < 0.3, sentences: [2, 4] });
  const items = pickDistinct(rand, docItems(rand, doc), intIn(rand, Math.min(4, maxItems), maxItems));
  return [`Document: ${doc.sentences.join(' ')}`, ...items.map(([q, a]) => `${q}\nAnswer:${a.includes('\n') ? '\n' : ' '}${a}`)].join('\n');
}

/**
 * A copy drill: 4-10 distinct words from the vocabulary, " = ", and the same words again. The
 * copy needs an induction head (find the current word earlier in the row, say the word after
 * it), the circuit that copying a word out of a document reuses. Measured on the micro preset
 * from random weights (`scripts/micro-probe.ts --probe copy`, batch 32): at lr 3e-3 it was
 * not learned in 1000 steps (0/50 held-out; nor in 2000 steps in an earlier try); at lr 1e-3
 * the loss falls steeply from step ~500 and the copy is 50/50 held-out after 3000 steps.
 */
const COPY_POOL = [...NAMES, ...ANIMAL_WORDS, ...OBJECTS, ...PLACES, ...COLOURS];
export function makeCopyDrill(rand: Rand): string {
  const words = pickDistinct(rand, COPY_POOL, intIn(rand, 4, 10)).join(' ');
  return `${words} = ${words}`;
}

/**
 * A cue drill: a short document (2-3 sentences) and one answer in the fewest tokens: an entity
 * cue (`Place: village`, `Person: Mia`, `Animal: frog`) or one of its questions
 * (`Question: Where did Mia go? Answer: castle`). One skill, short sequences: measured on the
 * micro preset, "<document> Place:" alone is learned to 50/50 held-out in 800 steps, while the
 * same lookup inside the full task mix was not learned in 2000 steps. Stage 0b of the recipe.
 */
export function makeCueDrill(rand: Rand): string {
  const doc = makeDoc(rand, { sentences: [2, 3] });
  const cues: Array<[string, string]> = [];
  for (const e of ['person', 'place', 'animal'] as Entity[]) {
    const found = doc[ENTITY_KEY[e]];
    if (found.length === 1) cues.push([`${e[0]!.toUpperCase()}${e.slice(1)}:`, found[0]!]);
  }
  for (const q of doc.questions) cues.push([`Question: ${q.question} Answer:`, q.answer]);
  const [cue, answer] = pick(rand, cues.length > 0 ? cues : [['Person:', doc.people[0] ?? pick(rand, NAMES)]]);
  return `${doc.sentences.join(' ')} ${cue} ${answer}`;
}

/**
 * A chat drill: one document, then several questions about it as turns of one conversation
 * under the default system prompt. The first user turn is laid out exactly as the chat tasks lay
 * it out (`Document: ...\nQuestion: ...` or `<instruction>\nDocument: ...`); later turns ask
 * about the same document without repeating it. Every assistant turn is trained, so a chat drill
 * carries a reading drill's many answers per token in the chat format the tasks are asked in.
 */
export function makeChatDrill(rand: Rand, maxTurns = 6): MicroMessage[] {
  const doc = makeDoc(rand, { multi: rand() < 0.3, sentences: [2, 4] });
  const items = pickDistinct(rand, docItems(rand, doc), intIn(rand, Math.min(3, maxTurns), maxTurns));
  const text = doc.sentences.join(' ');
  const first = items.findIndex(([, , plain]) => !plain); // the first turn shows the document
  if (first > 0) items.unshift(...items.splice(first, 1));
  const messages: MicroMessage[] = [{ role: 'system', content: DEFAULT_SYSTEM }];
  items.forEach(([q, a], i) => {
    const user = i > 0 ? q : q.startsWith('Question: ') ? `Document: ${text}\n${q}` : `${q}\nDocument: ${text}`;
    messages.push({ role: 'user', content: user }, { role: 'assistant', content: a });
  });
  return messages;
}
