/**
 * Composite functions built from primitives (gradients come for free).
 * Shape legend: B batch, T query positions, S key positions, C model width,
 * H query heads, Hkv key/value heads, G = H / Hkv, Dh head width, V vocabulary.
 */
import type { Value } from './ir.js';
import * as op from './ops.js';

/** x @ W^T (+ bias) (+ residual) for an nn.Linear weight W [out, in]; x [..., in] -> [..., out]. */
export function linear(x: Value, w: Value, bias?: Value | null, residual?: Value): Value {
  const [out, inF] = w.shape as [number, number];
  if (x.shape[x.rank - 1] !== inF) throw new Error(`linear: input width ${x.shape[x.rank - 1]} != weight in-features ${inF}`);
  const lead = x.shape.slice(0, -1);
  const x2 = op.reshape(x, [-1, inF]); // [N, in]
  // residual + x W^T in one Gemm (its C input), no Add node
  let y = op.gemm(x2, w, false, true, 1, residual ? op.reshape(residual, [-1, out]) : undefined); // [N, out]
  if (bias) y = op.add(y, bias);
  return op.reshape(y, [...lead, out]);
}

/** RMSNorm (HF LlamaRMSNorm): x / sqrt(mean(x^2) + eps) * w, over the last axis. */
export function rmsNorm(x: Value, w: Value, eps: number): Value {
  // Pow(x, 2), not x * x: ONNX Runtime fuses Pow -> ReduceMean -> Add -> Sqrt -> Div -> Mul
  // into one SimplifiedLayerNormalization kernel where no gradient needs the intermediates.
  const ms = op.reduceMean(op.pow(x, 2), [-1], true);
  return op.mul(op.div(x, op.sqrt(op.add(ms, eps))), w);
}

export const silu = op.silu;

/** The rotary kernel's inputs for rows of T positions: table rows b*T + t, pos [B, T]. */
export interface RopeInputs {
  pos: Value; // [B, T] int64
  cos: Value; // [B*T, Dh/2]
  sin: Value; // [B*T, Dh/2]
}

/**
 * From per-position tables cos, sin [B, T, Dh] in Hugging Face's layout (the two halves equal,
 * as rotate-half RoPE builds them): their first halves as [B*T, Dh/2] rows and pos = b*T + t.
 */
export function ropeInputs(cos: Value, sin: Value): RopeInputs {
  const [B, T, Dh] = cos.shape as [number, number, number];
  const half = (t: Value): Value => op.reshape(op.slice(t, -1, 0, Dh / 2), [B * T, Dh / 2]);
  const pos = cos.graph.constant(BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i)), [B, T]);
  return { pos, cos: half(cos), sin: half(sin) };
}

/** Rotary embedding (rotate-half convention). x [B, h, T, Dh] -> [B, h, T, Dh]. */
export function applyRope(x: Value, r: RopeInputs): Value {
  return op.rotary(x, r.pos, r.cos, r.sin);
}

/**
 * Grouped-query attention without materialising repeated K/V.
 * q [B, H, T, Dh]; k, v [B, Hkv, S, Dh], or lists of blocks [B, Hkv, S_i, Dh] along the key axis
 * (e.g. [cached past; new]) with S = sum S_i; bias [B, 1, T, S] (0 or large negative).
 * With few query rows (G*T <= 2*Dh: decode) blocks are not concatenated: each gets its own score
 * matmul, the small score blocks are joined for one softmax, and the outputs p_i v_i are summed.
 * Equal to attention over the concatenated keys, without copying the whole cache every decode
 * step (BENCHMARKS.md, finding 3). With more rows the blocks are concatenated (the copy is smaller
 * than the scores).
 * Returns [B, T, H*Dh].
 */
export function attention(q: Value, k: Value | Value[], v: Value | Value[], bias: Value, scale: number, opts: { causalBlocks?: number } = {}): Value {
  const ks = Array.isArray(k) ? k : [k];
  const vs = Array.isArray(v) ? v : [v];
  if (ks.length !== vs.length || ks.length === 0) throw new Error(`attention: ${ks.length} key blocks but ${vs.length} value blocks`);
  const [B, H, T, Dh] = q.shape as [number, number, number, number];
  const nb = opts.causalBlocks ?? 1;
  if (nb > 1) {
    if (ks.length !== 1 || ks[0]!.shape[2] !== T) throw new Error(`attention: causal blocks need one key block of the query length ${T}`);
    return causalBlockAttention(q, ks[0]!, vs[0]!, bias, scale, nb);
  }
  const Hkv = ks[0]!.shape[1]!;
  const G = H / Hkv;
  if (ks.length > 1 && G * T > 2 * Dh) {
    // Many query rows (training, prefill after a prefix): copying the key/value blocks into one
    // ([S, Dh] each) is cheaper than splitting the [G*T, S] scores and probabilities per block
    // (prefix tuning step: BENCHMARKS.md, finding 29). Decode (T = 1) keeps the blocks.
    return attention(q, op.concat(ks, 2), op.concat(vs, 2), bias, scale);
  }
  const sizes = ks.map((kb) => kb.shape[2]!);
  const S = sizes.reduce((x, y) => x + y, 0);
  const qg = op.reshape(q, [B, Hkv, G * T, Dh]); // heads h = j*G + g share kv head j
  // the scale on each block's product, where ORT folds it into the MatMul (FusedMatMul alpha)
  const blocks = ks.map((kb) => op.mul(op.matmul(qg, op.transposeLast2(kb)), scale)); // [B, Hkv, G*T, S_i]
  const scores = op.concat(blocks, 3); // [B, Hkv, G*T, S]
  // one query row per head (decode) or one head per group: the mask broadcasts as it is
  const biased = T === 1 || G === 1 ? op.add(scores, bias) : op.add(op.reshape(scores, [B, Hkv, G, T, S]), op.reshape(bias, [B, 1, 1, T, S]));
  const p = op.reshape(op.softmax(biased), [B, Hkv, G * T, S]);
  let at = 0;
  const outs = vs.map((vb, i) => {
    const pi = vs.length === 1 ? p : op.slice(p, 3, at, (at += sizes[i]!)); // [B, Hkv, G*T, S_i]
    return op.matmul(pi, vb); // [B, Hkv, G*T, Dh]
  });
  const out = op.reshape(outs.reduce((a, b) => op.add(a, b)), [B, H, T, Dh]); // [B, H, T, Dh]
  return op.reshape(op.transpose(out, [0, 2, 1, 3]), [B, T, H * Dh]);
}

