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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, encodeChat } from '../src/model/load.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { generate } from '../src/model/generate.js';
import { makeDoc } from '../src/micro/docs.js';
import { rng } from '../src/util/random.js';
import { pick } from '../src/micro/vocab.js';
const [base, run] = process.argv.slice(2);
const m = loadModel(base!);
if (run) {
  const latest = JSON.parse(readFileSync(join(run, 'latest.json'), 'utf8'));
  for (const [k, v] of readSafetensors(join(run, latest.checkpoint, 'params.safetensors')).tensors) m.lm.weights.get(k)!.set(v.data as Float32Array);
}
const r = rng(4242);
const items = Array.from({ length: 40 }, () => { const d = makeDoc(r, { accept: (x) => x.questions.length > 0 }); const q = pick(r, d.questions); return { doc: d.sentences.join(' '), q }; });
const text = items.map((it) => [...m.tokenizer.encode(`Document: ${it.doc}\nQuestion: ${it.q.question}\nAnswer:`)] as number[]);
const chat = items.map((it) => encodeChat(m.tokenizer, [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: `Document: ${it.doc}\nQuestion: ${it.q.question}` }]));
for (const [name, prompts] of [['drill', text], ['chat', chat]] as const) {
  const gens = await generate(m.lm, prompts, { temperature: 0, topK: 0, topP: 1, seed: 0, maxTokens: 4, eosIds: m.eosIds });
  const ok = gens.filter((g, i) => m.tokenizer.decode(g.tokens, { skipSpecialTokens: true }).trim().split(/\s|\n/)[0]!.replace(/[.]$/, '').toLowerCase() === items[i]!.q.answer.toLowerCase()).length;
  const bySlot: Record<string, [number, number]> = {};
  gens.forEach((g, i) => { const s = items[i]!.q.slot; bySlot[s] ??= [0, 0]; bySlot[s][1]++; if (m.tokenizer.decode(g.tokens, { skipSpecialTokens: true }).trim().split(/\s|\n/)[0]!.replace(/[.]$/, '').toLowerCase() === items[i]!.q.answer.toLowerCase()) bySlot[s][0]++; });
  console.log(name, `${ok}/${items.length}`, JSON.stringify(bySlot));
}
