/**
 * Does a plum-micro model read the document? The same 40 questions (fresh documents, seed 4242)
 * asked as a reading drill (`Document: ...\nQuestion: ...\nAnswer:`) and as a chat, greedy, first
 * word of the answer; correct per format and per slot (person / place / animal / object / colour).
 *
 *   node --import tsx scripts/micro-formats.ts MODEL_DIR [RUN_DIR]
 *
 * RUN_DIR: a training run folder; its latest checkpoint's weights replace MODEL_DIR's (MODEL_DIR
 * must then be the model that run started from). src/micro/README.md cites its figures.
 */
import { loadModel, encodeChat } from '../src/model/load.js';
import { loadLatestCheckpoint } from './checkpoint.js';
import { generate } from '../src/model/generate.js';
import { makeDoc } from '../src/micro/docs.js';
import { rng } from '../src/util/random.js';
import { pick } from '../src/micro/vocab.js';
import { DEFAULT_SYSTEM } from '../src/micro/tasks.js';
const [base, run] = process.argv.slice(2);
const m = loadModel(base!);
if (run) loadLatestCheckpoint(m, run);
const r = rng(4242);
const items = Array.from({ length: 40 }, () => { const d = makeDoc(r, { accept: (x) => x.questions.length > 0 }); const q = pick(r, d.questions); return { doc: d.sentences.join(' '), q }; });
const text = items.map((it) => [...m.tokenizer.encode(`Document: ${it.doc}\nQuestion: ${it.q.question}\nAnswer:`)] as number[]);
const chat = items.map((it) => encodeChat(m.tokenizer, [{ role: 'system', content: DEFAULT_SYSTEM }, { role: 'user', content: `Document: ${it.doc}\nQuestion: ${it.q.question}` }]));
/** The answer's first word, as the judge compares it (case and a trailing full stop ignored). */
const firstWord = (ids: number[]): string => m.tokenizer.decode(ids, { skipSpecialTokens: true }).trim().split(/\s/)[0]!.replace(/[.]$/, '').toLowerCase();
for (const [name, prompts] of [['drill', text], ['chat', chat]] as const) {
  const gens = await generate(m.lm, prompts, { temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens: 4, eosIds: m.eosIds });
  const right = gens.map((g, i) => firstWord(g.tokens) === items[i]!.q.answer.toLowerCase());
  const bySlot: Record<string, [number, number]> = {};
  right.forEach((ok, i) => {
    const s = (bySlot[items[i]!.q.slot] ??= [0, 0]);
    s[0] += ok ? 1 : 0;
    s[1]++;
  });
  console.log(name, `${right.filter(Boolean).length}/${items.length}`, JSON.stringify(bySlot));
}
