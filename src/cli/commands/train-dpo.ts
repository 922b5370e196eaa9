import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { tokenizeExample } from '../../data/tokenize.js';
import { shuffled } from '../../data/rng.js';
import { type LoadedModel, loadModel } from '../../model/load.js';
import { baseModelOf } from '../../peft/base.js';
import { loadAdapter } from '../../peft/io.js';
import { noAdapter } from '../../peft/registry.js';
import type { PeftAdapter } from '../../peft/types.js';
import { type PreferencePair, readPairs } from '../../prefs/pairs.js';
import { type PairExample, dpoObjective, referenceFile, referenceLogps } from '../../train/dpo.js';
import { PREFERENCE_LOSSES } from '../../train/losses.js';
import { trainLoop, trainables } from '../../train/loop.js';
import { checkOutDir, fileHash, makeAdapter, saveResult } from '../../train/session.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { fail } from '../../util/errors.js';
import { type Progress, createProgress } from '../../util/progress.js';
import { type TrainOptions, methodConfigOf, resolveTrainOptions } from '../train-options.js';
import { addTrainFlags, fingerprintOf, loopOptions } from './train.js';

const coerceNum = z.union([z.number(), z.string().trim().min(1).transform(Number)]).pipe(z.number().finite());
const dpoExtra = {
  pairs: z.string().min(1),
  pairsFormat: z.string().optional(),
  adapter: z.string().optional(),
  beta: coerceNum.pipe(z.number().positive()).default(0.1),
  loss: z.enum(PREFERENCE_LOSSES).default('sigmoid'),
  sftWeight: coerceNum.pipe(z.number().min(0)).default(0),
};

/** Tokenise a pair: chosen and rejected completions of the same prompt, loss on the responses. */
export function tokenizePair(m: LoadedModel, p: PreferencePair, where: { file: string; line: number }): PairExample {
  const row = (response: string) => {
    const record = p.messages?.length
      ? { kind: 'chat' as const, messages: [...p.messages, { role: 'assistant', content: response }], source: where }
      : { kind: 'text' as const, prompt: p.prompt, completion: response, source: where };
    const ex = tokenizeExample(m.tokenizer, record);
    return { ids: ex.ids, labels: ex.labels };
  };
  return { chosen: row(p.chosen), rejected: row(p.rejected) };
}

/** Policy: the given adapter (continued) or a fresh one; reference: the same adapter frozen, or the base model. */
async function policyAndReference(m: LoadedModel, o: TrainOptions & { adapter?: string }): Promise<{ policy: PeftAdapter; reference: PeftAdapter }> {
  if (!o.adapter) return { policy: await makeAdapter(m, methodConfigOf(o, 'train dpo'), o.seed), reference: noAdapter() };
  const base = baseModelOf(m);
  const policy = loadAdapter(o.adapter, base);
  if (policy.config.kind !== o.method) fail(`train dpo: --adapter ${o.adapter} is a ${policy.config.kind} adapter but --method is ${o.method}`);
  // The reference keeps the adapter's starting values; the policy trains a copy.
  const reference = loadAdapter(o.adapter, base);
  return { policy, reference };
}

