/**
 * Rule voters: automatic judges that score every candidate and vote as `rule:NAME`.
 *
 * | rule                     | score of a candidate                                                  |
 * | ------------------------ | --------------------------------------------------------------------- |
 * | `refusal`                | 1 if it is a refusal (`isRefusal`), else 0: prefers refusals           |
 * | `no-refusal`             | 1 if it is not a refusal, else 0: prefers answers                      |
 * | `regex-must:PATTERN`     | 1 if PATTERN matches, else 0 (`/PATTERN/FLAGS` for flags)             |
 * | `regex-must-not:PATTERN` | 1 if PATTERN does not match, else 0                                   |
 * | `length:MIN-MAX[:chars]` | 0 inside [MIN, MAX] words (or chars), minus the distance outside      |
 * | a module                 | its `score(candidate, set)` (named or default export), a number       |
 *
 * Votes per prompt, from the scores: all different -> one `rank` vote (highest first); all equal
 * -> nothing (reported as tied); otherwise (ties) `up` for each candidate with the highest score
 * and `down` for each with the lowest, which aggregation reads as "every up beats every down".
 * A `rank` cannot express ties, and `best`/`worst` would claim an order among tied candidates.
 */
import { resolve, basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { fail } from '../util/errors.js';
import type { Candidate, CandidateSet } from './candidates.js';
import type { NewVote, VoteStore } from './store.js';

/** A rule's judgement of one candidate: higher is better. */
export type ScoreFn = (candidate: Candidate, set: CandidateSet) => number | Promise<number>;

export interface Rule {
  /** Votes are cast as `rule:${name}`. */
  name: string;
  score: ScoreFn;
}

/**
 * Openings of refusals, matched case-insensitively (curly apostrophes count as straight ones)
 * within the first `REFUSAL_WINDOW` characters, where assistants put them; further in they are
 * more often part of an answer (a character saying "I can't").
 */
export const REFUSAL_PHRASES: readonly string[] = [
  "I can't",
  'I cannot',
  'I can not',
  "I won't",
  'I will not',
  "I'm sorry",
  'I am sorry',
  'I apologize',
  'My apologies',
  'As an AI',
  'As a language model',
  'As an AI language model',
  "I'm not able to",
  'I am not able to',
  "I'm unable to",
  'I am unable to',
  'I must decline',
  "I'm not comfortable",
  'I refuse',
];
export const REFUSAL_WINDOW = 200;

/** True when the opening of `text` contains one of `REFUSAL_PHRASES`. */
export function isRefusal(text: string): boolean {
  const opening = text.slice(0, REFUSAL_WINDOW).replace(/[\u2018\u2019]/g, "'").toLowerCase();
  return REFUSAL_PHRASES.some((p) => opening.includes(p.toLowerCase()));
}

/** `/pat/flags` or a bare pattern. */
function parseRegex(src: string, spec: string): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(src);
  try {
    return m ? new RegExp(m[1]!, m[2]) : new RegExp(src);
  } catch (e) {
    return fail(`--rule ${spec}: invalid regular expression (${(e as Error).message}); fix the pattern`);
  }
}

const words = (text: string): number => text.split(/\s+/).filter(Boolean).length;

function lengthRule(arg: string, spec: string): ScoreFn {
  const m = /^(\d*)-(\d*)(?::(words|chars))?$/.exec(arg);
  if (!m || (m[1] === '' && m[2] === ''))
    fail(`--rule ${spec}: expected length:MIN-MAX, length:MIN-MAX:chars, length:MIN- or length:-MAX (whole numbers; words by default)`);
  const min = m[1] ? Number(m[1]) : 0;
  const max = m[2] ? Number(m[2]) : Infinity;
  if (min > max) fail(`--rule ${spec}: MIN ${min} is larger than MAX ${max}; swap them`);
  const measure = m[3] === 'chars' ? (t: string) => [...t].length : words;
  return (c) => {
    const n = measure(c.text);
    return n < min ? n - min : n > max ? max - n : 0;
  };
}

export const BUILTIN_RULES = ['refusal', 'no-refusal', 'regex-must', 'regex-must-not', 'length'] as const;

/**
 * A built-in rule from its command-line spec; the name defaults to the spec.
 *
 * @example
 * parseRule('length:20-200').score({ id: 'a', text: 'too short' }, set); // -18
 */