/**
 * Causal attention in query blocks, for keys that are the queries' own positions under a causal
 * mask (prefill without a cache): block i of `nb` scores only the keys up to its last query, so
 * the masked upper triangle is mostly not computed (nb = 4: 62.5% of the score matrix). Equal to
 * attention() under such a mask; q [B, H, T, Dh], k, v [B, Hkv, T, Dh], bias [B, 1, T, T].
 */
function causalBlockAttention(q: Value, k: Value, v: Value, bias: Value, scale: number, nb: number): Value {
  const [B, H, T, Dh] = q.shape as [number, number, number, number];
  const Hkv = k.shape[1]!;
  const G = H / Hkv;
  const q5 = op.reshape(q, [B, Hkv, G, T, Dh]); // heads h = j*G + g share kv head j
  const outs: Value[] = [];
  for (let i = 0; i < nb; i++) {
    const [t0, t1] = [Math.floor((i * T) / nb), Math.floor(((i + 1) * T) / nb)];
    const Tb = t1 - t0;
    const qb = op.reshape(op.slice(q5, 3, t0, t1), [B, Hkv, G * Tb, Dh]);
    const kb = op.slice(k, 2, 0, t1); // keys up to the block's last query
    // the scale on the queries ([G*Tb, Dh]), not the scores ([G*Tb, t1]): the backward pass then
    // has no product of the scores' gradient with it (Mul kernels 354 -> 260 ms per 2 x 1024 LoRA
    // step, BENCHMARKS.md finding 46)
    const scores = op.matmul(op.mul(qb, scale), op.transposeLast2(kb)); // [B, Hkv, G*Tb, t1]
    const bb = op.slice(op.slice(bias, 2, t0, t1), 3, 0, t1); // [B, 1, Tb, t1]
    const p = op.softmax(op.add(op.reshape(scores, [B, Hkv, G, Tb, t1]), op.reshape(bb, [B, 1, 1, Tb, t1])));
    outs.push(op.reshape(op.matmul(op.reshape(p, [B, Hkv, G * Tb, t1]), op.slice(v, 2, 0, t1)), [B, Hkv, G, Tb, Dh]));
  }
  const out = op.reshape(op.concat(outs, 3), [B, H, T, Dh]);
  return op.reshape(op.transpose(out, [0, 2, 1, 3]), [B, T, H * Dh]);
}

/**
 * Token log-probabilities: logits [N, V], targets [N] int64 -> log p(target) [N].
 * Targets equal to `ignoreIndex` give 0 (their index is replaced by 0 before gathering).
 */
export function targetLogProbs(logits: Value, targets: Value, ignoreIndex = -100): Value {
  const { valid, pick } = targetPicker(targets, ignoreIndex);
  return op.mul(pick(op.logSoftmax(logits)), op.cast(valid, 'float32'));
}

/** valid [N] (target != ignoreIndex) and pick(x [N, V]) = x[i, target_i] [N] (index 0 where ignored). */
function targetPicker(targets: Value, ignoreIndex: number): { valid: Value; pick: (x: Value) => Value } {
  const [N] = targets.shape as [number];
  const valid = op.not(op.equal(targets, ignoreIndex));
  const safe = op.reshape(op.where(valid, targets, targets.graph.constant(new BigInt64Array([0n]), [])), [N, 1]);
  return { valid, pick: (x) => op.reshape(op.gatherElements(x, safe, 1), [N]) };
}

/**
 * 1 where targets[i] is a largest entry of logits[i] (an argmax hit), 0 elsewhere and where the
 * target is `ignoreIndex`; logits [N, V], targets [N] int64 -> bool [N]. A ReduceMax and a
 * gather instead of ArgMax, which ORT's CPU kernel runs ~7x slower over [512, 49152] (56 vs
 * 8 ms). A target tied with another maximum counts as a hit.
 */
export function targetIsMax(logits: Value, targets: Value, ignoreIndex = -100): Value {
  const { valid, pick } = targetPicker(targets, ignoreIndex);
  return op.and(op.not(op.less(pick(logits), op.reduceMax(logits, [1]))), valid);
}

/**
 * Mean cross-entropy over targets != ignoreIndex (numerically stable via logSoftmax).
 * logits [N, V], targets [N] int64. Returns a scalar; 0 when every target is ignored.
 */
export function crossEntropy(logits: Value, targets: Value, ignoreIndex = -100): Value {
  const lp = targetLogProbs(logits, targets, ignoreIndex);
  const count = op.reduceSum(op.cast(op.not(op.equal(targets, ignoreIndex)), 'float32'), [0]);
  return op.div(op.neg(op.reduceSum(lp, [0])), op.stopGradient(op.maximum(count, 1)));
}
