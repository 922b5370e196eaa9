/**
 * The recipe that reproduces plum-micro (`npm run train:micro`):
 *   1. generate the corpora (seeded; stories, chat tasks and reading drills; no downloaded text),
 *   2. fit a byte-level BPE tokenizer to stage 1's corpus, with `spaceAfterNewline` (a word that
 *      starts a line, as an answer does, gets the same token as inside a document: copying it
 *      is then an identity, which a tiny model learns far sooner than a second spelling),
 *   3. initialise a Llama-family model (`micro` preset) with that tokenizer,
 *   4. train it with Plum's own engine (`plum pretrain`) in stages, each from the last:
 *        stage 0  copy drills only ("w1 .. wn = w1 .. wn", n = 4-10): short sequences where a
 *                 tiny model forms an induction head (find the current word earlier, say the
 *                 next one), the circuit that reading a document reuses. At lr 1e-3 it forms
 *                 from step ~500 and copies 50/50 held-out by step 3000; at lr 3e-3 (every
 *                 stage's lr before 2026-12-02) it did not form in 1000 steps, and the whole
 *                 recipe never learned to read. With it, a question probe of 600 steps is
 *                 39/50 held-out against 13/50 from the old stage 0 (src/micro/README.md)
 *        stage 0b cue drills: a short document and one answer ("... Place: village"), one
 *                 skill in short sequences (learned to 50/50 in 800 steps alone, while inside
 *                 the full mix the same lookup was not learned in 2000 steps)
 *        stage 1  stories + reading drills + chats + some copy drills (drills.ts: a document and many answered
 *                 questions with loss on every token; a chat trains only its answer, a few
 *                 tokens, so drills carry most of the signal for reading a document)
 *        stage 2  chats + drills, at a lower learning rate
 *      Each stage is resumable: rerun the script after an interruption and it continues; a
 *      finished stage (summary.json present) is skipped.
 *   5. copy the model to models/plum-micro and evaluate it (held-out accuracy per task,
 *      injection attack success) into eval.json.
 * Work files go to .plum-cache/plum-micro (ignored by git).
 *
 * Options: --out DIR (default models/plum-micro) --work DIR --quick (a smoke run of every step)
 *          --stage0-steps N (default 3000) --stage0b-steps N (default 1500)
 *          --stage1-steps N (default 2500) --stage2-steps N (default 600)
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSftCommand } from '../src/cli/commands/train.js';
import { PRETRAIN_DEFAULTS } from '../src/cli/commands/pretrain.js';
import { fitByteLevelBpe, fittedTokenizerFiles, writeByteLevelTokenizer } from '../src/model/bpe-train.js';
import { spaceAfterNewline } from '../src/model/bytelevel-tokenizer.js';
import { initModel } from '../src/model/init.js';
import { loadModel } from '../src/model/load.js';
import { generateCorpus, recordText, writeCorpus, type CorpusOptions } from '../src/micro/corpus.js';
import { taskAccuracy } from '../src/micro/evaluate.js';
import { injectionSuite } from '../src/micro/suites.js';
import { runSuite } from '../src/eval/safety/run.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/plum-micro' },
    work: { type: 'string', default: '.plum-cache/plum-micro' },
    'stage0-steps': { type: 'string', default: '3000' },
    'stage0b-steps': { type: 'string', default: '1500' },
    'stage1-steps': { type: 'string', default: '2500' },
    'stage2-steps': { type: 'string', default: '600' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const work = values.work!;
mkdirSync(work, { recursive: true });
const log = (s: string) => process.stderr.write(`train:micro: ${s}\n`);
/** Full-size value, or a small one for --quick. */
const q = (full: number, small: number): number => (quick ? small : full);

interface Stage {
  name: string;
  /** Training and held-out corpora. */
  data: CorpusOptions;
  heldOut: CorpusOptions;
  /** Overrides of PRETRAIN_DEFAULTS. */
  opts: Record<string, string | boolean>;
}

/** Packed rows of 256 tokens (src/data/batches.ts): 12 rows hold about 32 records; 1.4x the tokens/s of padded batches. */
const PACKED = { pack: true, batchSize: '12' };

