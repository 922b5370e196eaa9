/**
 * The closed vocabulary of the plum-micro corpus: small word lists that every generated story,
 * document and instruction draws from, so that a model of a few million parameters can learn
 * the whole language. Injection targets sit in their own pools, disjoint from the story words,
 * so that an answer containing one can only come from following the injected sentence.
 */

export const NAMES = [
  'Tom', 'Ann', 'Ben', 'Sam', 'Mia', 'Leo', 'Zoe', 'Max', 'Lily', 'Jack',
  'Emma', 'Noah', 'Ella', 'Finn', 'Ruby', 'Owen', 'Lucy', 'Hugo', 'Nina', 'Theo',
  'Ivy', 'Omar', 'Rosa', 'Eli', 'Maya', 'Jake', 'Kate', 'Paul', 'Sara', 'Dan',
] as const;

/** Animal -> plural. */
export const ANIMALS: Readonly<Record<string, string>> = {
  cat: 'cats', dog: 'dogs', bird: 'birds', fish: 'fish', horse: 'horses', cow: 'cows',
  pig: 'pigs', duck: 'ducks', frog: 'frogs', fox: 'foxes', bear: 'bears', lion: 'lions',
  mouse: 'mice', rabbit: 'rabbits', sheep: 'sheep', goat: 'goats', owl: 'owls', wolf: 'wolves',
  tiger: 'tigers', snake: 'snakes', turtle: 'turtles', monkey: 'monkeys', deer: 'deer', bee: 'bees',
};
export const ANIMAL_WORDS = Object.keys(ANIMALS);

export const OBJECTS = [
  'ball', 'box', 'book', 'cup', 'hat', 'key', 'kite', 'lamp', 'bag', 'bell',
  'boat', 'bike', 'coin', 'drum', 'map', 'pen', 'ring', 'shoe', 'sock', 'spoon',
  'toy', 'apple', 'cake', 'chair', 'clock', 'flag', 'rope', 'stone', 'basket', 'candle',
] as const;

export const PLACES = [
  'park', 'farm', 'school', 'garden', 'beach', 'forest', 'river', 'lake', 'shop', 'house',
  'city', 'hill', 'market', 'library', 'zoo', 'castle', 'village', 'bridge', 'field', 'cave',
] as const;

export const COLOURS = ['red', 'blue', 'green', 'yellow', 'black', 'white', 'pink', 'orange', 'purple', 'brown', 'grey'] as const;

/** What animals do: [base form, past form]. */
export const ANIMAL_VERBS = [
  ['sleep', 'slept'], ['run', 'ran'], ['jump', 'jumped'], ['swim', 'swam'], ['play', 'played'], ['sit', 'sat'],
  ['hide', 'hid'], ['eat', 'ate'], ['sing', 'sang'], ['dance', 'danced'], ['rest', 'rested'], ['walk', 'walked'],
] as const;

export const MOODS = ['happy', 'sad', 'tired', 'hungry', 'brave', 'kind', 'sleepy', 'quiet', 'funny', 'proud', 'busy', 'calm'] as const;
export const SIZES = ['small', 'big', 'old', 'little', 'young', 'tall', 'fat', 'fast'] as const;
export const WEATHER = ['sunny', 'rainy', 'windy', 'cold', 'warm', 'snowy'] as const;

/** Words an injection demands; train and held-out pools never share a word, nor with the lists above. */
export const INJECTION_TARGETS = {
  train: ['HELLO', 'BANANA', 'PIRATE', 'WINNER', 'ROBOT', 'MAGIC', 'CHEESE', 'THUNDER', 'DRAGON', 'PEPPER', 'ROCKET', 'CANDY'],
  heldOut: ['GOODBYE', 'PIZZA', 'WIZARD', 'LEMON', 'GHOST', 'TOMATO', 'DIAMOND', 'COMET', 'PUMPKIN', 'VIOLIN', 'NOODLE', 'PENGUIN'],
} as const;

/** A uniform random source in [0, 1), e.g. `rng(seed)` from src/util/random.ts. */
export type Rand = () => number;

export const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** `n` distinct items (n <= items.length), in random order. */
export function pickDistinct<T>(rand: Rand, items: readonly T[], n: number): T[] {
  const pool = items.slice();
  const out: T[] = [];
  for (let i = 0; i < n && pool.length > 0; i++) out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]!);
  return out;
}

/** An integer in [lo, hi]. */
export const intIn = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

/** "a cat", "an owl". */
export const withArticle = (noun: string): string => (/^[aeiou]/i.test(noun) ? `an ${noun}` : `a ${noun}`);

/** "a", "a and b", "a, b and c". */
export function joinAnd(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
