/**
 * Measuring a preference-tuned model: the share of sampled candidates a rule prefers, and the
 * KL divergence from the reference model, estimated on the policy's own samples:
 * KL(pi || ref) = E_{y ~ pi}[log pi(y|x) - log ref(y|x)] (per sequence, in nats).
 */
import { tokenizeExample } from '../data/tokenize.js';
import type { LoadedModel } from '../model/load.js';
import type { PeftAdapter } from '../peft/types.js';
import type { CandidateSet } from '../prefs/candidates.js';
import { type Rule, scoreSets } from '../prefs/rules.js';
import { GraphCache } from '../runtime/backend.js';
import { rowLogps } from '../train/dpo.js';

/** Share of candidates whose rule score is > 0 (a rule like regex-must scores 1 or 0). */
export async function ruleRate(rule: Rule, sets: CandidateSet[]): Promise<number> {
  const scores = (await scoreSets(rule, sets)).flat();
  return scores.filter((s) => s > 0).length / Math.max(scores.length, 1);
}

/** Mean over candidates of log pi(y|x) - log ref(y|x), with y tokenised after its prompt. */
export async function klToReference(m: LoadedModel, policy: PeftAdapter, reference: PeftAdapter, sets: CandidateSet[], batchSize = 8): Promise<number> {
  const rows = sets.flatMap((s) =>
    s.candidates.map((c) => {
      const source = { file: 'candidates', line: 0 };
      const record = s.messages?.length
        ? { kind: 'chat' as const, messages: [...s.messages, { role: 'assistant', content: c.text }], source }
        : { kind: 'text' as const, prompt: s.prompt, completion: c.text, source };
      const ex = tokenizeExample(m.tokenizer, record);
      return { ids: ex.ids, labels: ex.labels };
    }),
  );
  const cache = GraphCache.forShapes(m.lm.backend);
  const lp = await rowLogps(m, policy, rows, batchSize, cache);
  const lr = await rowLogps(m, reference, rows, batchSize, cache);
  await cache.releaseAll();
  return lp.reduce((s, x, i) => s + x - lr[i]!, 0) / Math.max(rows.length, 1);
}
