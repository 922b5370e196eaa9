/**
 * Seeded shuffling for data order. Deterministic across platforms: 32-bit integer maths only.
 */
import { rng as mulberry32 } from '../util/random.js';

/** mulberry32: a 32-bit seeded PRNG, uniform in [0, 1). */
export { mulberry32 };

/** Hash a list of integers (seed, epoch ...) to one 32-bit seed (murmur3's finaliser per word). */
export function mixSeed(...words: number[]): number {
  let h = 0x811c9dc5;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A Fisher-Yates shuffled copy of `items`, the same for the same seed words. */
export function shuffled<T>(items: readonly T[], ...seed: number[]): T[] {
  const rand = mulberry32(mixSeed(...seed));
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