export function parseRule(spec: string, name = spec): Rule {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  const needsArg = kind === 'regex-must' || kind === 'regex-must-not' || kind === 'length';
  if (needsArg && arg === '') fail(`--rule ${spec}: ${kind} needs an argument, e.g. ${kind === 'length' ? 'length:20-200' : `${kind}:PATTERN`}`);
  if (!needsArg && colon >= 0) fail(`--rule ${spec}: ${kind} takes no argument; use --rule ${kind}`);
  switch (kind) {
    case 'refusal':
      return { name, score: (c) => (isRefusal(c.text) ? 1 : 0) };
    case 'no-refusal':
      return { name, score: (c) => (isRefusal(c.text) ? 0 : 1) };
    case 'regex-must': {
      const re = parseRegex(arg, spec);
      return { name, score: (c) => (re.test(c.text) ? 1 : 0) };
    }
    case 'regex-must-not': {
      const re = parseRegex(arg, spec);
      return { name, score: (c) => (re.test(c.text) ? 0 : 1) };
    }
    case 'length':
      return { name, score: lengthRule(arg, spec) };
    default:
      return fail(`--rule ${spec}: unknown rule ${JSON.stringify(kind)}; use one of ${BUILTIN_RULES.join(', ')}, or --module FILE`);
  }
}

/** A rule from a JS module exporting `score(candidate, set)` or a default function; named after the file. */
export async function loadModuleRule(file: string, name = basename(file).replace(/\.[cm]?[jt]s$/, '')): Promise<Rule> {
  const path = resolve(file);
  if (!existsSync(path)) fail(`--module ${file}: no such file; check the path`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    return fail(`--module ${file}: cannot load it (${(e as Error).message.split('\n')[0]}); fix the module`);
  }
  const score = typeof mod.score === 'function' ? mod.score : mod.default;
  if (typeof score !== 'function') fail(`--module ${file}: exports no function; export function score(candidate, set) { return number } (or a default export)`);
  return { name, score: score as ScoreFn };
}

/** Every candidate's score, per set; a non-finite score is an error naming the prompt and candidate. */
export async function scoreSets(rule: Rule, sets: CandidateSet[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const set of sets) {
    const scores: number[] = [];
    for (const c of set.candidates) {
      const s = await rule.score(c, set);
      if (typeof s !== 'number' || !Number.isFinite(s))
        fail(`rule ${rule.name}: score of prompt ${set.promptId} candidate ${c.id} is ${String(s)}; a score must be a finite number`);
      scores.push(s);
    }
    out.push(scores);
  }
  return out;
}

export type RuleOutcome = 'ranked' | 'split' | 'tied';

/** The votes (without voter) that `scores` of one set call for; see the file comment. */
export function votesForScores(set: CandidateSet, scores: number[]): { outcome: RuleOutcome; votes: Omit<NewVote, 'voter'>[] } {
  const levels = [...new Set(scores)].sort((a, b) => b - a);
  const ids = set.candidates.map((c) => c.id);
  const promptId = set.promptId;
  if (levels.length <= 1) return { outcome: 'tied', votes: [] };
  if (levels.length === ids.length) {
    const ranking = ids.map((id, i) => ({ id, s: scores[i]! })).sort((a, b) => b.s - a.s).map((x) => x.id);
    return { outcome: 'ranked', votes: [{ promptId, kind: 'rank', ranking }] };
  }
  const top = levels[0]!;
  const bottom = levels[levels.length - 1]!;
  const votes: Omit<NewVote, 'voter'>[] = [];
  ids.forEach((id, i) => {
    if (scores[i] === top) votes.push({ promptId, kind: 'up', candidateId: id });
    else if (scores[i] === bottom) votes.push({ promptId, kind: 'down', candidateId: id });
  });
  return { outcome: 'split', votes };
}

export interface RuleReport {
  voter: string;
  prompts: number;
  ranked: number;
  split: number;
  tied: number;
  votes: number;
  /** Earlier votes of this voter that were undone. */
  replaced: number;
  /** Mean score over all candidates. */
  meanScore: number;
}

/**
 * Score every candidate and cast the rule's votes as `rule:NAME`, first undoing every earlier
 * active vote of that voter, so running the same rule again replaces its votes.
 */
export async function castRuleVotes(store: Pick<VoteStore, 'cast' | 'undoLast' | 'votes'>, rule: Rule, sets: CandidateSet[]): Promise<RuleReport> {
  const voter = `rule:${rule.name}`;
  const scores = await scoreSets(rule, sets); // before undoing: a failing rule leaves the store as it was
  const replaced = store.votes({ voter }).length;
  for (let i = 0; i < replaced; i++) store.undoLast(voter);
  const report: RuleReport = { voter, prompts: sets.length, ranked: 0, split: 0, tied: 0, votes: 0, replaced, meanScore: 0 };
  let total = 0;
  let count = 0;
  sets.forEach((set, k) => {
    const { outcome, votes } = votesForScores(set, scores[k]!);
    report[outcome]++;
    for (const v of votes) store.cast({ ...v, voter });
    report.votes += votes.length;
    for (const s of scores[k]!) (total += s), count++;
  });
  report.meanScore = count ? total / count : 0;
  return report;
}
