import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { packLength } from '../../data/batches.js';
import { loadSftDataset, splitHeldOut } from '../../data/dataset.js';
import { type LoadedModel, loadModel } from '../../model/load.js';
import { trainLoop, trainables } from '../../train/loop.js';
import { checkOutDir, fileHash, makeAdapter, saveResult } from '../../train/session.js';
import { sftObjective } from '../../train/sft.js';
import { writeJsonAtomic } from '../../util/atomic.js';
import { fail } from '../../util/errors.js';
import type { PeftAdapter } from '../../peft/types.js';
import { registerDpo } from './train-dpo.js';
import { DEFAULT_LR, METHODS, type TrainOptions, methodConfigOf, resolveTrainOptions } from '../train-options.js';

/** Flags common to every `plum train` objective. */
export function addTrainFlags(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON or YAML file of options (flags override it)')
    .option('--model <dir>', 'Hugging Face model folder')
    .option('--data <file>', 'training data')
    .option('--method <m>', `what to train: ${METHODS.join(' | ')}`)
    .option('--out <dir>', 'output folder (adapter or model, metrics.jsonl, loss.png, checkpoints)')
    .option('--virtual-tokens <n>', 'soft-prompt/prefix: number of virtual tokens (default 20)')
    .option('--init <how>', 'soft-prompt: random|vocab|text (default vocab); prefix: random|text')
    .option('--init-text <text>', 'soft-prompt/prefix: initialise from this text')
    .option('--r <n>', 'lora: rank (default 8)')
    .option('--alpha <a>', 'lora: alpha (default 16)')
    .option('--dropout <p>', 'lora: dropout (default 0)')
    .option('--target-modules <list>', 'lora: module names (projections, lm_head, embed_tokens), one regex, or all-linear (default all projections)')
    .option('--exclude-modules <list>', 'lora: modules to leave out (names or one regex)')
    .option('--layers-to-transform <list>', 'lora: only these layer indices')
    .option('--rank-pattern <map>', 'lora: per-module ranks, e.g. v_proj=4,mlp.down_proj=16 (PEFT rank_pattern)')
    .option('--alpha-pattern <map>', 'lora: per-module alphas, e.g. v_proj=8 (PEFT alpha_pattern)')
    .option('--rslora', 'lora: scale by alpha/sqrt(r)')
    .option('--use-dora', 'lora: DoRA, a trained magnitude per output row (PEFT use_dora)')
    .option('--lora-bias', "lora: a trained bias on lora_B (PEFT lora_bias)")
    .option('--modules-to-save <list>', 'lora: modules trained whole beside the factors, e.g. lm_head,embed_tokens (PEFT modules_to_save)')
    .option('--ensure-weight-tying', 'lora: in a tied model, saved lm_head/embed_tokens share one copy (PEFT ensure_weight_tying)')
    .option('--merge', 'lora: also write the merged model to OUT/merged')
    .option('--layers <n>', 'last-layers: how many final layers to train (default 2)')
    .option('--epochs <n>', 'passes over the data (default 3)')
    .option('--max-steps <n>', 'stop after this many optimizer steps (overrides epochs)')
    .option('--batch-size <n>', 'examples per micro-batch (default 4)')
    .option('--recompute <what>', 'recomputed in the backward pass instead of kept: attention | layers (least memory, ~15-35% slower) | none (default attention)')
    .option('--grad-accum <n>', 'micro-batches per optimizer step (default 1)')
    .option('--lr <x>', 'peak learning rate (default depends on the method)')
    .option('--warmup <x>', 'warmup steps, or a fraction of all steps if < 1 (default 0.05)')
    .option('--schedule <s>', 'cosine | linear | constant (default cosine)')
    .option('--weight-decay <x>', 'AdamW weight decay (default 0)')
    .option('--max-grad-norm <x>', 'gradient clipping (0 = off; default 1)')
    .option('--seed <n>', 'seed: same seed, same run (default 0)')
    .option('--eval-every <n>', 'evaluate every n steps (0 = at the end; default 0)')
    .option('--save-every <n>', 'checkpoint every n steps (default 50)')
    .option('--patience <n>', 'early stopping after n evaluations without improvement (0 = off)')
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--force', 'overwrite a non-empty --out')
    .option('--quiet', 'no progress bar');
}

/** The loop's options for a run that trains `adapter` (told after every update, so derived inference inputs refresh). */
export function loopOptions(o: TrainOptions, label: string, fingerprint: Record<string, unknown>, adapter: PeftAdapter) {
  return {
    onUpdate: () => adapter.changed?.(),
    epochs: o.epochs, maxSteps: o.maxSteps, gradAccum: o.gradAccum, lr: o.lr ?? DEFAULT_LR[o.method], warmup: o.warmup,
    schedule: o.schedule, weightDecay: o.weightDecay, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: o.maxGradNorm,
    evalEvery: o.evalEvery, saveEvery: o.saveEvery, patience: o.patience, outDir: o.out, resume: o.resume, label,
    fingerprint, interruptAfter: o.interruptAfter, quiet: o.quiet,
  };
}

