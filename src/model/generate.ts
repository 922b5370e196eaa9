/**
 * Autoregressive generation over a batch of prompts: prefill once, then decode one token per
 * step for every unfinished row. Stops at EOS, a stop string, or maxTokens.
 */
import type { ModelAdapter } from './adapter.js';
import type { CausalLM } from './lm.js';
import { type SamplingOptions, sampleToken, seededRandom } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  /** Token ids that end a row (the model's EOS ids). */
  eosIds: number[];
  /** Stop strings (need `decode`); the returned text excludes the stop string. */
  stop?: string[];
  decode?: (ids: number[]) => string;
  adapter?: ModelAdapter | null;
  /**
   * One sampling seed per row (overrides `seed`), so that a row's text does not depend on which
   * batch or position it lands in. Without it row b uses `seed + b * 7919`.
   */
  seeds?: number[];
  /** Called for each new token of each row, in order. */
  onToken?: (row: number, id: number) => void;
}

export type FinishReason = 'stop' | 'length';

export interface Generation {
  tokens: number[];
  /** Decoded completion (when `decode` is given), cut at a stop string. */
  text?: string;
  finishReason: FinishReason;
}

export async function generate(lm: CausalLM, prompts: number[][], opts: GenerateOptions): Promise<Generation[]> {
  const B = prompts.length;
  const rands = prompts.map((_, b) => seededRandom(opts.seeds?.[b] ?? opts.seed + b * 7919));
  const out: Generation[] = prompts.map(() => ({ tokens: [], finishReason: 'length' }));
  const done = new Array<boolean>(B).fill(opts.maxTokens <= 0);
  if (done.every(Boolean)) return out;
  const eos = new Set(opts.eosIds);
  let { cache, logits } = await prefillOnce(lm, prompts, opts.adapter ?? null, opts.maxTokens);
  // the repetition penalty looks at the whole sequence so far, as HF's does (kept per row as it grows)
  const seen = (opts.repetitionPenalty ?? 1) !== 1 ? prompts.map((p) => new Set(p)) : null;
  for (let step = 0; step < opts.maxTokens; step++) {
    const next = logits.map((l, b) => (done[b] ? 0 : sampleToken(l, opts, rands[b]!, seen?.[b] ?? [])));
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      const id = next[b]!;
      const g = out[b]!;
      if (eos.has(id)) {
        done[b] = true;
        g.finishReason = 'stop';
        continue;
      }
      g.tokens.push(id);
      seen?.[b]!.add(id);
      opts.onToken?.(b, id);
      if (opts.stop?.length && opts.decode) {
        const text = opts.decode(g.tokens);
        const hit = firstStop(text, opts.stop);
        if (hit >= 0) {
          g.text = text.slice(0, hit);
          g.finishReason = 'stop';
          done[b] = true;
        }
      }
      if (g.tokens.length >= opts.maxTokens) done[b] = true;
    }
    if (done.every(Boolean)) break;
    logits = await lm.decode(cache, next);
  }
  lm.release(cache);
  if (opts.decode) for (const g of out) g.text ??= opts.decode(g.tokens);
  return out;
}

/**
 * Prefill with each distinct prompt computed once: rows that repeat a prompt (several samples of
 * it) get copies of its cache row and logits. Sampling n candidates of a prompt then prefills
 * it once instead of n times (BENCHMARKS.md finding 42).
 */
async function prefillOnce(lm: CausalLM, prompts: number[][], adapter: ModelAdapter | null, maxTokens: number) {
  const index = new Map<string, number>();
  const unique: number[][] = [];
  const rowOf = prompts.map((p) => {
    const key = p.join(',');
    let u = index.get(key);
    if (u === undefined) index.set(key, (u = unique.push(p) - 1));
    return u;
  });
  if (unique.length === prompts.length) return lm.prefill(prompts, adapter, maxTokens);
  const once = await lm.prefill(unique, adapter, maxTokens);
  const cache = lm.selectRows(once.cache, rowOf);
  lm.release(once.cache);
  return { cache, logits: rowOf.map((u) => once.logits[u]!.slice()) };
}

function firstStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
