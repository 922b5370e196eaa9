/**
 * CausalLM: a loaded model plus compiled graphs cached per shape bucket.
 * Scoring, prefill and decode with a fixed-capacity KV cache (capacity grows by buckets;
 * empty slots are masked), batched rows of different lengths (right padding).
 */
import type { Backend, CompiledGraph, HostArray } from '../runtime/backend.js';
import { GraphCache } from '../runtime/backend.js';
import type { ModelAdapter } from './adapter.js';
import type { ModelConfig } from './config.js';
import { headWeightName } from './decoder.js';
import { type ForwardSpec, HEAD_COPY_INPUT, buildForward } from './forward.js';
import { type RowLayout, biasFeeds, sequenceLayout } from './masks.js';
import { Rope } from './rope.js';

/** Smallest power of two >= n (at least `min`). */
export function bucket(n: number, min = 8): number {
  let b = min;
  while (b < n) b *= 2;
  return b;
}

/**
 * KV-cache capacity for `n` slots: a multiple of an eighth of the power of two at or above n
 * (at least 64). Decode's attention reads the whole capacity, so the slack is kept to at most a
 * quarter of it (513 slots -> 640, where a power of two would be 1024; BENCHMARKS.md finding 34),
 * and there are at most four cache sizes, so four compiled decode graphs, per octave.
 */
export function cacheCapacity(n: number): number {
  return octaveEighths(n, 64);
}

/** n rounded up to a multiple of an eighth of the power of two at or above it (at least `min`). */
function octaveEighths(n: number, min: number): number {
  const step = Math.max(min, bucket(n, min) / 8);
  return Math.ceil(Math.max(n, 1) / step) * step;
}

/**
 * Padded length of a prompt (or a block of new tokens) of n for prefill, extend and score graphs:
 * a multiple of an eighth of the power of two at or above n (at least 16), so at most a quarter
 * is padding (300 tokens -> 320, where a power of two would be 512: prefill 343 -> ~210 ms on
 * SmolLM2-135M shapes; BENCHMARKS.md finding 43), with four compiled sizes per octave.
 */
export function promptLength(n: number): number {
  return octaveEighths(n, 16);
}

export interface KVCache {
  capacity: number;
  /** Per layer [B, Hkv, capacity, Dh]. */
  k: Float32Array[];
  v: Float32Array[];
  /** Filled slots per row (slot j holds absolute position prefixLength + j). */
  len: number[];
  adapter: ModelAdapter | null;
}

export interface LmOptions {
  /**
   * Keep a transposed [C, V] copy of the output layer for one-row decode steps, where ORT's
   * M = 1 product reads that layout ~30% faster than Hugging Face's [V, C] (BENCHMARKS.md finding
   * 34): about 5% of a decode step on SmolLM2-135M, for V x C x 4 more bytes (113 MB there),
   * made on the first such step. For inference; if the head's values change (training), the
   * copy is remade.
   */
  headCopy?: boolean;
}

export class CausalLM {
  readonly graphs: GraphCache;
  private readonly ropes: Rope;
  /** Released KV-cache arrays by length (see `release`). */
  private readonly pool = new Map<number, Float32Array[]>();
  private head: HeadCopy | null = null;

  constructor(
    readonly cfg: ModelConfig,
    readonly weights: Map<string, Float32Array>,
    readonly backend: Backend,
    readonly opts: LmOptions = {},
  ) {
    this.graphs = new GraphCache(backend);
    this.ropes = new Rope(cfg);
  }

  private async compiled(spec: ForwardSpec, adapter: ModelAdapter | null): Promise<{ run: CompiledGraph; weightNames: string[] }> {
    const key = `${spec.output}:${spec.B}x${spec.T}:v${spec.withVirtual}:c${spec.cache}:p${spec.present}:h${spec.headCopy ?? false}:${adapter?.id ?? '-'}`;
    let weightNames: string[] = [];
    const run = await this.graphs.get(key, () => {
      const built = buildForward(this.cfg, spec, adapter);
      weightNames = [...built.weights.used().keys()];
      return built.outputs;
    });
    return { run, weightNames };
  }

  private feeds(run: CompiledGraph, adapter: ModelAdapter | null, extra: Record<string, HostArray>): Record<string, HostArray> {
    const feeds: Record<string, HostArray> = { ...extra };
    const adapterFeeds = adapter ? { ...adapter.feeds(), ...adapter.inferenceFeeds?.() } : {};
    for (const name of run.inputNames) {
      if (name in feeds) continue;
      if (name === HEAD_COPY_INPUT) {
        feeds[name] = this.headCopy();
        continue;
      }
      const v = this.weights.get(name) ?? adapterFeeds[name];
      if (!v) throw new Error(`missing weight ${name}`);
      feeds[name] = v;
    }
    return feeds;
  }

