/**
 * Continuous batching. Each served model (the base or an adapter) has a group: a batch of
 * slots sharing one KV cache [B, ...], B a power of two up to --max-batch rows. One step is one
 * `CausalLM.extend` over the whole batch: rows already decoding feed their last token, rows
 * admitted this step feed the part of their prompt the prefix cache did not have (their slot
 * starts as a copy of the cached prefix, or of the adapter's virtual tokens). Then every row
 * samples its next token; finished rows free their slot at once and waiting requests take it
 * at the next step. Groups take turns, one step each, and every step is an async ORT run
 * followed by a yield to the event loop, so HTTP keeps being served while generating.
 */
import type { ModelAdapter } from '../model/adapter.js';
import { type CausalLM, type KVCache, cacheCapacity } from '../model/lm.js';
import { type SamplingOptions, sampleToken, seededRandom } from '../model/sampling.js';
import type { PlumTokenizer } from '../model/tokenizer.js';
import { CompletionText } from './completion-text.js';
import { copyRow } from './kv.js';
import { PrefixCache, type PrefixCacheStats } from './prefix-cache.js';

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface GenerationRequest {
  /** Served model id: rows of one id are batched together and share prefix-cache entries. */
  model: string;
  adapter: ModelAdapter | null;
  prompt: number[];
  /** Prompt tokens worth adding to the prefix cache. */
  cacheUpTo: number;
  sampling: SamplingOptions;
  maxTokens: number;
  stop: string[];
  /** Each piece of new text, in order, as soon as it is final. */
  onText?: (delta: string) => void;
}

export interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  completionTokens: number;
}

export interface SchedulerOptions {
  lm: CausalLM;
  tokenizer: PlumTokenizer;
  eosIds: number[];
  maxBatch: number;
  /** Prefix-cache budget in cached positions (0 = off). */
  prefixCacheSlots: number;
}

interface Row {
  req: GenerationRequest;
  text: CompletionText;
  rand: () => number;
  /** Tokens to feed at the next step. */
  pending: number[];
  generated: number;
  /** Prompt tokens this row's prefix-cache entry should cover, 0 if none (set on admission). */
  storeAt: number;
  cancelled: boolean;
  /** Tokens of the prompt and the completion so far, for the repetition penalty (null when it is off). */
  seen: Set<number> | null;
  resolve: (r: GenerationResult) => void;
  reject: (e: unknown) => void;
}

interface Group {
  adapter: ModelAdapter | null;
  waiting: Row[];
  slots: Array<Row | null>;
  cache: KVCache | null;
  /** The adapter's virtual tokens alone (an empty cache for adapters without them). */
  empty: KVCache | null;
}

