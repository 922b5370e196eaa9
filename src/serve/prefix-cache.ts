/**
 * Prefix KV cache: keys/values of prompt prefixes seen before, so that a repeated system prompt
 * (or a conversation that continues) is not prefilled again.
 *
 * Prefixes are cut at block boundaries (BLOCK tokens) and keyed as in vLLM's automatic prefix
 * caching: a chain of block hashes, hash_i = sha1(hash_{i-1}, ids of block i), seeded with the
 * served model id so that adapters (whose keys/values differ) never share entries. An entry is a
 * one-row KVCache holding the adapter's virtual tokens (soft prompt; prefill puts them first)
 * and the prefix's tokens, and nothing else. Entries are evicted least recently used first once
 * the cached slots exceed a budget.
 */
import { createHash } from 'node:crypto';
import type { KVCache } from '../model/lm.js';

export const BLOCK = 16;

export interface PrefixEntry {
  /** One row: virtual tokens + `tokens` prompt tokens. */
  kv: KVCache;
  /** Prompt tokens covered (a multiple of the block size). */
  tokens: number;
}

export interface PrefixCacheStats {
  hits: number;
  misses: number;
  /** Prompt tokens taken from the cache instead of being computed. */
  hit_tokens: number;
  entries: number;
  /** Slots held (virtual tokens included), against `max_slots`. */
  slots: number;
  max_slots: number;
  evictions: number;
}

export class PrefixCache {
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, PrefixEntry>();
  private held = 0;
  private hits = 0;
  private misses = 0;
  private hitTokens = 0;
  private evictions = 0;

  /** `maxSlots` = 0 disables the cache. */
  constructor(
    readonly maxSlots: number,
    readonly block = BLOCK,
  ) {}

  get enabled(): boolean {
    return this.maxSlots > 0;
  }

  /** Chained hashes of the first `blocks` blocks of `ids`: keys[i] names ids[0, (i+1)*block). */
  private keys(model: string, ids: number[], blocks: number): string[] {
    const out: string[] = [];
    let h = createHash('sha1').update(model).digest('hex');
    for (let i = 0; i < blocks; i++) {
      h = createHash('sha1').update(h).update(ids.slice(i * this.block, (i + 1) * this.block).join(',')).digest('hex');
      out.push(h);
    }
    return out;
  }

  /** The longest cached prefix of `ids` with at most `maxTokens` tokens (counts a hit or a miss). */
  lookup(model: string, ids: number[], maxTokens: number): PrefixEntry | null {
    if (!this.enabled) return null;
    const keys = this.keys(model, ids, Math.floor(Math.max(0, maxTokens) / this.block));
    for (let i = keys.length - 1; i >= 0; i--) {
      const e = this.entries.get(keys[i]!);
      if (!e) continue;
      this.entries.delete(keys[i]!); // move to most recently used
      this.entries.set(keys[i]!, e);
      this.hits++;
      this.hitTokens += e.tokens;
      return e;
    }
    this.misses++;
    return null;
  }

  /** Whether a prefix of `tokens` tokens (a block multiple) is worth inserting. */
  has(model: string, ids: number[], tokens: number): boolean {
    const keys = this.keys(model, ids, tokens / this.block);
    return keys.length > 0 && this.entries.has(keys[keys.length - 1]!);
  }

  /** Add the prefix ids[0, entry.tokens) (entry.tokens a positive block multiple). */
  insert(model: string, ids: number[], entry: PrefixEntry): void {
    if (!this.enabled || entry.tokens <= 0 || entry.tokens % this.block !== 0) return;
    const slots = entry.kv.len[0]!;
    if (slots > this.maxSlots) return;
    const key = this.keys(model, ids, entry.tokens / this.block).pop()!;
    if (this.entries.has(key)) return;
    this.entries.set(key, entry);
    this.held += slots;
    for (const [k, e] of this.entries) {
      if (this.held <= this.maxSlots) break;
      this.entries.delete(k);
      this.held -= e.kv.len[0]!;
      this.evictions++;
    }
  }

  /** The block boundary at or below n. */
  floor(n: number): number {
    return Math.floor(Math.max(0, n) / this.block) * this.block;
  }

  stats(): PrefixCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      hit_tokens: this.hitTokens,
      entries: this.entries.size,
      slots: this.held,
      max_slots: this.maxSlots,
      evictions: this.evictions,
    };
  }
}