export async function runDpoCommand(raw: Record<string, unknown>): Promise<void> {
  const o = resolveTrainOptions(raw, 'train dpo', dpoExtra) as TrainOptions & z.infer<z.ZodObject<typeof dpoExtra>>;
  if (o.data) fail('train dpo: use --pairs FILE for preference data (--data is for train sft)');
  checkOutDir(o.out, o.resume, o.force);
  const m = loadModel(o.model);
  const read = (file: string): PairExample[] => {
    const pairs = readPairs(file, { format: o.pairsFormat as never });
    return pairs.map((p, i) => tokenizePair(m, p, p.source ?? { file, line: i + 1 }));
  };
  let train = read(o.pairs);
  let heldOut: PairExample[] = o.heldOutFile ? read(o.heldOutFile) : [];
  if (!o.heldOutFile && o.heldOutFraction) {
    const order = shuffled(train.map((_, i) => i), o.seed, 7);
    const n = Math.max(1, Math.round(train.length * o.heldOutFraction));
    const held = new Set(order.slice(0, n));
    heldOut = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
  }
  const maxLength = o.maxLength ?? Math.min(m.cfg.maxPositionEmbeddings, 2048);
  const long = [...train, ...heldOut].find((p) => Math.max(p.chosen.ids.length, p.rejected.ids.length) > maxLength);
  if (long && o.overlong === 'error') fail(`${o.pairs}: a pair is longer than --max-length ${maxLength} tokens; raise --max-length or use --overlong drop`);
  if (long) {
    const fits = (p: PairExample): boolean => Math.max(p.chosen.ids.length, p.rejected.ids.length) <= maxLength;
    train = train.filter(fits);
    heldOut = heldOut.filter(fits);
  }
  if (o.overlong === 'truncate') fail('train dpo: --overlong truncate would cut responses; use error or drop');
  if (train.length === 0) fail(`${o.pairs}: no preference pairs to train on`);
  mkdirSync(o.out, { recursive: true });
  writeJsonAtomic(join(o.out, 'train_config.json'), { objective: 'dpo', ...o });
  const { policy, reference } = await policyAndReference(m, o);
  const hash = [o.pairs, o.heldOutFile].filter((f): f is string => !!f).map(fileHash).join(',');
  const all = [...train, ...heldOut];
  const refKey = `${hash}:${o.adapter ?? 'base'}:${o.maxLength}:${o.seed}:${o.heldOutFraction}`;
  let bar: Progress | undefined; // made on the first batch: none when the cached values are reused
  const refAll = await referenceLogps(m, reference, all, o.batchSize, referenceFile(o.out), refKey, (rows, tokens) => {
    if (!bar) {
      process.stderr.write(`train dpo: computing reference log-probabilities for ${all.length} pairs\n`);
      bar = createProgress({ total: 2 * all.length, label: 'reference', unit: 'row', rates: { tokens: 'tok' }, stream: o.quiet ? { write: () => true } : process.stderr });
    }
    bar.tick(rows, { tokens });
  });
  if (bar) bar.done();
  else process.stderr.write(`train dpo: reference log-probabilities reused from ${referenceFile(o.out)}\n`);
  const objective = dpoObjective(
    m,
    policy,
    { pairs: train, ref: refAll.slice(0, train.length) },
    { pairs: heldOut, ref: refAll.slice(train.length) },
    { batchSize: o.batchSize, seed: o.seed, beta: o.beta, loss: o.loss, sftWeight: o.sftWeight, recompute: o.recompute },
  );
  const params = trainables(policy, m.lm.weights);
  const res = await trainLoop(params, objective, loopOptions(o, `dpo ${policy.config.kind}`, fingerprintOf(o, hash), policy));
  if (res.interrupted) {
    process.stderr.write(`train dpo: stopped after step ${res.steps} (checkpoint saved; continue with --resume)\n`);
    return;
  }
  saveResult(m, policy, o.out, { merge: o.merge, summary: { steps: res.steps, final_loss: res.lastLoss, ...(res.lastEval ?? {}), pairs: train.length, held_out: heldOut.length } });
  const ev = res.lastEval ? Object.entries(res.lastEval).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ') : 'no held-out pairs';
  process.stderr.write(`train dpo: done, ${res.steps} step${res.steps === 1 ? '' : 's'}, loss ${res.lastLoss.toFixed(4)}; ${ev}; saved to ${o.out}\n`);
}

export function registerDpo(train: Command): void {
  addTrainFlags(train.command('dpo').description('preference training (DPO, IPO, hinge) on chosen/rejected pairs'))
    .option('--pairs <file>', 'preference pairs: prompt/chosen/rejected JSONL, OpenAI preference JSONL, HH-RLHF, LLaMA-Factory DPO')
    .option('--pairs-format <f>', 'pairs format (default: detected)')
    .option('--adapter <dir>', 'continue this (SFT) adapter; it is also the frozen reference')
    .option('--beta <x>', 'strength of the KL anchor to the reference (default 0.1)')
    .option('--loss <l>', `preference loss: ${PREFERENCE_LOSSES.join(' | ')} (default sigmoid)`)
    .option('--sft-weight <w>', "add w x the chosen response's per-token NLL (RPO; default 0)")
    .option('--max-length <n>', 'longest pair in tokens (default min(context, 2048))')
    .option('--overlong <policy>', 'over-long pairs: error | drop (default error)')
    .option('--held-out-fraction <x>', 'hold out this share of pairs for evaluation')
    .option('--held-out-file <file>', 'evaluation pairs file')
    .action((opts) => runDpoCommand(opts));
}
