/**
 * The plum-micro training corpus: short stories and chat tasks, all from the closed vocabulary in
 * vocab.ts, generated from a seed. Record i of each kind has its own seed (seed, kind, i), so
 * changing one count does not change the other records; the final order is a seeded shuffle.
 *
 * @example
 * const records = generateCorpus({ seed: 1, stories: 20000, chats: 40000 });
 * writeCorpus('micro.jsonl', records); // {"text": ...} and {"messages": [...], "task": "qa"} lines
 */
import { writeFileAtomic } from '../util/atomic.js';
import { rng } from '../util/random.js';
import { mixSeed, shuffled } from '../data/rng.js';
import { makeStory } from './docs.js';
import { makeChatDrill, makeCopyDrill, makeCueDrill, makeDrill } from './drills.js';
import type { InjectionSplit } from './injection.js';
import { TASK_TYPES, makeTask, type ChatTask, type MicroMessage, type TaskType } from './tasks.js';

export interface StoryRecord {
  kind: 'text';
  text: string;
}
/** A chat drill (drills.ts `makeChatDrill`): several answered questions about one document, every reply trained. */
export interface DialogueRecord {
  kind: 'dialogue';
  messages: MicroMessage[];
}
export type CorpusRecord = StoryRecord | ChatTask | DialogueRecord;

/** Share of chat records per task (normalised); injected instructions are followed in ~12% of chats. */
export const DEFAULT_MIX: Readonly<Record<TaskType, number>> = {
  qa: 0.2,
  extract: 0.12,
  upper: 0.12,
  'one-word': 0.1,
  list: 0.1,
  secret: 0.12,
  forbidden: 0.12,
  injected: 0.12,
};

export interface CorpusOptions {
  seed: number;
  stories: number;
  chats: number;
  /** Reading drills (drills.ts): a document and many answered questions, trained on every token. */
  drills?: number;
  /** Copy drills (drills.ts `makeCopyDrill`): a word list and the same list again. */
  copies?: number;
  /** Cue drills (drills.ts `makeCueDrill`): a short document and one answer. */
  cues?: number;
  /** Chat drills (drills.ts `makeChatDrill`): one document, several questions as turns, every reply trained. */
  chatDrills?: number;
  /** Task shares (missing tasks keep their default share; 0 drops a task). */
  mix?: Partial<Record<TaskType, number>>;
  /**
   * Injection templates of `injected` records (default 'all'): held-out templates are held out
   * from defense training, not from the base model, which (like a web-trained model) follows
   * instructions in any wording. 'train' keeps held-out wording unseen by the base model too.
   */
  injections?: InjectionSplit | 'all';
}

const STORY_SALT = 0x5707;
const DRILL_SALT = 0xd411;
const COPY_SALT = 0xc0b1;
const CUE_SALT = 0xc0e5;
const ORDER_SALT = 0x0de5;
const DIALOGUE_SALT = 0xd1a1;

/** Per-task counts summing to `total`, by largest remainder. */
export function taskCounts(total: number, mix: Partial<Record<TaskType, number>> = {}): Record<TaskType, number> {
  const w = TASK_TYPES.map((t) => Math.max(0, mix[t] ?? DEFAULT_MIX[t]));
  const sum = w.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new Error('generateCorpus: every task share is 0; give at least one task a positive share');
  const exact = w.map((x) => (total * x) / sum);
  const counts = exact.map(Math.floor);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; counts.reduce((a, b) => a + b, 0) < total; k++) counts[order[k % order.length]![1]]! += 1;
  return Object.fromEntries(TASK_TYPES.map((t, i) => [t, counts[i]!])) as Record<TaskType, number>;
}

/** `stories` stories and `chats` chat records, shuffled; the same options give the same records. */
export function generateCorpus(opts: CorpusOptions): CorpusRecord[] {
  const { seed, stories, chats } = opts;
  const out: CorpusRecord[] = [];
  for (let i = 0; i < stories; i++) out.push({ kind: 'text', text: makeStory(rng(mixSeed(seed, STORY_SALT, i))) });
  for (let i = 0; i < (opts.drills ?? 0); i++) out.push({ kind: 'text', text: makeDrill(rng(mixSeed(seed, DRILL_SALT, i))) });
  for (let i = 0; i < (opts.cues ?? 0); i++) out.push({ kind: 'text', text: makeCueDrill(rng(mixSeed(seed, CUE_SALT, i))) });
  for (let i = 0; i < (opts.copies ?? 0); i++) out.push({ kind: 'text', text: makeCopyDrill(rng(mixSeed(seed, COPY_SALT, i))) });
  for (let i = 0; i < (opts.chatDrills ?? 0); i++) out.push({ kind: 'dialogue', messages: makeChatDrill(rng(mixSeed(seed, DIALOGUE_SALT, i))) });
  const counts = taskCounts(chats, opts.mix);
  TASK_TYPES.forEach((task, k) => {
    for (let i = 0; i < counts[task]; i++) out.push(makeTask(rng(mixSeed(seed, k, i)), task, opts.injections ?? 'all'));
  });
  return shuffled(out, seed, ORDER_SALT);
}

/** The JSONL line of a record: `{"text"}` for a story, OpenAI chat `{"messages", "task"}` for a chat. */
export const corpusLine = (r: CorpusRecord): string =>
  JSON.stringify(r.kind === 'text' ? { text: r.text } : r.kind === 'dialogue' ? { messages: r.messages } : { messages: r.messages, task: r.task });

/** Write records as JSONL (atomically). */
export function writeCorpus(file: string, records: readonly CorpusRecord[]): void {
  writeFileAtomic(file, records.map(corpusLine).join('\n') + '\n');
}

/** All text of a record (every message of a chat). */
export const recordText = (r: CorpusRecord): string => (r.kind === 'text' ? r.text : r.messages.map((m) => m.content).join('\n'));

export interface CorpusStats {
  records: number;
  stories: number;
  /** Chat drills. */
  dialogues: number;
  perTask: Record<TaskType, number>;
  /** Distinct words (letter runs, case-insensitive). */
  words: number;
  /** Distinct characters. */
  characters: number;
  /** Word occurrences in all. */
  wordCount: number;
}

/** The distinct words (letter runs, lower-cased) of `records`. */
export function vocabulary(records: readonly CorpusRecord[]): Set<string> {
  const words = new Set<string>();
  for (const r of records) for (const w of recordText(r).toLowerCase().match(/[a-z]+/g) ?? []) words.add(w);
  return words;
}

export function corpusStats(records: readonly CorpusRecord[]): CorpusStats {
  const perTask = Object.fromEntries(TASK_TYPES.map((t) => [t, 0])) as Record<TaskType, number>;
  const chars = new Set<string>();
  let wordCount = 0;
  for (const r of records) {
    if (r.kind === 'chat') perTask[r.task]++;
    const text = recordText(r);
    for (const c of text) chars.add(c);
    wordCount += text.match(/[A-Za-z]+/g)?.length ?? 0;
  }
  const stories = records.filter((r) => r.kind === 'text').length;
  const dialogues = records.filter((r) => r.kind === 'dialogue').length;
  return { records: records.length, stories, dialogues, perTask, words: vocabulary(records).size, characters: chars.size, wordCount };
}
