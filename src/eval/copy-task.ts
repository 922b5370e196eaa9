/**
 * The copy-into-template task used to check supervised fine-tuning on stories260K: the input
 * names a character and a thing; the output is a fixed sentence containing both.
 * Held-out pairs are combinations never seen in training (each name and each thing does appear
 * in training, with other partners), so a method must learn to copy, not to memorise.
 */
import { writeFileAtomic } from '../util/atomic.js';
import { rng } from '../util/random.js';

export const COPY_NAMES = ['Lily', 'Tom', 'Ben', 'Sue', 'Max', 'Anna', 'Sam', 'Mia', 'Tim', 'Lucy', 'Jack', 'Sara'];
export const COPY_THINGS = ['ball', 'box', 'cake', 'hat', 'kite', 'book', 'toy', 'cup', 'car', 'bird', 'apple', 'doll'];

export interface PromptCompletion {
  prompt: string;
  completion: string;
}

export const copyExample = (name: string, thing: string): PromptCompletion => ({
  prompt: `Name: ${name}. Thing: ${thing}. Story:`,
  completion: ` ${name} found the ${thing} and was very happy.`,
});

/** 100 training pairs and `heldOut` held-out pairs (disjoint combinations), shuffled by seed. */
export function copyTask(seed = 0, train = 100, heldOut = 30): { train: PromptCompletion[]; heldOut: PromptCompletion[] } {
  const pairs = COPY_NAMES.flatMap((n) => COPY_THINGS.map((t) => [n, t] as const));
  const r = rng(seed);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
  }
  const ex = pairs.map(([n, t]) => copyExample(n, t));
  return { train: ex.slice(0, train), heldOut: ex.slice(train, train + heldOut) };
}

export function writeJsonl(file: string, rows: unknown[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}