  /** RoPE tables for rows of positions [B][T'] (-1 = padding). */
  private rope(positions: Int32Array[]): { cos: Float32Array; sin: Float32Array } {
    const flat = Int32Array.from(positions.flatMap((r) => [...r].map((p) => Math.max(p, 0))));
    return this.ropes.tables(flat);
  }

  /**
   * log p(seq[t] | seq[<t]) for every t >= 1 of every row (the first token has none).
   * With a soft-prompt or prefix adapter, the adapter's tokens come before each row.
   */
  async score(seqs: number[][], adapter: ModelAdapter | null = null): Promise<number[][]> {
    const B = seqs.length;
    const T = promptLength(Math.max(...seqs.map((s) => s.length)));
    const N = adapter?.virtualTokens ?? 0;
    const Pn = adapter?.prefixLength ?? 0;
    const { run } = await this.compiled({ B, T, withVirtual: true, cache: 0, output: 'logprobs', present: false }, adapter);
    const ids = new BigInt64Array(B * T);
    const targets = new BigInt64Array(B * T).fill(-100n);
    const rows: RowLayout[] = [];
    seqs.forEach((s, b) => {
      s.forEach((id, t) => (ids[b * T + t] = BigInt(id)));
      for (let t = 0; t + 1 < s.length; t++) targets[b * T + t] = BigInt(s[t + 1]!);
      rows.push(sequenceLayout(s.length, N, T, Pn));
    });
    const { cos, sin } = this.rope(rows.map((r) => r.queryPos));
    const masks = biasFeeds(rows, N + T, Pn + N + T, this.cfg);
    const out = await run.run(this.feeds(run, adapter, { ids, targets, cos, sin, ...masks }));
    const lp = out.logprobs as Float32Array;
    return seqs.map((s, b) => Array.from(lp.subarray(b * T, b * T + s.length - 1)));
  }

  /** Logits at every position of one sequence ([T][V]); for tests and small inputs. */
  async logits(seq: number[], adapter: ModelAdapter | null = null): Promise<Float32Array[]> {
    const T = seq.length;
    const N = adapter?.virtualTokens ?? 0;
    const Pn = adapter?.prefixLength ?? 0;
    const { run } = await this.compiled({ B: 1, T, withVirtual: true, cache: 0, output: 'all-logits', present: false }, adapter);
    const rows = [sequenceLayout(T, N, T, Pn)];
    const { cos, sin } = this.rope(rows.map((r) => r.queryPos));
    const masks = biasFeeds(rows, N + T, Pn + N + T, this.cfg);
    const ids = BigInt64Array.from(seq.map(BigInt));
    const out = (await run.run(this.feeds(run, adapter, { ids, cos, sin, ...masks }))).logits as Float32Array;
    const V = this.cfg.vocabSize;
    return seq.map((_, t) => out.slice(t * V, (t + 1) * V));
  }

  /** Run the prompts, fill a new KV cache, and return the next-token logits of each row [B][V]. */
  async prefill(prompts: number[][], adapter: ModelAdapter | null = null, maxNewTokens = 0): Promise<{ cache: KVCache; logits: Float32Array[] }> {
    const B = prompts.length;
    if (prompts.some((p) => p.length === 0)) throw new Error('prefill: empty prompt (start with a BOS token)');
    const T = promptLength(Math.max(...prompts.map((p) => p.length)));
    const N = adapter?.virtualTokens ?? 0;
    const Pn = adapter?.prefixLength ?? 0;
    const { run } = await this.compiled({ B, T, withVirtual: true, cache: 0, output: 'last-logits', present: true }, adapter);
    const ids = new BigInt64Array(B * T);
    const lastIdx = new BigInt64Array(B);
    const rows = prompts.map((p, b) => {
      p.forEach((id, t) => (ids[b * T + t] = BigInt(id)));
      lastIdx[b] = BigInt(N + p.length - 1);
      return sequenceLayout(p.length, N, T, Pn);
    });
    const { cos, sin } = this.rope(rows.map((r) => r.queryPos));
    const masks = biasFeeds(rows, N + T, Pn + N + T, this.cfg);
    const out = await run.run(this.feeds(run, adapter, { ids, cos, sin, ...masks, last_idx: lastIdx }));
    const longest = Math.max(...prompts.map((p) => p.length)) + N;
    const cache = this.emptyCache(B, cacheCapacity(longest + Math.max(1, maxNewTokens)), adapter);
    this.writePresent(cache, out, N + T, prompts.map((p) => N + p.length), prompts.map(() => 0));
    return { cache, logits: this.splitRows(out.logits as Float32Array, B) };
  }

