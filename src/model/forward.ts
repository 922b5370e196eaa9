/**
 * Graph builders for the three ways the model runs: scoring (log-probabilities of given
 * tokens), prefill/decode with a KV cache (logits at one position per row + new keys/values),
 * and full logits (tests). All share one layout of inputs:
 *
 *   ids  [B, T] int64                 the new tokens
 *   cos, sin [B, T', Dh]              T' = N + T, N = adapter virtual tokens (prefill/score only)
 *   bias [B, 1, T', Pn + Pc + T']     Pn = adapter prefix length, Pc = KV-cache capacity
 *   bias_window (same shape)          the sliding layers' mask, when only some layers slide
 *   past_k.l, past_v.l [B, Hkv, Pc, Dh] (when Pc > 0)
 */
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { targetLogProbs } from '../graph/nn.js';
import type { ModelAdapter } from './adapter.js';
import type { ModelConfig } from './config.js';
import { mixedWindows } from './masks.js';
import { type KV, WeightInputs, batchPrefix, decoder, embed, lmHead, prependVirtualTokens, withHeadHook } from './decoder.js';

export interface ForwardSpec {
  B: number;
  T: number;
  /** Prepend the adapter's virtual tokens (true for prefill/score, false for decode steps). */
  withVirtual: boolean;
  /** KV-cache capacity fed as past (0 = none). */
  cache: number;
  output: 'logprobs' | 'last-logits' | 'all-logits';
  /** Also output the new keys/values (for the cache). */
  present: boolean;
  /**
   * B = 1, T = 1 last-logits only: the head is fed transposed, [C, V], as HEAD_COPY_INPUT, and
   * multiplied without a transpose (ORT's fastest one-row product; BENCHMARKS.md finding 34).
   * Ignored when the adapter has its own head.
   */
  headCopy?: boolean;
}

/** The graph input that carries the transposed output layer [C, V] (ForwardSpec.headCopy). */
export const HEAD_COPY_INPUT = 'lm_head.weight.transposed';

export interface BuiltForward {
  graph: Graph;
  weights: WeightInputs;
  outputs: Record<string, Value>;
}

export function buildForward(cfg: ModelConfig, spec: ForwardSpec, adapter?: ModelAdapter | null): BuiltForward {
  const g = new Graph();
  const w = new WeightInputs(g, cfg);
  const { B, T } = spec;
  const hooks = adapter ? adapter.attach(g, w) : {};
  const N = spec.withVirtual ? (adapter?.virtualTokens ?? 0) : 0;
  const Pn = adapter?.prefixLength ?? 0;
  const Tp = N + T;
  const S = Pn + spec.cache + Tp;
  const Dh = cfg.headDim;

  const ids = g.input('ids', [B, T], 'int64');
  let embeds = embed(w, ids, hooks); // [B, T, C]
  if (N > 0 && hooks.virtualTokens) embeds = prependVirtualTokens(embeds, hooks.virtualTokens); // [B, T', C]
  const cos = g.input('cos', [B, Tp, Dh]);
  const sin = g.input('sin', [B, Tp, Dh]);
  const bias = g.input('bias', [B, 1, Tp, S]);
  const biasWindow = mixedWindows(cfg) ? g.input('bias_window', [B, 1, Tp, S]) : null;

  // Per layer: [adapter prefix, KV cache] as separate key blocks (attention never concatenates them).
  const past: KV[][] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const blocks: KV[] = [];
    if (Pn > 0 && hooks.prefix) blocks.push(batchPrefix(hooks.prefix[l]!, B)); // [B, Hkv, Pn, Dh]
    if (spec.cache > 0) {
      const shape = [B, cfg.numKvHeads, spec.cache, Dh];
      blocks.push({ k: g.input(`past_k.${l}`, shape), v: g.input(`past_v.${l}`, shape) });
    }
    past.push(blocks);
  }

  // Without a cache or prefix the keys are the new positions under a causal mask.
  const causal = spec.cache === 0 && Pn === 0;
  const { hidden, present } = decoder(w, { embeds, cos, sin, bias, biasWindow, past, causal }, hooks); // hidden [B, T', C]
  const outputs: Record<string, Value> = {};
  if (spec.output === 'logprobs') {
    const targets = g.input('targets', [B, T], 'int64');
    const h = op.reshape(op.slice(hidden, 1, N, Tp), [B * T, cfg.hiddenSize]);
    outputs.logprobs = op.reshape(targetLogProbs(lmHead(w, h, hooks), op.reshape(targets, [B * T])), [B, T]);
  } else if (spec.output === 'last-logits') {
    const idx = g.input('last_idx', [B, 1, 1], 'int64'); // index into T'
    const h = op.gatherElements(hidden, op.expand(idx, [B, 1, cfg.hiddenSize]), 1); // [B, 1, C]
    if (spec.headCopy && !w.isReplaced('lm_head.weight')) {
      if (B !== 1 || T !== 1) throw new Error(`forward: a transposed head is for one row and one position, not ${B}x${T}`);
      const h1 = op.reshape(h, [1, cfg.hiddenSize]);
      outputs.logits = withHeadHook(hooks, h1, op.matmul(h1, g.input(HEAD_COPY_INPUT, [cfg.hiddenSize, cfg.vocabSize]))); // [1, V]
    } else {
      outputs.logits = op.reshape(lmHead(w, h, hooks), [B, cfg.vocabSize]);
    }
  } else {
    outputs.logits = lmHead(w, op.slice(hidden, 1, N, Tp), hooks); // [B, T, V]
  }
  if (spec.present) {
    present.forEach((kv, l) => {
      outputs[`present_k.${l}`] = kv.k;
      outputs[`present_v.${l}`] = kv.v;
    });
  }
  return { graph: g, weights: w, outputs };
}
