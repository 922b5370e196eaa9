/**
 * Training graphs: forward + backward in one ONNX graph, returning only the loss statistics
 * and the gradients of the trainable tensors (the frozen model builds no weight-gradient work).
 *
 * The LM head runs only on the K positions that carry a label (host-gathered, K a power of two):
 * for supervised data most positions are prompt, and the head is the largest matmul.
 *
 * Inputs: ids [B, T] int64; cos, sin [B, T', Dh]; bias [B, 1, T', Pn + T'] (and bias_window, the sliding layers' mask, where only some layers slide);
 *         label_pos [K] int64 (flat index into B*T, padding -> 0); label_ids [K] int64 (-100 = padding).
 * Outputs: loss_sum (sum of -log p over labels), correct (argmax hits), grad:<name> per trainable,
 *          grad_sumsq [n] (each gradient's sum of squares, in the order of the grad outputs).
 */
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { targetIsMax, targetLogProbs } from '../graph/nn.js';
import { grad } from '../graph/autodiff.js';
import type { ModelConfig } from '../model/config.js';
import { DEFAULT_RECOMPUTE, type DecoderHooks, type Recompute, WeightInputs, batchPrefix, decoder, embed, lmHead, prependVirtualTokens } from '../model/decoder.js';
import { mixedWindows } from '../model/masks.js';
import type { PeftAdapter } from '../peft/types.js';
import { type PreferenceLoss, preferenceLoss } from './losses.js';

export interface TrainShape {
  B: number;
  T: number;
  K: number;
}

export interface PolicyForward {
  graph: Graph;
  weights: WeightInputs;
  /** Hidden states of the real (non-virtual) positions, flattened [B*T, C]. */
  hidden: Value;
  /** The adapter's hooks (the output layer's product goes through them: `lmHead(weights, x, hooks)`). */
  hooks: DecoderHooks;
}

/** How a training graph is built (beyond its shapes). */
export interface TrainGraphOptions {
  /**
   * What the backward pass recomputes (decoder.ts `Recompute`). Default 'attention': the same
   * speed at 128 tokens, 15-35% less peak memory from 512 tokens on (BENCHMARKS.md, finding 45).
   */
  recompute?: Recompute;
}

/** The shared forward of every training graph (SFT, DPO, distillation). */
export function policyForward(cfg: ModelConfig, adapter: PeftAdapter, B: number, T: number, opts: TrainGraphOptions = {}): PolicyForward {
  const g = new Graph();
  const w = new WeightInputs(g, cfg);
  const hooks = adapter.attach(g, w, { training: true });
  const N = adapter.virtualTokens;
  const Pn = adapter.prefixLength;
  const Tp = N + T;
  const C = cfg.hiddenSize;
  const Dh = cfg.headDim;
  const ids = g.input('ids', [B, T], 'int64');
  let embeds = embed(w, ids, hooks); // [B, T, C]
  if (N > 0 && hooks.virtualTokens) embeds = prependVirtualTokens(embeds, hooks.virtualTokens); // [B, N + T, C]
  const cos = g.input('cos', [B, Tp, Dh]);
  const sin = g.input('sin', [B, Tp, Dh]);
  const bias = g.input('bias', [B, 1, Tp, Pn + Tp]);
  const biasWindow = mixedWindows(cfg) ? g.input('bias_window', [B, 1, Tp, Pn + Tp]) : null; // the sliding layers' mask
  const past = hooks.prefix?.map((kv) => [batchPrefix(kv, B)]); // per layer [B, Hkv, Pn, Dh]
  // Without a prefix the keys are the sequence's own positions under a causal mask: attention may
  // skip most of the masked triangle (query blocks from 256 positions).
  const { hidden } = decoder(w, { embeds, cos, sin, bias, biasWindow, past, causal: !past, recompute: opts.recompute ?? DEFAULT_RECOMPUTE }, hooks); // [B, T', C]
  const real = op.reshape(op.slice(hidden, 1, N, Tp), [B * T, C]); // [B*T, C]
  return { graph: g, weights: w, hidden: real, hooks };
}

