/**
 * The recipe that reproduces plum-micro (`npm run train:micro`):
 *   1. generate the corpus (seeded; stories + chat tasks; no downloaded text),
 *   2. fit a byte-level BPE tokenizer to it,
 *   3. initialise a Llama-family model (`micro` preset) with that tokenizer,
 *   4. pretrain it with Plum's own engine (`plum pretrain`; resumable: rerun to continue) on
 *      stories + chats (loss on every story token and on assistant turns),
 *   5. a second stage on chats only, so that the answers (a few tokens each, a small share of
 *      stage 1's loss) get most of the gradient: copying a word out of a document is what a
 *      tiny model learns last,
 *   6. copy the model to models/plum-micro and evaluate it (held-out accuracy per task,
 *      injection attack success) into eval.json.
 * Work files go to .plum-cache/micro (ignored by git).
 *
 * Options: --out DIR (default models/plum-micro) --stories N --chats N --epochs N --max-steps N --vocab N
 *          --stage2-chats N --stage2-steps N --quick
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSftCommand } from '../src/cli/commands/train.js';
import { PRETRAIN_DEFAULTS } from '../src/cli/commands/pretrain.js';
import { fitByteLevelBpe, fittedTokenizerFiles, writeByteLevelTokenizer } from '../src/model/bpe-train.js';
import { initModel } from '../src/model/init.js';
import { loadModel } from '../src/model/load.js';
import { generateCorpus, recordText, writeCorpus } from '../src/micro/corpus.js';
import { taskAccuracy } from '../src/micro/evaluate.js';
import { injectionSuite } from '../src/micro/suites.js';
import { runSuite } from '../src/eval/safety/run.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/plum-micro' },
    work: { type: 'string', default: '.plum-cache/micro' },
    stories: { type: 'string', default: '16000' },
    chats: { type: 'string', default: '32000' },
    epochs: { type: 'string', default: '2' },
    vocab: { type: 'string', default: '1024' },
    'max-steps': { type: 'string', default: '4500' },
    'stage2-chats': { type: 'string', default: '48000' },
    'stage2-steps': { type: 'string', default: '3000' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const work = values.work!;
const n = (s: string | undefined, q: number): number => (quick ? q : Number(s));
mkdirSync(work, { recursive: true });
const log = (s: string) => process.stderr.write(`train:micro: ${s}\n`);

// 1. corpus
const corpusFile = join(work, 'corpus.jsonl');
const evalFile = join(work, 'eval-corpus.jsonl');
const records = generateCorpus({ seed: 1, stories: n(values.stories, 200), chats: n(values.chats, 400) });
if (!existsSync(corpusFile) || quick) {
  writeCorpus(corpusFile, records);
  writeCorpus(evalFile, generateCorpus({ seed: 2, stories: quick ? 20 : 200, chats: quick ? 40 : 400 }));
}
log(`corpus: ${records.length} records -> ${corpusFile}`);

// 2. tokenizer
const tokDir = join(work, 'tokenizer');
if (!existsSync(join(tokDir, 'tokenizer.json')) || quick) {
  const fit = fitByteLevelBpe(records.map(recordText), { vocabSize: n(values.vocab, 400) });
  writeByteLevelTokenizer(tokDir, fittedTokenizerFiles(fit, { modelMaxLength: 512 }));
  log(`tokenizer: ${fit.vocab.size} tokens -> ${tokDir}`);
}

// 3. initial weights
const initDir = join(work, 'init');
if (!existsSync(join(initDir, 'config.json')) || quick) initModel({ preset: 'micro', seed: 0, out: initDir, tokenizer: tokDir, force: true });

// 4. pretraining (resumable)
const runDir = join(work, 'run');
const resume = existsSync(join(runDir, 'latest.json')) && !quick;
await runSftCommand(
  {
    ...PRETRAIN_DEFAULTS,
    model: initDir,
    data: corpusFile,
    heldOutFile: evalFile,
    out: runDir,
    epochs: String(n(values.epochs, 1)),
    ...(quick ? {} : { maxSteps: values['max-steps'] }),
    evalEvery: quick ? '0' : '500',
    resume,
    force: !resume,
  },
  'pretrain',
);

// 5. chats only
const chatsFile = join(work, 'chats.jsonl');
const chatsEval = join(work, 'chats-eval.jsonl');
writeCorpus(chatsFile, generateCorpus({ seed: 3, stories: 0, chats: n(values['stage2-chats'], 400) }));
writeCorpus(chatsEval, generateCorpus({ seed: 4, stories: 0, chats: quick ? 40 : 400 }));
const run2 = join(work, 'run2');
const resume2 = existsSync(join(run2, 'latest.json')) && !quick;
await runSftCommand(
  {
    ...PRETRAIN_DEFAULTS, model: runDir, data: chatsFile, heldOutFile: chatsEval, format: 'openai-chat', out: run2,
    maxSteps: String(n(values['stage2-steps'], 10)), batchSize: '32', lr: '0.002', saveEvery: '500', evalEvery: quick ? '0' : '1000',
    resume: resume2, force: !resume2,
  },
  'pretrain',
);

// 6. the model folder + evaluation
const out = values.out!;
mkdirSync(out, { recursive: true });
for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) copyFileSync(join(run2, f), join(out, f));
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
