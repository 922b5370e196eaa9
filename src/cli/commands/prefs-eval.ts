import type { Command } from 'commander';
import { z } from 'zod';
import { klToReference, ruleRate } from '../../eval/preference.js';
import { loadModel } from '../../model/load.js';
import { baseModelOf } from '../../peft/base.js';
import { loadAdapter } from '../../peft/io.js';
import { noAdapter } from '../../peft/registry.js';
import { readCandidates } from '../../prefs/candidates.js';
import { loadModuleRule, parseRule } from '../../prefs/rules.js';
import { fail } from '../../util/errors.js';
import { parseOptions } from '../options.js';

const schema = z.object({
  candidates: z.string().min(1),
  rule: z.string().optional(),
  module: z.string().optional(),
  model: z.string().optional(),
  adapter: z.string().optional(),
  reference: z.string().optional(),
  json: z.boolean().default(false),
});

/** `plum prefs eval`: behaviour rate of sampled candidates under a rule, and KL(policy || reference). */
export function register(program: Command): void {
  const prefs = program.commands.find((c) => c.name() === 'prefs') ?? program.command('prefs');
  prefs
    .command('eval')
    .description('share of candidates a rule prefers; with --model/--adapter, the KL to the reference model')
    .requiredOption('--candidates <file>', 'candidates sampled from the model being evaluated (plum sample)')
    .option('--rule <spec>', 'refusal | no-refusal | regex-must:PATTERN | regex-must-not:PATTERN | length:MIN-MAX')
    .option('--module <file>', 'JS module exporting score(candidate, set) => number')
    .option('--model <dir>', 'base model (for the KL)')
    .option('--adapter <dir>', 'the policy adapter that sampled the candidates (for the KL)')
    .option('--reference <dir>', 'reference adapter (default: the base model)')
    .option('--json', 'print JSON')
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'prefs eval');
      if (!o.rule && !o.module && !o.adapter) fail('prefs eval: give --rule or --module (behaviour rate) and/or --model with --adapter (KL)');
      const sets = readCandidates(o.candidates);
      const result: Record<string, number> = { prompts: sets.length, candidates: sets.reduce((s, x) => s + x.candidates.length, 0) };
      if (o.rule || o.module) {
        const rule = o.module ? await loadModuleRule(o.module) : parseRule(o.rule!);
        result.rate = await ruleRate(rule, sets);
      }
      if (o.adapter) {
        if (!o.model) fail('prefs eval: --adapter needs --model');
        const m = loadModel(o.model);
        const base = baseModelOf(m);
        const policy = loadAdapter(o.adapter, base);
        const reference = o.reference ? loadAdapter(o.reference, base) : noAdapter();
        result.kl_to_reference = await klToReference(m, policy, reference, sets);
      }
      if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
      else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}\n`);
    });
}