/**
 * Gradients of `loss` for the adapter's tensors and its trainable base weights, as outputs
 * grad:<name>, and grad_sumsq [n]: each one's sum of squares.
 */
export function trainableGrads(f: PolicyForward, adapter: PeftAdapter, loss: Value): Record<string, Value> {
  const wrt: Value[] = [];
  const names: string[] = [];
  // the adapter's inputs as the whole graph uses them (the head's hook adds some after the decoder)
  const inputs = new Map(f.graph.inputs.map((v) => [v.name!, v]));
  for (const p of adapter.params) {
    const v = inputs.get(p.name);
    if (!v) throw new Error(`training graph: adapter tensor ${p.name} is not used by the model`);
    wrt.push(v);
    names.push(p.name);
  }
  for (const name of adapter.baseTrainable) {
    wrt.push(f.weights.get(name));
    names.push(name);
  }
  const grads = grad(loss, wrt);
  const out: Record<string, Value> = Object.fromEntries(names.map((n, i) => [`grad:${n}`, grads[i]!]));
  // Each gradient's sum of squares, read where it is made (often still in cache) rather than in a
  // pass of its own on the host: the loop's clipping norm for a step of one micro-batch.
  const sq = grads.map((gr) => op.reshape(op.reduceSumSquare(gr!, gr!.shape.map((_, i) => i), true), [1]));
  if (sq.length > 0) out.grad_sumsq = sq.length === 1 ? sq[0]! : op.concat(sq, 0); // [n]
  return out;
}

/** SFT step (or, with withGrads false, the held-out evaluation graph). */
export function buildSftStep(cfg: ModelConfig, adapter: PeftAdapter, s: TrainShape, withGrads = true, opts: TrainGraphOptions = {}): Record<string, Value> {
  const f = policyForward(cfg, adapter, s.B, s.T, opts);
  const g = f.graph;
  const pos = g.input('label_pos', [s.K], 'int64');
  const labels = g.input('label_ids', [s.K], 'int64');
  const logits = lmHead(f.weights, op.gather(f.hidden, pos), f.hooks); // [K, V]
  const lp = targetLogProbs(logits, labels); // [K], 0 at padding
  const lossSum = op.neg(op.reduceSum(lp, [0]));
  const correct = op.reduceSum(op.cast(targetIsMax(logits, labels), 'float32'), [0]);
  return { loss_sum: lossSum, correct, ...(withGrads ? trainableGrads(f, adapter, lossSum) : {}) };
}

export interface PairShape {
  /** Pairs in the batch; rows 0..P-1 are chosen, P..2P-1 rejected. */
  P: number;
  T: number;
  K: number;
}

/**
 * Per-row log-probabilities of the labelled tokens: sum over label slots, rows picked by a
 * one-hot [K, B] input; with the number of labels per row.
 */
function sequenceLogpsOf(f: PolicyForward, B: number, K: number): { logps: Value; tokens: Value } {
  const g = f.graph;
  const pos = g.input('label_pos', [K], 'int64');
  const labels = g.input('label_ids', [K], 'int64');
  const rowOf = g.input('label_row', [K, B]);
  const lp = targetLogProbs(lmHead(f.weights, op.gather(f.hidden, pos), f.hooks), labels); // [K]
  return { logps: op.reshape(op.matmul(op.reshape(lp, [1, K]), rowOf), [B]), tokens: op.reduceSum(rowOf, [0]) }; // [B], [B]
}

/** log p(response | prompt) per row (no gradients). Inputs: the batch, label_row [K, B]. Output: logps [B]. */
export function buildSequenceLogps(cfg: ModelConfig, adapter: PeftAdapter, s: TrainShape): Record<string, Value> {
  return { logps: sequenceLogpsOf(policyForward(cfg, adapter, s.B, s.T), s.B, s.K).logps };
}