  /** Feed one token per row; returns next-token logits [B][V]. Grows the cache when full. */
  decode(cache: KVCache, tokens: number[]): Promise<Float32Array[]> {
    return this.extend(cache, tokens.map((t) => [t]));
  }

  /**
   * Append tokens to every row of a cache (rows may get different counts, at least one each)
   * and return each row's next-token logits [B][V]. Used by decode (one token) and to continue
   * from a cached prefix (e.g. a shared system prompt).
   */
  async extend(cache: KVCache, tokens: number[][]): Promise<Float32Array[]> {
    const B = tokens.length;
    if (B !== cache.len.length) throw new Error(`extend: ${B} rows for a cache of ${cache.len.length}`);
    if (tokens.some((t) => t.length === 0)) throw new Error('extend: every row needs at least one token');
    const longest = Math.max(...tokens.map((t) => t.length));
    const T = longest === 1 ? 1 : promptLength(longest);
    const need = Math.max(...cache.len.map((l, b) => l + tokens[b]!.length));
    if (need > cache.capacity) this.grow(cache, cacheCapacity(need));
    const adapter = cache.adapter;
    const Pn = adapter?.prefixLength ?? 0;
    const cap = cache.capacity;
    const headCopy = this.opts.headCopy === true && B === 1 && T === 1;
    const { run } = await this.compiled({ B, T, withVirtual: false, cache: cap, output: 'last-logits', present: true, headCopy }, adapter);
    const ids = new BigInt64Array(B * T);
    const lastIdx = new BigInt64Array(B);
    const rows: RowLayout[] = cache.len.map((len, b) => {
      const n = tokens[b]!.length;
      tokens[b]!.forEach((id, t) => (ids[b * T + t] = BigInt(id)));
      lastIdx[b] = BigInt(n - 1);
      const queryPos = new Int32Array(T).fill(-1);
      for (let t = 0; t < n; t++) queryPos[t] = Pn + len + t;
      const keyPos = new Int32Array(Pn + cap + T).fill(-1);
      for (let s = 0; s < Pn + len; s++) keyPos[s] = s;
      keyPos.set(queryPos, Pn + cap);
      return { keyPos, queryPos };
    });
    const { cos, sin } = this.rope(rows.map((r) => r.queryPos));
    const masks = biasFeeds(rows, T, Pn + cap + T, this.cfg);
    const extra: Record<string, HostArray> = { ids, cos, sin, ...masks, last_idx: lastIdx };
    for (let l = 0; l < this.cfg.numLayers; l++) {
      extra[`past_k.${l}`] = cache.k[l]!;
      extra[`past_v.${l}`] = cache.v[l]!;
    }
    const out = await run.run(this.feeds(run, adapter, extra));
    this.writePresent(cache, out, T, tokens.map((t) => t.length), [...cache.len]);
    return this.splitRows(out.logits as Float32Array, B);
  }

  /**
   * A new cache whose row b is a copy of row `rows[b]` of `cache` (rows may repeat), e.g. to
   * sample several continuations of one prefilled prompt. `cache` is left as it was.
   */
  selectRows(cache: KVCache, rows: readonly number[]): KVCache {
    const out = this.emptyCache(rows.length, cache.capacity, cache.adapter);
    const size = this.cfg.numKvHeads * cache.capacity * this.cfg.headDim; // one row: [Hkv, cap, Dh]
    rows.forEach((r, b) => {
      if (!(r >= 0 && r < cache.len.length)) throw new Error(`selectRows: row ${r} of a cache of ${cache.len.length}`);
      for (let l = 0; l < this.cfg.numLayers; l++) {
        out.k[l]!.set(cache.k[l]!.subarray(r * size, (r + 1) * size), b * size);
        out.v[l]!.set(cache.v[l]!.subarray(r * size, (r + 1) * size), b * size);
      }
      out.len[b] = cache.len[r]!;
    });
    return out;
  }

  /** An independent copy of a cache (optionally with more capacity), e.g. to reuse a cached prefix. */
  cloneCache(cache: KVCache, capacity = cache.capacity): KVCache {
    const copy: KVCache = { ...cache, k: cache.k.map((a) => a.slice()), v: cache.v.map((a) => a.slice()), len: [...cache.len] };
    if (capacity > cache.capacity) this.grow(copy, capacity);
    return copy;
  }

  /** The output layer transposed, [C, V] (remade when the head's values have changed). */
  private headCopy(): Float32Array {
    const name = headWeightName(this.cfg);
    const w = this.weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    if (!this.head || !this.head.matches(w)) this.head = new HeadCopy(w, this.cfg.vocabSize, this.cfg.hiddenSize);
    return this.head.t;
  }

