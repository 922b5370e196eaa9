import type { Command } from 'commander';
import { z } from 'zod';
import { readCandidates } from '../../prefs/candidates.js';
import { castRuleVotes, loadModuleRule, parseRule, type RuleReport } from '../../prefs/rules.js';
import { VoteStore } from '../../prefs/store.js';
import { fail } from '../../util/errors.js';
import { parseOptions } from '../options.js';

const schema = z.object({
  candidates: z.string().min(1),
  store: z.string().min(1),
  rule: z.string().min(1).optional(),
  module: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
});

/** The `vote` command group, created by whichever register() runs first (the human voters add theirs too). */
export function voteCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'vote') ?? program.command('vote').description('vote on candidates (humans or rules)');
}

export function summariseRule(r: RuleReport): string {
  return (
    `${r.voter}: ${r.prompts} prompts: ${r.ranked} ranked, ${r.split} split into up/down (ties), ${r.tied} all tied (no vote); ` +
    `${r.votes} votes cast${r.replaced ? `, replacing ${r.replaced} earlier` : ''}; mean score ${Number(r.meanScore.toFixed(4))}\n`
  );
}

export function register(program: Command): void {
  voteCommand(program)
    .command('rules')
    .description('score every candidate with a rule and vote as rule:NAME (rerunning replaces its votes)')
    .requiredOption('--candidates <file>', 'candidates JSONL (from plum sample)')
    .requiredOption('--store <file>', 'vote store (SQLite; created if absent)')
    .option('--rule <spec>', 'refusal | no-refusal | regex-must:PATTERN | regex-must-not:PATTERN | length:MIN-MAX[:chars]')
    .option('--module <file>', 'JS module exporting score(candidate, set) => number (or a default export)')
    .option('--name <name>', 'voter name after "rule:" (default: the rule spec or module file name)')
    .action(async (raw) => {
      const o = parseOptions(schema, raw, 'vote rules');
      if ((o.rule === undefined) === (o.module === undefined)) fail('vote rules: pass exactly one of --rule SPEC or --module FILE');
      const sets = readCandidates(o.candidates);
      const rule = o.module ? await loadModuleRule(o.module, o.name) : parseRule(o.rule!, o.name);
      const store = VoteStore.open(o.store);
      try {
        process.stdout.write(summariseRule(await castRuleVotes(store, rule, sets)));
      } finally {
        store.close();
      }
    });
}