const STAGES: Stage[] = [
  {
    name: 'stage0',
    data: { seed: 5, stories: 0, chats: 0, copies: q(100000, 200) },
    heldOut: { seed: 6, stories: 0, chats: 0, copies: q(200, 10) },
    opts: { maxSteps: String(q(Number(values['stage0-steps']), 10)), batchSize: '32', lr: '0.001', warmup: '0.02', saveEvery: '500', evalEvery: '0' },
  },
  {
    name: 'stage0b',
    data: { seed: 9, stories: 0, chats: 0, cues: q(64000, 200), copies: q(6000, 20) },
    heldOut: { seed: 10, stories: 0, chats: 0, cues: q(200, 10) },
    opts: { maxSteps: String(q(Number(values['stage0b-steps']), 10)), batchSize: '32', lr: '0.001', warmup: '0.02', saveEvery: '500', evalEvery: '0' },
  },
  {
    name: 'stage1',
    data: { seed: 1, stories: q(8000, 100), drills: q(60000, 200), chats: q(80000, 300), copies: q(12000, 50) },
    heldOut: { seed: 2, stories: q(100, 10), drills: q(200, 10), chats: q(400, 20) },
    opts: { maxSteps: String(q(Number(values['stage1-steps']), 10)), ...PACKED, lr: '0.001', warmup: '0.02', saveEvery: '250', evalEvery: quick ? '0' : '1000' },
  },
  {
    name: 'stage2',
    data: { seed: 3, stories: 0, drills: q(15000, 100), chats: q(45000, 300) },
    heldOut: { seed: 4, stories: 0, drills: q(100, 10), chats: q(400, 20) },
    opts: { maxSteps: String(q(Number(values['stage2-steps']), 10)), ...PACKED, lr: '0.0005', warmup: '0.02', saveEvery: '250', evalEvery: quick ? '0' : '750' },
  },
];

// 1-3. the tokenizer fitted to stage 1's corpus, the initial weights
const corpusPath = (s: Stage, held: boolean): string => join(work, `${s.name}${held ? '-eval' : ''}.jsonl`);
const tokDir = join(work, 'tokenizer');
if (!existsSync(join(tokDir, 'tokenizer.json')) || quick) {
  // Fitted on stage 1 without its copy drills (word counts only: the order does not matter).
  const fitText = generateCorpus({ ...STAGES[2]!.data, copies: 0 }).map((r) => spaceAfterNewline(recordText(r)));
  const fit = fitByteLevelBpe(fitText, { vocabSize: q(1024, 400) });
  writeByteLevelTokenizer(tokDir, fittedTokenizerFiles(fit, { modelMaxLength: 512, spaceAfterNewline: true }));
  log(`tokenizer: ${fit.vocab.size} tokens -> ${tokDir}`);
}
const initDir = join(work, 'init');
if (!existsSync(join(initDir, 'config.json')) || quick) initModel({ preset: 'micro', seed: 0, out: initDir, tokenizer: tokDir, force: true });

// 4. the stages
let from = initDir;
for (const stage of STAGES) {
  const runDir = join(work, stage.name);
  if (existsSync(join(runDir, 'summary.json')) && !quick) {
    log(`${stage.name}: done, skipped`);
    from = runDir;
    continue;
  }
  writeCorpus(corpusPath(stage, false), generateCorpus(stage.data));
  writeCorpus(corpusPath(stage, true), generateCorpus(stage.heldOut));
  const resume = existsSync(join(runDir, 'latest.json')) && !quick;
  log(`${stage.name}: ${resume ? 'resuming' : 'training'} from ${from}`);
  await runSftCommand(
    { ...PRETRAIN_DEFAULTS, model: from, data: corpusPath(stage, false), heldOutFile: corpusPath(stage, true), out: runDir, ...stage.opts, resume, force: !resume },
    'pretrain',
  );
  from = runDir;
}

// 5. the model folder + evaluation
const out = values.out!;
mkdirSync(out, { recursive: true });
for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) copyFileSync(join(from, f), join(out, f));
const m = loadModel(out);
const accuracy = await taskAccuracy(m, { seed: 1001, perTask: quick ? 4 : 50 });
const inj = await runSuite(injectionSuite, { name: 'plum-micro', model: m, adapter: null }, { seed: 0, limit: quick ? 8 : 0, heldOut: true, quiet: true });
writeJsonAtomic(join(out, 'eval.json'), {
  held_out_accuracy: Object.fromEntries(accuracy.map((a) => [a.task, a.accuracy])),
  n_per_task: accuracy[0]?.n,
  injection: Object.fromEntries(inj.metrics.map((x) => [x.name, x.value])),
});
for (const a of accuracy) log(`${a.task.padEnd(10)} ${(a.accuracy * 100).toFixed(1)}% (n=${a.n})`);
for (const x of inj.metrics) log(`injection ${x.name}: ${(x.value * 100).toFixed(1)}% (n=${x.n})`);
