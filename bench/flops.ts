/**
 * Analytic work counts: FLOPs of the matrix multiplies and bytes of weights read per token.
 *
 * Legend: L layers, C width, H heads, Dh head width, V vocabulary, T tokens per row.
 * A multiply-add counts 2 FLOPs, so a GEMM [M, K] x [K, N] is 2*M*K*N.
 *
 *   projections  2 * tokens * sum over the L layers of in*out of q, k, v, o, gate, up, down
 *   LM head      2 * positionsWithLogits * C * V
 *   attention    4 * L * H * Dh * pairs       QK^T and PV: 2*Dh each per (query, key) pair and head;
 *                                             pairs = unmasked pairs (causal row of T: T(T+1)/2;
 *                                             one decode step after P tokens: P + 1)
 *   backward for the input-embedding gradient (weights frozen, no dW):
 *                each projection y = x W^T needs dx = dy W: 1x its forward FLOPs;
 *                attention needs dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q: 2x its forward.
 *   train step   = 2 * (projections + LM head) + 3 * attention
 *
 * Only useful work is counted: the graph computes the full T x S score matrix and masks it, and
 * prefill computes logits at one position only. Elementwise work (norms, RoPE, softmax, SiLU,
 * cross-entropy) is not counted; it is under 1% of the FLOPs here.
 */
import type { ModelConfig } from '../src/model/config.js';
import { expectedTensorShapes } from '../src/model/config.js';

/** One projection: x [M, K] times W^T, W = `weight` [N, K], giving [M, N]. */
export interface Gemm {
  weight: string;
  K: number;
  N: number;
  /** Rows, where not the workload's M (a weight gradient dW [N, K] = dy^T x has M' = N, K' = M). */
  M?: number;
}

const PROJ = /^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/;

/** The decoder's projections in execution order (every layer). */
export function layerGemms(cfg: ModelConfig): Gemm[] {
  const out: Gemm[] = [];
  for (const [name, shape] of expectedTensorShapes(cfg)) {
    if (PROJ.test(name)) out.push({ weight: name, K: shape[1]!, N: shape[0]! });
  }
  return out;
}

export function headGemm(cfg: ModelConfig): Gemm {
  const weight = cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return { weight, K: cfg.hiddenSize, N: cfg.vocabSize };
}

/** The activation-gradient GEMM of a projection: dx [M, K] = dy [M, N] x W [N, K]. */
export const transposed = (g: Gemm): Gemm => ({ weight: g.weight, K: g.N, N: g.K });

export const gemmFlops = (M: number, gemms: Gemm[]): number => gemms.reduce((s, g) => s + 2 * (g.M ?? M) * g.K * g.N, 0);

export function attentionFlops(cfg: ModelConfig, pairs: number): number {
  return 4 * cfg.numLayers * cfg.numHeads * cfg.headDim * pairs;
}

const causalPairs = (T: number): number => (T * (T + 1)) / 2;

export interface Work {
  /** The GEMMs plain-ORT baselines replay: M rows each. */
  M: number;
  gemms: Gemm[];
  flops: number;
}

/** Prefill of one row of T tokens: every layer at T positions, logits at the last one only. */
export function prefillWork(cfg: ModelConfig, T: number): Work {
  const gemms = layerGemms(cfg);
  const flops = gemmFlops(T, gemms) + gemmFlops(1, [headGemm(cfg)]) + attentionFlops(cfg, causalPairs(T));
  return { M: T, gemms, flops };
}

/** One decode step (batch 1) after `past` cached positions: logits at the new position. */
export function decodeWork(cfg: ModelConfig, past: number): Work {
  const gemms = [...layerGemms(cfg), headGemm(cfg)];
  return { M: 1, gemms, flops: gemmFlops(1, gemms) + attentionFlops(cfg, past + 1) };
}

/** Forward + input-embedding gradient of B rows of T tokens with logits and a loss everywhere. */
export function trainWork(cfg: ModelConfig, B: number, T: number): Work {
  const fwd = [...layerGemms(cfg), headGemm(cfg)];
  const bwd = [...fwd].reverse().map(transposed);
  const gemms = [...fwd, ...bwd];
  return { M: B * T, gemms, flops: gemmFlops(B * T, gemms) + 3 * attentionFlops(cfg, B * causalPairs(T)) };
}

/**
 * Bytes one decode step must read from memory: every weight matrix once (the tied embedding as
 * the LM head; its gather touches one row), norms included. The KV cache is counted separately.
 */
export function decodeWeightBytes(cfg: ModelConfig): number {
  let n = 0;
  for (const [name, shape] of expectedTensorShapes(cfg)) {
    if (name === 'model.embed_tokens.weight' && !cfg.tieWordEmbeddings) n += shape[1]!;
    else n += shape.reduce((a, b) => a * b, 1);
  }
  return 4 * n;
}

/** KV-cache bytes a decode graph reads: keys and values of every layer at full capacity. */
export const kvCacheBytes = (cfg: ModelConfig, capacity: number): number =>
  4 * 2 * cfg.numLayers * cfg.numKvHeads * capacity * cfg.headDim;
