/**
 * Probes behind the plum-micro curriculum (src/micro/README.md): train one skill alone on the
 * micro preset and measure it on fresh held-out examples.
 *
 *   node --import tsx scripts/micro-probe.ts --probe copy --steps 3000 --lr 0.001 --examples 100000 --from DIR --out DIR
 *   node --import tsx scripts/micro-probe.ts --probe qa-word --steps 600 --lr 0.001 --from DIR --out DIR
 *
 * Options: --lr (default: plum pretrain's), --examples (training examples generated, default
 * 30000), --pack (rows of packed examples, batch 16 rows instead of 32 examples).
 *
 * copy:  "w1 .. wn = w1 .. wn", n = 4-10 (drills.ts makeCopyDrill); held-out: 50 lists, greedy, exact copy.
 * qa-word / qa-sentence: a 2-3 sentence document, one of its questions, the answer as a word or
 * as the sentence of the document that holds it; held-out: 50, greedy, exact.
 * place: "<document with one place> Place: <place>"; held-out: 50 documents, greedy first word.
 * --from: a model folder to start from (e.g. .plum-cache/plum-micro/init, written by
 * `npm run train:micro`; or the stage-0 output for the place probe).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSftCommand } from '../src/cli/commands/train.js';
import { PRETRAIN_DEFAULTS } from '../src/cli/commands/pretrain.js';
import { generate } from '../src/model/generate.js';
import { loadModel } from '../src/model/load.js';
import { makeDoc, single } from '../src/micro/docs.js';
import { makeCopyDrill } from '../src/micro/drills.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { rng } from '../src/util/random.js';
import { pick, type Rand } from '../src/micro/vocab.js';

const { values } = parseArgs({
  options: {
    probe: { type: 'string', default: 'copy' },
    steps: { type: 'string', default: '1500' },
    pack: { type: 'boolean', default: false },
    lr: { type: 'string', default: PRETRAIN_DEFAULTS.lr },
    examples: { type: 'string', default: '30000' },
    from: { type: 'string', default: '.plum-cache/plum-micro/init' },
    out: { type: 'string', default: '.plum-cache/probe' },
  },
});
/** [prompt, expected continuation] of one example. */
const PROBES: Record<string, (r: Rand) => [string, string]> = {
  // Variable-length copy: needs an induction head (find the current word earlier, say the next).
  copy: (r) => {
    const [a, b] = makeCopyDrill(r).split(' = ') as [string, string];
    return [`${a} =`, ` ${b}\n`];
  },
  // A short document, one of its questions, and the answer as a word or as the document's sentence.
  'qa-word': (r) => {
    const d = makeDoc(r, { sentences: [2, 3], accept: (x) => x.questions.length > 0 });
    const q = pick(r, d.questions);
    return [`${d.sentences.join(' ')}\nQuestion: ${q.question}\nAnswer:`, ` ${q.answer}\n`];
  },
  'qa-sentence': (r) => {
    const d = makeDoc(r, { sentences: [2, 3], accept: (x) => x.questions.length > 0 });
    const q = pick(r, d.questions);
    return [`${d.sentences.join(' ')}\nQuestion: ${q.question}\nAnswer:`, ` ${q.sentence}\n`];
  },
  place: (r) => {
    const d = makeDoc(r, { people: 1, accept: single('place') });
    return [`${d.sentences.join(' ')} Place:`, ` ${d.places[0]}`];
  },
};
const make = PROBES[values.probe!];
if (!make) throw new Error(`--probe: one of ${Object.keys(PROBES).join(', ')}`);
const out = values.out!;
mkdirSync(out, { recursive: true });
const data = join(out, 'data.jsonl');
const train = rng(1);
writeFileAtomic(data, Array.from({ length: Number(values.examples) }, () => JSON.stringify({ text: make(train).join('') })).join('\n') + '\n');
const model = join(out, 'model');
await runSftCommand({ ...PRETRAIN_DEFAULTS, model: values.from, data, out: model, maxSteps: values.steps, lr: values.lr, batchSize: values.pack ? '16' : '32', pack: values.pack, saveEvery: '0', evalEvery: '0', force: true }, 'pretrain');
const m = loadModel(model);
const held = rng(777);
const tests = Array.from({ length: 50 }, () => make(held));
const gens = await generate(m.lm, tests.map(([p]) => [...(m.tokenizer.encode(p) as number[])]), { temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens: 16, eosIds: m.eosIds });
/** An expected continuation ending in a newline must be the whole first line; otherwise its start. */
const hit = (got: string, want: string): boolean => (want.endsWith('\n') ? (got.trim() + '\n').startsWith(want.trim() + '\n') : got.trim().startsWith(want.trim()));
const ok = gens.filter((g, i) => hit(m.tokenizer.decode(g.tokens), tests[i]![1])).length;
process.stdout.write(`${values.probe}: ${ok}/${tests.length} held-out correct after ${values.steps} steps\n`);