/**
 * Preference step: sequence log-probabilities of chosen and rejected rows, the implicit reward
 * margin against fed reference log-probabilities (ref_logps [2P]), and the preference loss.
 * Outputs: logps [2P], loss_sum, grad:<name> (withGrads).
 */
export function buildPreferenceStep(
  cfg: ModelConfig,
  adapter: PeftAdapter,
  s: PairShape,
  loss: { kind: PreferenceLoss; beta: number; sftWeight?: number },
  withGrads = true,
  opts: TrainGraphOptions = {},
): Record<string, Value> {
  const R = 2 * s.P;
  const f = policyForward(cfg, adapter, R, s.T, opts);
  const { logps, tokens } = sequenceLogpsOf(f, R, s.K);
  const ref = f.graph.input('ref_logps', [R]);
  const diff = op.sub(logps, ref); // log pi - log ref, per row
  const d = op.sub(op.slice(diff, 0, 0, s.P), op.slice(diff, 0, s.P, R)); // [P]
  let perPair = preferenceLoss(loss.kind, d, loss.beta); // [P]
  if (loss.sftWeight) {
    // RPO (Pang et al. 2024): + w * NLL of the chosen response per token, which keeps DPO from
    // lowering the chosen answer along with the rejected one.
    const chosenNll = op.div(op.neg(op.slice(logps, 0, 0, s.P)), op.maximum(op.slice(tokens, 0, 0, s.P), 1));
    perPair = op.add(perPair, op.mul(chosenNll, loss.sftWeight));
  }
  const lossSum = op.reduceSum(perPair, [0]);
  return { logps, loss_sum: lossSum, ...(withGrads ? trainableGrads(f, adapter, lossSum) : {}) };
}

/**
 * Logits of the K label positions only ([K, V]); no gradients. Used for teachers (distillation)
 * and evaluation.
 */
export function buildLogitsAt(cfg: ModelConfig, adapter: PeftAdapter, s: TrainShape): Record<string, Value> {
  const f = policyForward(cfg, adapter, s.B, s.T);
  const pos = f.graph.input('label_pos', [s.K], 'int64');
  return { logits: lmHead(f.weights, op.gather(f.hidden, pos), f.hooks) };
}

/**
 * Distillation step: cross-entropy of the student against sparse teacher distributions at the
 * K label positions: -sum_k sum_j p_teacher[k, j] log p_student(idx[k, j]).
 * (KL(teacher || student) = this - H(teacher); the entropy does not depend on the student.)
 * Inputs: label_pos [K], teacher_idx [K, J] int64, teacher_p [K, J] (rows of padding slots are 0).
 */
export function buildDistillStep(cfg: ModelConfig, adapter: PeftAdapter, s: TrainShape, J: number, withGrads = true, opts: TrainGraphOptions = {}): Record<string, Value> {
  const f = policyForward(cfg, adapter, s.B, s.T, opts);
  const g = f.graph;
  const pos = g.input('label_pos', [s.K], 'int64');
  const idx = g.input('teacher_idx', [s.K, J], 'int64');
  const p = g.input('teacher_p', [s.K, J]);
  const logits = lmHead(f.weights, op.gather(f.hidden, pos), f.hooks); // [K, V]
  const lsm = op.logSoftmax(logits);
  const picked = op.gatherElements(lsm, idx, 1); // [K, J]
  const ce = op.neg(op.reduceSum(op.mul(picked, p), [0, 1]));
  const agree = op.cast(targetIsMax(logits, op.reshape(op.slice(idx, 1, 0, 1), [s.K])), 'float32');
  const out: Record<string, Value> = { loss_sum: ce, agree };
  return withGrads ? { ...out, ...trainableGrads(f, adapter, ce) } : out;
}
