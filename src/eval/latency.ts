/**
 * The latency proof: time to first token (TTFT) and decode speed for
 *  (a) a long system prompt prefilled with every request,
 *  (b) the same with a prefix-cache hit (the system prompt's keys/values computed once and
 *      reused: the strong baseline production servers use),
 *  (c) a soft prompt of N virtual tokens in place of the system prompt.
 * Every generated token attends to the whole context, so (a) and (b) decode slower as the
 * system prompt grows, and (a) also pays the prefill; (c) pays neither.
 */
import type { LoadedModel } from '../model/load.js';
import type { KVCache } from '../model/lm.js';
import { argmax } from '../model/sampling.js';
import { baseModelOf } from '../peft/base.js';
import { createAdapter } from '../peft/registry.js';
import type { ModelAdapter } from '../model/adapter.js';
import { rng } from '../util/random.js';

export interface LatencyRow {
  systemTokens: number;
  setup: 'system prompt' | 'prefix cache hit' | 'soft prompt';
  ttftMs: number;
  decodeTokPerS: number;
}

export interface LatencyOptions {
  systemTokens: number[];
  virtualTokens: number;
  userTokens: number;
  decodeTokens: number;
  repeats: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeGeneration(m: LoadedModel, start: () => Promise<{ cache: KVCache; logits: Float32Array[] }>, decodeTokens: number): Promise<{ ttft: number; decode: number }> {
  const t0 = performance.now();
  const { cache, logits } = await start();
  let next = argmax(logits[0]!);
  const t1 = performance.now();
  for (let i = 0; i < decodeTokens; i++) next = argmax((await m.lm.decode(cache, [next]))[0]!);
  const t2 = performance.now();
  return { ttft: t1 - t0, decode: decodeTokens / ((t2 - t1) / 1000) };
}

export async function measureLatency(m: LoadedModel, o: LatencyOptions, onRow?: (r: LatencyRow) => void): Promise<LatencyRow[]> {
  const r = rng(7);
  const V = Math.min(m.cfg.vocabSize, m.tokenizer.vocabSize);
  const randomIds = (n: number): number[] => Array.from({ length: n }, () => 3 + Math.floor(r() * (V - 3)));
  const bos = m.tokenizer.bosId !== null ? [m.tokenizer.bosId] : [];
  const user = randomIds(o.userTokens);
  const soft: ModelAdapter = await createAdapter({ kind: 'soft-prompt', virtualTokens: o.virtualTokens, init: 'vocab' }, baseModelOf(m), 1);
  const rows: LatencyRow[] = [];
  const record = async (systemTokens: number, setup: LatencyRow['setup'], start: () => Promise<{ cache: KVCache; logits: Float32Array[] }>) => {
    await timeGeneration(m, start, 2); // compile / warm the shapes
    const runs = [];
    for (let i = 0; i < o.repeats; i++) runs.push(await timeGeneration(m, start, o.decodeTokens));
    const row = { systemTokens, setup, ttftMs: median(runs.map((x) => x.ttft)), decodeTokPerS: median(runs.map((x) => x.decode)) };
    rows.push(row);
    onRow?.(row);
  };
  for (const n of o.systemTokens) {
    const system = [...bos, ...randomIds(n)];
    await record(n, 'system prompt', () => m.lm.prefill([[...system, ...user]], null, o.decodeTokens));
    // Room for the user prompt and the answer, as the uncached path gets.
    const cached = (await m.lm.prefill([system], null, user.length + o.decodeTokens)).cache;
    await record(n, 'prefix cache hit', async () => {
      const cache = m.lm.cloneCache(cached);
      const logits = await m.lm.extend(cache, [user]);
      return { cache, logits };
    });
  }
  await record(0, 'soft prompt', () => m.lm.prefill([[...bos, ...user]], soft, o.decodeTokens));
  return rows;
}
