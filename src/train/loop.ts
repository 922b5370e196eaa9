/**
 * The training loop shared by every objective (SFT, DPO, distillation): gradient accumulation,
 * clipping, AdamW with a schedule, periodic evaluation with early stopping, checkpoints with
 * exact resume, metrics.jsonl, a progress bar and a loss-curve PNG. A non-finite loss or gradient
 * stops the run before the update, with a one-line error.
 */
import { join } from 'node:path';
import type { PeftAdapter } from '../peft/types.js';
import { MetricsLog } from '../util/metrics.js';
import { lossCurvePng } from '../util/plot.js';
import { createProgress } from '../util/progress.js';
import { fail } from '../util/errors.js';
import { type LoopState, hasCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { AdamW, type Trainable, clipFactor, gradNorm } from './optimizer.js';
import { type ScheduleKind, learningRate } from './schedule.js';

export interface StepResult {
  /** Sum of the loss over `weight` units (tokens, pairs); the loop divides by the total weight. */
  lossSum: number;
  weight: number;
  /** Gradients of lossSum by trainable name. */
  grads: Map<string, Float32Array>;
  /** The sum of squares of `grads`, where the graph computed it (saves the loop a pass over them). */
  gradSumSq?: number;
  /** Extra sums to report per unit of weight (e.g. correct tokens). */
  sums?: Record<string, number>;
  tokens: number;
}

export interface Objective<B> {
  /** Micro-batches of one epoch, in a deterministic order for (seed, epoch). */
  batches(epoch: number): B[];
  step(batch: B, stepIndex: number): Promise<StepResult>;
  /** Held-out metrics; `eval_loss` drives early stopping. */
  evaluate?(): Promise<Record<string, number>>;
}

export interface LoopOptions {
  epochs: number;
  maxSteps?: number;
  gradAccum: number;
  lr: number;
  /** Warmup steps (>= 1) or a fraction of the total (< 1). */
  warmup: number;
  schedule: ScheduleKind;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  maxGradNorm: number;
  evalEvery: number;
  saveEvery: number;
  /** Stop after this many evaluations without improvement (0 = never). */
  patience: number;
  outDir: string;
  resume: boolean;
  label: string;
  /** Options that a resumed run must share (method, data hash, hyperparameters). */
  fingerprint: Record<string, unknown>;
  /** Testing aid: stop (as if killed) after this many optimizer steps, leaving the checkpoint. */
  interruptAfter?: number;
  quiet?: boolean;
  /** Called after every optimizer update (the adapter's `changed`: derived inference inputs go stale). */
  onUpdate?: () => void;
}

export interface LoopResult {
  steps: number;
  interrupted: boolean;
  stoppedEarly: boolean;
  lastLoss: number;
  lastEval: Record<string, number> | null;
  losses: number[];
}

export function trainables(adapter: PeftAdapter, weights: Map<string, Float32Array>): Trainable[] {
  const out: Trainable[] = adapter.params.map((p) => ({ name: p.name, data: p.data, decay: p.name.startsWith('lora.') }));
  for (const name of adapter.baseTrainable) {
    const data = weights.get(name);
    if (!data) throw new Error(`trainable weight ${name} missing`);
    // As HF Trainer: no decay on norms and biases.
    out.push({ name, data, decay: !/norm\.weight$|\.bias$/.test(name) });
  }
  return out;
}

export async function trainLoop<B>(params: Trainable[], objective: Objective<B>, o: LoopOptions): Promise<LoopResult> {
  const perEpoch = Math.ceil(objective.batches(0).length / o.gradAccum);
  const total = o.maxSteps ?? perEpoch * o.epochs;
  const warmup = o.warmup < 1 ? Math.round(o.warmup * total) : o.warmup;
  const opt = new AdamW(params, { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay });
  let state: LoopState = { step: 0, epoch: 0, batchIndex: 0, bestEval: null, badEvals: 0, fingerprint: o.fingerprint };
  if (o.resume && hasCheckpoint(o.outDir)) {
    state = loadCheckpoint(o.outDir, params, opt, o.fingerprint);
    o.onUpdate?.();
  }
  let lastSaved = state.step; // the step of the newest checkpoint (0: none)
  const save = (): void => {
    saveCheckpoint(o.outDir, state, params, opt);
    lastSaved = state.step;
  };
  const log = MetricsLog.open(o.outDir, { resumeStep: o.resume ? state.step + 1 : undefined });
  const progress = createProgress({ total, label: o.label, unit: 'step', rates: { tokens: 'tok' }, stream: o.quiet ? { write: () => true } : process.stderr });
  if (state.step > 0) progress.tick(state.step);
  const result: LoopResult = { steps: state.step, interrupted: false, stoppedEarly: false, lastLoss: NaN, lastEval: null, losses: [] };

  let batches = objective.batches(state.epoch);
  const nextBatch = (): B | null => {
    while (state.batchIndex >= batches.length) {
      state.epoch++;
      state.batchIndex = 0;
      if (o.maxSteps === undefined && state.epoch >= o.epochs) return null;
      batches = objective.batches(state.epoch);
    }
    return batches[state.batchIndex++]!;
  };

  const evaluate = async (): Promise<boolean> => {
    if (!objective.evaluate) return false;
    const ev = await objective.evaluate();
    result.lastEval = ev;
    log.append({ step: state.step, ...ev });
    progress.log(`step ${state.step}: ${Object.entries(ev).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ')}`);
    const e = ev.eval_loss;
    if (e === undefined) return false;
    if (state.bestEval === null || e < state.bestEval - 1e-6) {
      state.bestEval = e;
      state.badEvals = 0;
    } else state.badEvals++;
    return o.patience > 0 && state.badEvals >= o.patience;
  };

  const accumulators = new Map<string, Float32Array>(o.gradAccum > 1 ? params.map((p) => [p.name, new Float32Array(p.data.length)]) : []);
  while (state.step < total) {
    const t0 = performance.now();
    // One micro-batch: its gradients (fresh arrays copied out of the graph) are used as they
    // are. Several: they are summed into accumulators kept for the whole run, not a zeroed copy
    // of every trainable tensor per step (540 MB for full fine-tuning of SmolLM2-135M).
    const grads = o.gradAccum === 1 ? new Map<string, Float32Array>() : accumulators;
    let lossSum = 0;
    let weight = 0;
    let tokens = 0;
    const sums: Record<string, number> = {};
    let sumSq: number | undefined; // of one micro-batch's gradients, as the graph computed it
    let micro = 0;
    for (; micro < o.gradAccum; micro++) {
      const b = nextBatch();
      if (b === null) break;
      const r = await objective.step(b, state.step);
      lossSum += r.lossSum;
      weight += r.weight;
      tokens += r.tokens;
      for (const [k, v] of Object.entries(r.sums ?? {})) sums[k] = (sums[k] ?? 0) + v;
      if (o.gradAccum === 1) {
        for (const [name, g] of r.grads) grads.set(name, g);
        sumSq = r.gradSumSq;
      }
      else
        for (const p of params) {
          const acc = grads.get(p.name)!;
          const g = r.grads.get(p.name);
          if (micro === 0) g ? acc.set(g) : acc.fill(0);
          else if (g) for (let i = 0; i < g.length; i++) acc[i]! += g[i]!;
        }
    }
    if (micro === 0) break;
    for (const p of params) if (!grads.has(p.name)) grads.set(p.name, new Float32Array(p.data.length)); // a tensor this step did not reach
    const denom = Math.max(weight, 1);
    // Mean over the weight, then clipped: applied as one factor inside the update. The norm comes
    // from the graph for one micro-batch (tensors it did not reach are zeros and add nothing),
    // from a pass over the summed gradients for several.
    const norm = sumSq !== undefined ? Math.sqrt(sumSq) / denom : gradNorm(grads, 1 / denom);
    const loss = lossSum / denom;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      // Diverged: the update would write NaN/Inf into the trained tensors. Stop before it, with
      // the metrics so far and the last checkpoint intact.
      progress.done();
      log.close();
      const what = !Number.isFinite(loss) ? `the loss is ${loss}` : `the gradient norm is ${norm}`;
      const last = lastSaved > 0 ? `the last good state is the checkpoint of step ${lastSaved} in ${o.outDir} (--resume continues from it)` : 'no checkpoint was saved yet';
      fail(`${o.label}: step ${state.step + 1}: ${what}, training diverged; nothing was updated. Lower --lr (now ${o.lr}) or --max-grad-norm, or check the data; ${last}`);
    }
    const lr = learningRate(state.step, { lr: o.lr, warmup, total, schedule: o.schedule });
    opt.update(grads, lr, clipFactor(norm, o.maxGradNorm) / denom);
    o.onUpdate?.();
    state.step++;
    const dt = (performance.now() - t0) / 1000;
    result.losses.push(loss);
    result.lastLoss = loss;
    const extra = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / denom]));
    log.append({ step: state.step, epoch: state.epoch, loss, lr, grad_norm: norm, tokens, tokens_per_s: tokens / dt, ...extra });
    progress.tick(1, { loss: Number(loss.toFixed(4)), tokens });
    let stop = false;
    if (o.evalEvery > 0 && state.step % o.evalEvery === 0) stop = await evaluate();
    if ((o.saveEvery > 0 && state.step % o.saveEvery === 0) || stop) save();
    if (stop) {
      result.stoppedEarly = true;
      progress.log(`early stop: eval_loss did not improve for ${o.patience} evaluations`);
      break;
    }
    if (o.interruptAfter !== undefined && state.step >= o.interruptAfter) {
      save();
      result.interrupted = true;
      break;
    }
  }
  result.steps = state.step;
  if (!result.interrupted && !result.stoppedEarly && objective.evaluate && (o.evalEvery <= 0 || state.step % o.evalEvery !== 0)) await evaluate();
  if (!result.interrupted) save();
  progress.done();
  log.close();
  try {
    lossCurvePng(log.file, join(o.outDir, 'loss.png'), { title: o.label });
  } catch (e) {
    process.stderr.write(`plum: could not draw loss.png (${(e as Error).message})\n`);
  }
  return result;
}