/** The resolved options that a resumed run must share. */
export function fingerprintOf(o: TrainOptions, dataHash: string): Record<string, unknown> {
  // --recompute changes memory and speed, not the result: a run may resume under another
  const { resume: _r, force: _f, quiet: _q, interruptAfter: _i, config: _c, recompute: _m, ...rest } = o;
  return { ...rest, dataHash };
}

/** --eos: a token (string or id) that ends completions; generation must stop at it too. */
function endToken(m: LoadedModel, eos: string): number {
  const id = /^\d+$/.test(eos) ? Number(eos) : m.tokenizer.tokenToId(eos);
  if (id === undefined || id >= m.cfg.vocabSize) fail(`train sft: --eos: "${eos}" is not a token of this model`);
  if (!m.eosIds.includes(id)) fail(`train sft: --eos: token ${id} does not stop generation for this model (its EOS ids are ${m.eosIds.join(', ')})`);
  return id;
}

export async function runSftCommand(raw: Record<string, unknown>, command = 'train sft'): Promise<void> {
  const o = resolveTrainOptions(raw, command);
  if (!o.data) fail(`${command}: --data is required (a JSONL or JSON file of examples)`);
  const method = methodConfigOf(o, command);
  if (o.pack && (method.kind === 'soft-prompt' || method.kind === 'prefix')) fail(`${command}: --pack does not work with --method ${method.kind} (its virtual tokens are per sequence); use lora, last-layers or full, or drop --pack`);
  if (o.packLength !== undefined && !o.pack) fail(`${command}: --pack-length needs --pack`);
  checkOutDir(o.out, o.resume, o.force);
  const m = loadModel(o.model);
  // Validate every record before anything is written.
  const files = o.heldOutFile ? [o.data, o.heldOutFile] : [o.data];
  const maxLength = o.maxLength ?? Math.min(m.cfg.maxPositionEmbeddings, 2048);
  const ds = loadSftDataset(files, m.tokenizer, { format: o.format, maxLength, overlong: o.overlong, eosId: o.eos === undefined ? undefined : endToken(m, o.eos) });
  let train = ds.examples;
  let heldOut: typeof train = [];
  if (o.heldOutFile || o.heldOutFraction) ({ train, heldOut } = splitHeldOut(ds.examples, { file: o.heldOutFile, fraction: o.heldOutFraction, seed: o.seed }));
  if (train.length === 0) fail(`${o.data}: no training examples left`);
  mkdirSync(o.out, { recursive: true });
  writeJsonAtomic(join(o.out, 'train_config.json'), { objective: command === 'pretrain' ? 'pretrain' : 'sft', ...o, method: method });
  const adapter = await makeAdapter(m, method, o.seed);
  const params = trainables(adapter, m.lm.weights);
  const pack = o.pack ? packLength([...train, ...heldOut], o.packLength) : undefined;
  const objective = sftObjective(m, adapter, train, heldOut, { batchSize: o.batchSize, seed: o.seed, lengthBuckets: o.lengthBuckets, pack, exactMatchLimit: o.exactMatch, recompute: o.recompute });
  const hash = files.map(fileHash).join(',');
  process.stderr.write(
    `${command}: ${train.length} examples (${ds.stats.lossTokens} loss tokens), ${heldOut.length} held out; ` +
      `${method.kind} with ${params.reduce((p, t) => p + t.data.length, 0).toLocaleString('en-US')} trainable parameters\n`,
  );
  const res = await trainLoop(params, objective, loopOptions(o, command === 'pretrain' ? 'pretrain' : `sft ${method.kind}`, fingerprintOf(o, hash), adapter));
  if (res.interrupted) {
    process.stderr.write(`${command}: stopped after step ${res.steps} (checkpoint saved; continue with --resume)\n`);
    return;
  }
  saveResult(m, adapter, o.out, { merge: o.merge, summary: { steps: res.steps, final_loss: res.lastLoss, ...(res.lastEval ?? {}), stopped_early: res.stoppedEarly, data: ds.stats } });
  const ev = res.lastEval ? Object.entries(res.lastEval).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ') : 'no held-out set';
  process.stderr.write(`${command}: done, ${res.steps} step${res.steps === 1 ? '' : 's'}, loss ${res.lastLoss.toFixed(4)}; ${ev}; saved to ${o.out}\n`);
}

export function register(program: Command): void {
  const train = program.command('train').description('fine-tune a model: sft (supervised) or dpo (preferences)');
  addTrainFlags(train.command('sft').description('supervised fine-tuning on input/output examples'))
    .option('--format <f>', 'data format: openai-chat | prompt-completion | alpaca | sharegpt (default: detected)')
    .option('--max-length <n>', 'longest example in tokens (default min(context, 2048))')
    .option('--overlong <policy>', 'over-long examples: error | truncate | drop (default error)')
    .option('--held-out-fraction <x>', 'hold out this share of the data for evaluation')
    .option('--held-out-file <file>', 'evaluation data file')
    .option('--eos <token>', 'token that ends prompt/completion examples (default: the tokenizer EOS); must stop generation')
    .option('--exact-match <n>', 'held-out examples checked by greedy generation (default 64)')
    .option('--pack', 'pack several examples into each row (attention stays within each); --batch-size then counts rows')
    .option('--pack-length <n>', 'with --pack: tokens per row (default: the power of two >= the longest example)')
    .action((opts) => runSftCommand(opts));
  registerDpo(train);
}