  private splitRows(flat: Float32Array, B: number): Float32Array[] {
    const V = this.cfg.vocabSize;
    return Array.from({ length: B }, (_, b) => flat.slice(b * V, (b + 1) * V));
  }

  /**
   * A cache of `capacity` slots per row, every row empty. Its arrays come from the pool of
   * released caches when one of the same size is there, so they may hold stale values: harmless,
   * because slots at or past a row's length are masked (weight exactly 0 for any finite value).
   * Reuse matters: fresh memory costs ~1 ms per MB in page faults on first touch (BENCHMARKS.md).
   */
  emptyCache(B: number, capacity: number, adapter: ModelAdapter | null): KVCache {
    const n = B * this.cfg.numKvHeads * capacity * this.cfg.headDim;
    const L = this.cfg.numLayers;
    const take = (): Float32Array => this.pool.get(n)?.pop() ?? new Float32Array(n);
    return {
      capacity,
      k: Array.from({ length: L }, take),
      v: Array.from({ length: L }, take),
      len: new Array<number>(B).fill(0),
      adapter,
    };
  }

  /**
   * Hand a cache that will not be used again back to the pool for the next `emptyCache` of the
   * same size. The pool keeps at most two caches per size; the cache object must not be used after.
   */
  release(cache: KVCache): void {
    for (const a of [...cache.k, ...cache.v]) {
      const list = this.pool.get(a.length) ?? [];
      if (list.length < 2 * 2 * this.cfg.numLayers) list.push(a); // two caches of k and v per size
      this.pool.set(a.length, list);
    }
    cache.k = [];
    cache.v = [];
  }

  private grow(cache: KVCache, capacity: number): void {
    const { numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const B = cache.len.length;
    const copy = (src: Float32Array): Float32Array => {
      const dst = new Float32Array(B * Hkv * capacity * Dh);
      for (let bh = 0; bh < B * Hkv; bh++) dst.set(src.subarray(bh * cache.capacity * Dh, (bh + 1) * cache.capacity * Dh), bh * capacity * Dh);
      return dst;
    };
    cache.k = cache.k.map(copy);
    cache.v = cache.v.map(copy);
    cache.capacity = capacity;
  }

  /** Copy `count[b]` new positions per row (out of Tn computed) into slots starting at `at[b]`. */
  private writePresent(cache: KVCache, out: Record<string, HostArray>, Tn: number, count: number[], at: number[]): void {
    const { numKvHeads: Hkv, headDim: Dh } = this.cfg;
    const cap = cache.capacity;
    for (let l = 0; l < this.cfg.numLayers; l++) {
      const pk = out[`present_k.${l}`] as Float32Array;
      const pv = out[`present_v.${l}`] as Float32Array;
      for (let b = 0; b < count.length; b++) {
        for (let h = 0; h < Hkv; h++) {
          const src = (b * Hkv + h) * Tn * Dh;
          const dst = ((b * Hkv + h) * cap + at[b]!) * Dh;
          cache.k[l]!.set(pk.subarray(src, src + count[b]! * Dh), dst);
          cache.v[l]!.set(pv.subarray(src, src + count[b]! * Dh), dst);
        }
      }
    }
    count.forEach((c, b) => (cache.len[b] = at[b]! + c));
  }
}

/**
 * A [V, C] weight transposed to [C, V], with a fingerprint of the source: 97 values spread over
 * it. Training updates every value, so a changed head is caught by the fingerprint.
 */
class HeadCopy {
  readonly t: Float32Array;
  private readonly at: number[];
  private readonly seen: Float32Array;
  constructor(
    private readonly src: Float32Array,
    V: number,
    C: number,
  ) {
    this.t = new Float32Array(V * C);
    const tile = 64; // in tiles, so that reads and writes both stay in cache lines
    for (let v0 = 0; v0 < V; v0 += tile) {
      for (let c0 = 0; c0 < C; c0 += tile) {
        const v1 = Math.min(V, v0 + tile);
        const c1 = Math.min(C, c0 + tile);
        for (let v = v0; v < v1; v++) for (let c = c0; c < c1; c++) this.t[c * V + v] = src[v * C + c]!;
      }
    }
    this.at = Array.from({ length: 97 }, (_, i) => Math.floor((i * (src.length - 1)) / 96));
    this.seen = Float32Array.from(this.at, (i) => src[i]!);
  }
  matches(w: Float32Array): boolean {
    return w === this.src && this.at.every((i, j) => Object.is(w[i], this.seen[j]));
  }
}
