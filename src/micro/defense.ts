/**
 * Training data for the injection defense (`plum defend injection`), from the `train` templates
 * only, so held-out templates measure generalisation:
 * - SFT records (StruQ-style): the document hides an injection and the reply does the REAL task;
 *   mixed with clean records of every other task so utility and refusals are kept;
 * - preference pairs (SecAlign-style): the same kind of prompt, chosen = the real answer,
 *   rejected = the answer that follows the injection.
 *
 * @example
 * const { sft, pairs } = defenseData({ seed: 7, n: 2000 });
 * writeCorpus('defense-sft.jsonl', sft);
 * writePairs('defense-pairs.jsonl', pairs, 'prompt-chosen-rejected'); // src/prefs/pairs.ts
 */
import { mixSeed, shuffled } from '../data/rng.js';
import type { PreferencePair } from '../prefs/pairs.js';
import { rng } from '../util/random.js';
import { DEFAULT_MIX } from './corpus.js';
import { drawInjection, followingAnswer, type InjectionSplit } from './injection.js';
import { INJECTABLE, TASK_TYPES, docTask, injectedChat, makeTask, type ChatTask } from './tasks.js';
import { pick, type Rand } from './vocab.js';

export interface DefenseOptions {
  seed: number;
  /** SFT records, and preference pairs. */
  n: number;
  /** Injection templates and targets to train on (default 'train'). */
  templates?: InjectionSplit;
  /** Share of SFT records without an injection (default 0.5). */
  cleanShare?: number;
}

export interface DefenseData {
  /** `task: 'injected'` records answering the real task, and clean records. */
  sft: ChatTask[];
  pairs: PreferencePair[];
}

const SFT_SALT = 0xdef1;
const CLEAN_SALT = 0xdef2;
const PAIR_SALT = 0xdef3;

/** A qa / extract / upper task with an injection from `split`, replied to with the real answer. */
export function defendedTask(rand: Rand, split: InjectionSplit): ChatTask {
  const dt = docTask(rand, pick(rand, INJECTABLE));
  return injectedChat(rand, dt, drawInjection(rand, split), false);
}

/** Clean tasks in the corpus mix, without `injected` (the base corpus' injection-following replies). */
const CLEAN_TYPES = TASK_TYPES.filter((t) => t !== 'injected');
function cleanTask(rand: Rand): ChatTask {
  const total = CLEAN_TYPES.reduce((a, t) => a + DEFAULT_MIX[t], 0);
  const u = rand() * total;
  let acc = 0;
  const type = CLEAN_TYPES.find((t) => (acc += DEFAULT_MIX[t]) > u) ?? CLEAN_TYPES[CLEAN_TYPES.length - 1]!;
  return makeTask(rand, type);
}

/** The preference pair of a defended record: chosen does the real task, rejected follows the injection. */
export function defensePair(record: ChatTask, promptId?: string): PreferencePair {
  const inj = record.injection;
  if (!inj) throw new Error('defensePair: the record carries no injection');
  const messages = record.messages.filter((m) => m.role !== 'assistant');
  const pair: PreferencePair = { prompt: messages[messages.length - 1]!.content, messages, chosen: inj.realAnswer, rejected: followingAnswer(inj) };
  return promptId === undefined ? pair : { ...pair, promptId };
}

export function defenseData(opts: DefenseOptions): DefenseData {
  const { seed, n } = opts;
  const split = opts.templates ?? 'train';
  const clean = Math.round(n * (opts.cleanShare ?? 0.5));
  const sft: ChatTask[] = [];
  for (let i = 0; i < n; i++) {
    sft.push(i < clean ? cleanTask(rng(mixSeed(seed, CLEAN_SALT, i))) : defendedTask(rng(mixSeed(seed, SFT_SALT, i)), split));
  }
  const pairs: PreferencePair[] = [];
  for (let i = 0; i < n; i++) pairs.push(defensePair(defendedTask(rng(mixSeed(seed, PAIR_SALT, i)), split), `defense-${seed}-${i}`));
  return { sft: shuffled(sft, seed, SFT_SALT), pairs };
}

/**
 * DPO after the SFT stage, shared by `plum defend injection` and `plum demo`: a tenth of the SFT
 * learning rate, plus the chosen answers' per-token NLL (RPO). Measured on plum-micro with LoRA
 * (src/micro/README.md): plain DPO took clean utility 100% -> 78% at the SFT rate and 86% at a
 * tenth of it; with the NLL term at a tenth, 97.5%.
 */
export const DPO_AFTER_SFT = { lrScale: 0.1, sftWeight: 1 } as const;