const pow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Scheduler {
  readonly prefixCache: PrefixCache;
  private readonly groups = new Map<string, Group>();
  private readonly eos: Set<number>;
  private readonly maxSlots: number;
  private running = false;
  private turn = 0;
  private steps = 0;
  private generated = 0;

  constructor(private readonly opts: SchedulerOptions) {
    this.prefixCache = new PrefixCache(opts.prefixCacheSlots);
    this.eos = new Set(opts.eosIds);
    this.maxSlots = pow2(opts.maxBatch);
  }

  /** Queue a generation; `cancel` frees its row (the result then has finishReason 'cancelled'). */
  submit(req: GenerationRequest): { done: Promise<GenerationResult>; cancel: () => void } {
    let row!: Row;
    const done = new Promise<GenerationResult>((resolve, reject) => {
      row = {
        req, text: new CompletionText(this.opts.tokenizer, req.stop, req.prompt), rand: seededRandom(req.sampling.seed),
        pending: [], generated: 0, storeAt: 0, cancelled: false, resolve, reject,
        seen: (req.sampling.repetitionPenalty ?? 1) !== 1 ? new Set(req.prompt) : null,
      };
    });
    let g = this.groups.get(req.model);
    if (!g) this.groups.set(req.model, (g = { adapter: req.adapter, waiting: [], slots: [], cache: null, empty: null }));
    g.waiting.push(row);
    this.kick();
    const cancel = (): void => {
      if (row.cancelled) return;
      row.cancelled = true;
      row.resolve({ text: row.text.value, finishReason: 'cancelled', completionTokens: row.generated });
    };
    return { done, cancel };
  }

  stats(): { waiting: number; running: number; steps: number; generated_tokens: number; prefix_cache: PrefixCacheStats } {
    let waiting = 0;
    let running = 0;
    for (const g of this.groups.values()) {
      waiting += g.waiting.length;
      running += g.slots.filter(Boolean).length;
    }
    return { waiting, running, steps: this.steps, generated_tokens: this.generated, prefix_cache: this.prefixCache.stats() };
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (let g = this.nextGroup(); g; g = this.nextGroup()) {
        try {
          await this.step(g);
        } catch (e) {
          this.failGroup(g, e);
        }
        await yieldToLoop();
      }
    } finally {
      this.running = false;
    }
  }

  /** Round robin over the groups with work. */
  private nextGroup(): Group | null {
    const all = [...this.groups.values()];
    for (let i = 0; i < all.length; i++) {
      const g = all[(this.turn + i) % all.length]!;
      g.waiting = g.waiting.filter((r) => !r.cancelled);
      if (g.waiting.length || g.slots.some(Boolean)) {
        this.turn = (this.turn + i + 1) % all.length;
        return g;
      }
    }
    return null;
  }

  private failGroup(g: Group, e: unknown): void {
    for (const r of [...g.slots, ...g.waiting]) if (r && !r.cancelled) r.reject(e);
    g.slots = [];
    g.waiting = [];
    g.cache = null;
  }

  private async step(g: Group): Promise<void> {
    const { lm } = this.opts;
    const active = g.slots.filter(Boolean).length;
    const admitted = g.waiting.splice(0, this.opts.maxBatch - active);
    if (admitted.length) await this.admit(g, admitted);
    const cache = g.cache!;
    // Free slots feed a dummy token from an empty row; their outputs are ignored.
    g.slots.forEach((r, b) => r || (cache.len[b] = 0));
    const logits = await lm.extend(cache, g.slots.map((r) => r?.pending ?? [0]));
    this.steps++;
    const ctx = lm.cfg.maxPositionEmbeddings - (g.adapter?.prefixLength ?? 0);
    g.slots.forEach((r, b) => {
      if (!r) return;
      if (r.storeAt) this.storePrefix(g, r, b);
      if (r.cancelled) return void (g.slots[b] = null);
      const id = sampleToken(logits[b]!, r.req.sampling, r.rand, r.seen ?? []);
      r.seen?.add(id);
      r.generated++;
      this.generated++;
      let reason: FinishReason | null = null;
      if (this.eos.has(id)) reason = 'stop';
      else {
        const { delta, stopped } = r.text.push(id);
        if (delta) r.req.onText?.(delta);
        if (stopped) reason = 'stop';
        else if (r.generated >= r.req.maxTokens || cache.len[b]! >= ctx) reason = 'length';
      }
      if (reason) {
        g.slots[b] = null;
        this.finish(r, reason);
      } else r.pending = [id];
    });
    this.shrink(g);
  }

  private finish(r: Row, reason: FinishReason): void {
    const rest = r.text.finish();
    if (rest) r.req.onText?.(rest);
    r.resolve({ text: r.text.value, finishReason: reason, completionTokens: r.generated });
  }

  /** Give each admitted row a slot holding its longest cached prefix; its pending tokens are the rest of the prompt. */
  private async admit(g: Group, rows: Row[]): Promise<void> {
    const { lm } = this.opts;
    const empty = await this.emptyPrefix(g, rows[0]!.req.prompt[0]!);
    const starts: KVCache[] = rows.map((r) => {
      const { prompt, cacheUpTo } = r.req;
      const hit = this.prefixCache.lookup(r.req.model, prompt, prompt.length - 1);
      const cached = hit?.tokens ?? 0;
      r.pending = prompt.slice(cached);
      const storeAt = this.prefixCache.floor(Math.min(cacheUpTo, prompt.length - 1));
      r.storeAt = storeAt > cached && this.prefixCache.enabled && !this.prefixCache.has(r.req.model, prompt, storeAt) ? storeAt : 0;
      return hit?.kv ?? empty;
    });
    const kept = g.slots.filter((r): r is Row => r !== null);
    const need = Math.max(...kept.map((r) => g.cache!.len[g.slots.indexOf(r)]! + 1), ...rows.map((r, i) => starts[i]!.len[0]! + r.pending.length));
    const free = g.slots.filter((r) => r === null).length;
    if (!g.cache || free < rows.length || g.cache.capacity < need) {
      const B = Math.min(pow2(kept.length + rows.length), this.maxSlots);
      const fresh = lm.emptyCache(B, Math.max(cacheCapacity(need), g.cache?.capacity ?? 0), g.adapter);
      kept.forEach((r, i) => copyRow(lm.cfg, g.cache!, g.slots.indexOf(r), fresh, i));
      g.slots = [...kept, ...new Array<Row | null>(B - kept.length).fill(null)];
      g.cache = fresh;
    }
    rows.forEach((r, i) => {
      const b = g.slots.indexOf(null);
      copyRow(lm.cfg, starts[i]!, 0, g.cache!, b);
      g.slots[b] = r;
    });
  }

  /** Copy a row's first virtual + storeAt slots into a new prefix-cache entry (once, after its prompt step). */
  private storePrefix(g: Group, r: Row, b: number): void {
    const { lm } = this.opts;
    const slots = (g.adapter?.virtualTokens ?? 0) + r.storeAt;
    const kv = lm.emptyCache(1, slots, g.adapter);
    copyRow(lm.cfg, g.cache!, b, kv, 0, slots);
    this.prefixCache.insert(r.req.model, r.req.prompt, { kv, tokens: r.storeAt });
    r.storeAt = 0;
  }

  /** The adapter's virtual tokens as a one-row cache (prefill puts them first; their keys/values do not depend on the text). */
  private async emptyPrefix(g: Group, anyToken: number): Promise<KVCache> {
    if (g.empty) return g.empty;
    const { lm } = this.opts;
    const N = g.adapter?.virtualTokens ?? 0;
    const empty = lm.emptyCache(1, Math.max(N, 1), g.adapter);
    if (N > 0) copyRow(lm.cfg, (await lm.prefill([[anyToken]], g.adapter, 0)).cache, 0, empty, 0, N);
    return (g.empty = empty);
  }

  /** Drop the cache when idle; halve the batch when at most half of it is in use. */
  private shrink(g: Group): void {
    const kept = g.slots.filter((r): r is Row => r !== null);
    if (kept.length === 0) {
      g.slots = [];
      g.cache = null;
      return;
    }
    const B = pow2(kept.length);
    if (B >= g.slots.length || g.waiting.length) return;
    const { lm } = this.opts;
    const fresh = lm.emptyCache(B, g.cache!.capacity, g.adapter);
    kept.forEach((r, i) => copyRow(lm.cfg, g.cache!, g.slots.indexOf(r), fresh, i));
    g.slots = [...kept, ...new Array<Row | null>(B - kept.length).fill(null)];
    g.cache = fresh;
  }
}
