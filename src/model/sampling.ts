/**
 * Next-token selection: greedy, temperature, top-k, top-p (nucleus), min-p, seeded, with HF's
 * repetition penalty. Follows the HF order of logits processors: the repetition penalty (also
 * before greedy), then temperature, top-k, top-p and min-p.
 */
import { z } from 'zod';

export const SamplingSchema = z.object({
  temperature: z.number().min(0).default(0),
  topK: z.number().int().min(0).default(0),
  topP: z.number().gt(0).max(1).default(1),
  /** HF min_p: keep tokens whose probability is at least min_p x the most likely one's (0 = off). */
  minP: z.number().min(0).max(1).default(0),
  /** HF repetition_penalty: a seen token's logit is divided by it when positive, multiplied when negative (1 = off). */
  repetitionPenalty: z.number().gt(0).default(1),
  seed: z.number().int().default(0),
});
/** The penalty and min-p are optional for callers (off when absent). */
export type SamplingOptions = Omit<z.infer<typeof SamplingSchema>, 'minP' | 'repetitionPenalty'> & { minP?: number; repetitionPenalty?: number };

/** xoshiro128** — small, fast, seedable; one stream per generation request. */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 + seed * 0x85ebca6b;
  let c = 0xb7e15162 ^ (seed >>> 7);
  let d = 0x1234567 + seed;
  const next = (): number => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return (r >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}
const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** HF's RepetitionPenaltyLogitsProcessor over the tokens seen so far (prompt and completion). */
export function penalizeRepeats(logits: Float32Array, seen: Iterable<number>, penalty: number): Float32Array {
  if (penalty === 1) return logits;
  const out = Float32Array.from(logits);
  for (const id of seen instanceof Set ? seen : new Set(seen)) {
    if (id < 0 || id >= out.length) continue;
    const l = logits[id]!;
    out[id] = l < 0 ? l * penalty : l / penalty;
  }
  return out;
}

export function sampleToken(raw: Float32Array, opts: SamplingOptions, rand: () => number, seen: Iterable<number> = []): number {
  const logits = penalizeRepeats(raw, seen, opts.repetitionPenalty ?? 1);
  if (opts.temperature === 0) return argmax(logits);
  const V = logits.length;
  let idx = Array.from({ length: V }, (_, i) => i);
  const scaled = new Float64Array(V);
  for (let i = 0; i < V; i++) scaled[i] = logits[i]! / opts.temperature;
  idx.sort((x, y) => scaled[y]! - scaled[x]!);
  if (opts.topK > 0 && opts.topK < V) idx = idx.slice(0, opts.topK);
  const max = scaled[idx[0]!]!;
  let probs = idx.map((i) => Math.exp(scaled[i]! - max));
  let sum = probs.reduce((p, x) => p + x, 0);
  probs = probs.map((p) => p / sum);
  if (opts.topP < 1) {
    // Keep the smallest prefix whose mass reaches top_p (always at least one token).
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < opts.topP) acc += probs[keep++]!;
    idx = idx.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = acc;
    probs = probs.map((p) => p / sum);
  }
  const minP = opts.minP ?? 0;
  if (minP > 0) {
    // probs are sorted, so the most likely is first; at least one token is kept
    const floor = minP * probs[0]!;
    let keep = 1;
    while (keep < probs.length && probs[keep]! >= floor) keep++;
    idx = idx.slice(0, keep);
    probs = probs.slice(0, keep);
    const kept = probs.reduce((p, x) => p + x, 0);
    probs = probs.map((p) => p / kept);
  }
  let r = rand();
  for (let k = 0; k < probs.length; k++) {
    r -= probs[k]!;
    if (r <= 0) return idx[k]!;
  }
  return idx[idx.length - 1]!;
}
