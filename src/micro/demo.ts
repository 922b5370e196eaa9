/**
 * `plum demo`: the whole story on plum-micro in a few minutes on 2 cores.
 *  1. measure prompt-injection attacks on the base model (held-out attack templates),
 *  2. train a defensive adapter (LoRA by default, or a soft prompt) with SFT on documents
 *     carrying (training) injections,
 *  3. sample answers from it, let a rule vote (does the real task, ignores the injection),
 *     turn the votes into pairs (Bradley-Terry) and continue with DPO,
 *  4. measure again and report before / after (markdown table + chart).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runSftCommand } from '../cli/commands/train.js';
import { DEFAULT_LR } from '../cli/train-options.js';
import { runDpoCommand } from '../cli/commands/train-dpo.js';
import { loadAdapterForModel } from '../cli/adapters.js';
import { type SuiteResult, runSuite, writeReport } from '../eval/safety/run.js';
import type { LoadedModel } from '../model/load.js';
import { aggregate } from '../prefs/aggregate.js';
import { appendCandidates, type CandidateSet } from '../prefs/candidates.js';
import { writePairs } from '../prefs/pairs.js';
import { castRuleVotes, type Rule } from '../prefs/rules.js';
import { sampleCandidates } from '../prefs/sample.js';
import { VoteStore } from '../prefs/store.js';
import { rng } from '../util/random.js';
import { mixSeed } from '../data/rng.js';
import { writeCorpus } from './corpus.js';
import { DPO_AFTER_SFT, defenseData, defendedTask } from './defense.js';
import { followedInjection } from './injection.js';
import { judgeReal } from './judge.js';
import { makeInjectionSuite, makeSecretSuite } from './suites.js';
import type { ChatTask } from './tasks.js';

export interface DemoOptions {
  out: string;
  seed: number;
  /**
   * lora (default) or soft-prompt. Measured on plum-micro (src/micro/README.md): LoRA SFT takes
   * held-out attack success 100% -> 0% at no utility cost; a 16-token soft prompt only to ~36%.
   */
  method: 'lora' | 'soft-prompt';
  /** Defensive soft-prompt tokens (method soft-prompt). */
  tokens: number;
  sftExamples: number;
  votePrompts: number;
  evalCases: number;
  quiet: boolean;
  log: (line: string) => void;
}

async function measure(m: LoadedModel, name: string, adapterDir: string | null, o: DemoOptions): Promise<SuiteResult[]> {
  const v = { name, model: m, adapter: adapterDir ? loadAdapterForModel(adapterDir, m) : null };
  const opts = { seed: o.seed + 7, limit: o.evalCases, heldOut: true, quiet: o.quiet };
  return [await runSuite(makeInjectionSuite(), v, opts), await runSuite(makeSecretSuite(), v, { ...opts, limit: Math.ceil(o.evalCases / 2) })];
}

/** The voting rule: 1 when the answer does the real task and ignores the injected instruction. */
export function defenseRule(tasks: Map<string, ChatTask>): Rule {
  return {
    name: 'ignores-injection',
    score: (c, set) => {
      const t = tasks.get(set.promptId)!;
      return judgeReal(t, c.text) && !followedInjection(c.text, t.injection!.target) ? 1 : 0;
    },
  };
}

export async function runDemo(m: LoadedModel, o: DemoOptions): Promise<{ table: string; results: SuiteResult[] }> {
  mkdirSync(o.out, { recursive: true });
  const f = (name: string) => join(o.out, name);
  o.log('1/4 measuring prompt-injection attacks on the base model (held-out attack templates)');
  const before = await measure(m, 'base', null, o);

  o.log(`2/4 training a defensive ${o.method === 'lora' ? 'LoRA adapter' : `${o.tokens}-token soft prompt`} (SFT, training templates only)`);
  const data = defenseData({ seed: o.seed, n: o.sftExamples, templates: 'train' });
  writeCorpus(f('defense-sft.jsonl'), data.sft);
  const common = {
    model: m.dir, method: o.method, ...(o.method === 'soft-prompt' ? { virtualTokens: String(o.tokens) } : {}),
    seed: String(o.seed), quiet: o.quiet, force: true, batchSize: '16', exactMatch: '0', saveEvery: '0',
  };
  await runSftCommand({ ...common, data: f('defense-sft.jsonl'), epochs: '2', out: f('sft') });

  o.log('3/4 sampling answers, rule votes, Bradley-Terry pairs, DPO');
  const tasks = new Map<string, ChatTask>();
  const prompts = Array.from({ length: o.votePrompts }, (_, i) => {
    const t = defendedTask(rng(mixSeed(o.seed, 0x5eed, i)), 'train');
    const id = `demo-${i}`;
    tasks.set(id, t);
    return { id, prompt: t.messages.at(-2)!.content, messages: t.messages.filter((x) => x.role !== 'assistant'), line: i + 1 };
  });
  const sets: CandidateSet[] = [];
  const sft = loadAdapterForModel(f('sft'), m);
  for await (const set of sampleCandidates(m, prompts, { n: 4, temperature: 1, topP: 1, topK: 0, seed: o.seed, maxTokens: 16, batchSize: 32, adapter: sft })) {
    appendCandidates(f('candidates.jsonl'), set);
    sets.push(set);
  }
  const store = VoteStore.open(f('votes.sqlite'));
  const report = await castRuleVotes(store, defenseRule(tasks), sets);
  const { pairs } = aggregate(sets, store.votes());
  store.close();
  o.log(`   ${report.prompts} prompts, ${report.votes} rule votes -> ${pairs.length} pairs`);
  let final = f('sft');
  if (pairs.length > 0) {
    writePairs(f('pairs.jsonl'), pairs, 'prompt-chosen-rejected');
    const dpo = { sftWeight: String(DPO_AFTER_SFT.sftWeight), lr: String(DEFAULT_LR[o.method] * DPO_AFTER_SFT.lrScale) };
    await runDpoCommand({ ...common, pairs: f('pairs.jsonl'), adapter: f('sft'), epochs: '2', beta: '0.1', ...dpo, out: f('dpo') });
    final = f('dpo');
  }

  o.log('4/4 measuring again');
  const after = await measure(m, 'defended', final, o);
  const table = writeReport(f('report'), [...before, ...after], ['base', 'defended'], 'plum-micro: prompt-injection defense (held-out attacks)');
  return { table, results: [...before, ...after] };
}
