/**
 * Votes -> preference pairs.
 *
 * 1. Each voter's latest vote of each kind on a prompt counts (later votes supersede earlier
 *    ones, as the store documents); thumbs count per candidate (the latest of up/down).
 * 2. A voter's votes on a prompt become pairwise preferences, one per candidate pair at most:
 *    `best` c: c > every other; `worst` c: every other > c; `rank`: each candidate > every one
 *    after it; thumbs: every `up` > every `down`; `all-bad`: no pairs (counted). If a voter's
 *    votes say both a > b and b > a, that voter has no preference on the pair.
 * 3. Bradley-Terry strengths per prompt from the win counts (`w[i][j]` = voters preferring i to j),
 *    fitted by the MM algorithm (Hunter 2004) with a prior (see `bradleyTerry`).
 * 4. Pairs: chosen = highest score, rejected = lowest; a prompt whose two highest scores tie is
 *    skipped. With `margin`, every pair whose score gap is at least `margin` instead.
 */
import { z } from 'zod';
import { parseOrFail } from '../data/issues.js';
import type { CandidateSet } from './candidates.js';
import type { PreferencePair } from './pairs.js';
import { type Vote, validateVote } from './store.js';

export interface AggregateOptions {
  /** Virtual games each candidate plays against a fixed reference of strength 1, half of them won (default 1). */
  prior?: number;
  /** Emit every pair whose score gap is at least this, not only best vs worst. */
  margin?: number;
  maxIterations?: number;
  /** Stop when no log-strength moves more than this in an iteration. */
  tolerance?: number;
}
const optionsSchema = z.object({
  prior: z.number().gt(0).default(1),
  margin: z.number().gt(0).optional(),
  maxIterations: z.number().int().min(1).default(10_000),
  tolerance: z.number().gt(0).default(1e-10),
});

/** A thumbs vote on one candidate: KTO-style data (`label` true = up). */
export interface Thumb {
  promptId: string;
  prompt: string;
  messages?: PreferencePair['messages'];
  completion: string;
  label: boolean;
  voter: string;
}

export interface PromptReport {
  promptId: string;
  /** Distinct voters with an active vote on the prompt. */
  voters: number;
  /** Votes that counted (after superseding). */
  votes: number;
  allBad: number;
  up: number;
  down: number;
  /** Bradley-Terry log-strength per candidate id (0 = the reference). */
  scores: Record<string, number>;
  /** Pairs emitted for this prompt. */
  pairs: number;
  /** Why no pair was emitted: no pairwise preference at all, or the two highest scores tie. */
  skipped?: 'no-preferences' | 'tied-top';
  /** Candidate pairs judged by two or more voters. */
  judgedPairs: number;
  /** Of those, pairs that some voters prefer one way and others the other way. */
  contestedPairs: number;
  /** contestedPairs / judgedPairs; null when no pair was judged twice. */
  disagreement: number | null;
}

export interface AggregateReport {
  prompts: number;
  promptsWithVotes: number;
  pairs: number;
  /** Prompts skipped because the two highest scores tie. */
  ties: number;
  voters: number;
  allBad: number;
  thumbs: number;
  /** Pooled over prompts: contested / judged pairs; null when no pair was judged twice. */
  disagreement: number | null;
  /** Votes on prompts that are not in the candidate sets. */
  unknownPromptVotes: number;
  /** Votes that do not fit their prompt's candidates (unknown candidate, partial ranking). */
  invalidVotes: number;
  perPrompt: PromptReport[];
}

export interface AggregateResult {
  pairs: PreferencePair[];
  thumbs: Thumb[];
  report: AggregateReport;
}

/**
 * Bradley-Terry log-strengths from win counts by the MM algorithm, with a prior that keeps
 * every strength finite under perfect separation (a candidate that won or lost every game).
 *
 * Model: P(i beats j) = p_i / (p_i + p_j). The prior adds, for each candidate, `prior` virtual
 * games against a reference of fixed strength 1, half won and half lost. With W_i the wins of i
 * and n_ij = w[i][j] + w[j][i], one iteration updates every strength at once:
 *
 *   p_i <- (W_i + prior/2) / (sum_j n_ij / (p_i + p_j) + prior / (p_i + 1))
 *
 * The fixed point equates each candidate's actual and expected wins (virtual games included),
 * i.e. it is the maximum a-posteriori estimate. The reference anchors the scale, so scores
 * (ln p_i) of different prompts are comparable and a candidate without games scores 0.
 *
 * @param wins `wins[i][j]`: how often i beat j.
 * @returns ln p_i per candidate, and the iterations used.
 */
export function bradleyTerry(wins: number[][], opts: AggregateOptions = {}): { scores: number[]; iterations: number } {
  const o = parseOrFail(optionsSchema, opts, 'bradleyTerry options');
  const n = wins.length;
  const W = wins.map((row) => row.reduce((a, b) => a + b, 0) + o.prior / 2);
  let p = new Array<number>(n).fill(1);
  let it = 0;
  while (it < o.maxIterations) {
    it++;
    const next = p.map((pi, i) => {
      let denom = o.prior / (pi + 1);
      for (let j = 0; j < n; j++) if (j !== i) denom += (wins[i]![j]! + wins[j]![i]!) / (pi + p[j]!);
      return W[i]! / denom;
    });
    const moved = Math.max(0, ...next.map((q, i) => Math.abs(Math.log(q) - Math.log(p[i]!))));
    p = next;
    if (moved < o.tolerance) break;
  }
  return { scores: p.map(Math.log), iterations: it };
}

/** The votes that count: the latest per (voter, prompt, kind); thumbs the latest per (voter, prompt, candidate). */
export function latestVotes(votes: Vote[]): Vote[] {
  const latest = new Map<string, Vote>();
  for (const v of [...votes].sort((a, b) => a.id - b.id)) {
    const slot = v.kind === 'up' || v.kind === 'down' ? `thumb\0${v.candidateId}` : v.kind;
    latest.set(JSON.stringify([v.voter, v.promptId, slot]), v);
  }
  return [...latest.values()].sort((a, b) => a.id - b.id);
}

/**
 * One voter's preferences on one prompt, as a map from `i,j` (candidate indices, i < j) to +1
 * (i preferred) or -1 (j preferred). Contradictory votes cancel (the pair is left out).
 */
export function voterPreferences(ids: string[], votes: Vote[]): Map<string, 1 | -1> {
  const index = new Map(ids.map((id, i) => [id, i]));
  const net = new Map<string, number>();
  const prefer = (winner: number, loser: number): void => {
    const key = winner < loser ? `${winner},${loser}` : `${loser},${winner}`;
    net.set(key, (net.get(key) ?? 0) + (winner < loser ? 1 : -1));
  };
  const ups: number[] = [];
  const downs: number[] = [];
  for (const v of votes) {
    const c = v.candidateId === null ? -1 : (index.get(v.candidateId) ?? -1);
    if (v.kind === 'best') ids.forEach((_, j) => j !== c && prefer(c, j));
    else if (v.kind === 'worst') ids.forEach((_, j) => j !== c && prefer(j, c));
    else if (v.kind === 'rank') {
      const r = v.ranking!.map((id) => index.get(id)!);
      for (let a = 0; a < r.length; a++) for (let b = a + 1; b < r.length; b++) prefer(r[a]!, r[b]!);
    } else if (v.kind === 'up') ups.push(c);
    else if (v.kind === 'down') downs.push(c);
  }
  for (const u of ups) for (const d of downs) prefer(u, d);
  const out = new Map<string, 1 | -1>();
  // Only the sign counts: a voter weighs once per pair however many of their votes imply it.
  for (const [key, s] of net) if (s !== 0) out.set(key, s > 0 ? 1 : -1);
  return out;
}

function pairOf(set: CandidateSet, chosen: number, rejected: number): PreferencePair {
  const pair: PreferencePair = { prompt: set.prompt, chosen: set.candidates[chosen]!.text, rejected: set.candidates[rejected]!.text, promptId: set.promptId };
  if (set.messages) pair.messages = set.messages;
  return pair;
}

const TIE = 1e-9;

/** Aggregate one prompt's (already superseded, validated) votes. */
function aggregatePrompt(set: CandidateSet, votes: Vote[], o: AggregateOptions): { pairs: PreferencePair[]; thumbs: Thumb[]; report: PromptReport } {
  const ids = set.candidates.map((c) => c.id);
  const n = ids.length;
  const byVoter = new Map<string, Vote[]>();
  for (const v of votes) byVoter.set(v.voter, [...(byVoter.get(v.voter) ?? []), v]);
  const wins = ids.map(() => new Array<number>(n).fill(0));
  const opinions = new Map<string, Set<number>>(); // pair key -> signs given by voters
  const judges = new Map<string, number>();
  for (const vs of byVoter.values()) {
    for (const [key, s] of voterPreferences(ids, vs)) {
      const [i, j] = key.split(',').map(Number) as [number, number];
      if (s > 0) wins[i]![j]!++;
      else wins[j]![i]!++;
      opinions.set(key, (opinions.get(key) ?? new Set()).add(s));
      judges.set(key, (judges.get(key) ?? 0) + 1);
    }
  }
  const judgedPairs = [...judges.values()].filter((c) => c >= 2).length;
  const contestedPairs = [...opinions.values()].filter((s) => s.size === 2).length;
  const { scores } = bradleyTerry(wins, o);
  const order = ids.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const pairs: PreferencePair[] = [];
  let skipped: PromptReport['skipped'];
  if (opinions.size === 0) skipped = 'no-preferences';
  else if (o.margin !== undefined) {
    for (const i of order) for (const j of order) if (scores[i]! - scores[j]! >= o.margin) pairs.push(pairOf(set, i, j));
  } else if (n < 2 || scores[order[0]!]! - scores[order[1]!]! <= TIE) skipped = 'tied-top';
  else pairs.push(pairOf(set, order[0]!, order[n - 1]!));

  const thumbs: Thumb[] = votes
    .filter((v) => v.kind === 'up' || v.kind === 'down')
    .map((v) => {
      const t: Thumb = { promptId: set.promptId, prompt: set.prompt, completion: set.candidates[ids.indexOf(v.candidateId!)]!.text, label: v.kind === 'up', voter: v.voter };
      if (set.messages) t.messages = set.messages;
      return t;
    });
  const count = (k: Vote['kind']): number => votes.filter((v) => v.kind === k).length;
  const report: PromptReport = {
    promptId: set.promptId,
    voters: byVoter.size,
    votes: votes.length,
    allBad: count('all-bad'),
    up: count('up'),
    down: count('down'),
    scores: Object.fromEntries(ids.map((id, i) => [id, scores[i]!])),
    pairs: pairs.length,
    judgedPairs,
    contestedPairs,
    disagreement: judgedPairs ? contestedPairs / judgedPairs : null,
  };
  if (skipped) report.skipped = skipped;
  return { pairs, thumbs, report };
}

/**
 * Turn votes on candidate sets into preference pairs, thumbs and a report.
 *
 * @example
 * const { pairs, report } = aggregate(readCandidates('c.jsonl'), store.votes());
 * // report: { prompts: 40, pairs: 31, ties: 3, disagreement: 0.12, ... }
 */
export function aggregate(sets: CandidateSet[], votes: Vote[], opts: AggregateOptions = {}): AggregateResult {
  const o = parseOrFail(optionsSchema, opts, 'aggregate options');
  const targets = new Map(sets.map((s) => [s.promptId, s]));
  const perSet = new Map<string, Vote[]>();
  let unknownPromptVotes = 0;
  let invalidVotes = 0;
  for (const v of latestVotes(votes)) {
    if (!targets.has(v.promptId)) {
      unknownPromptVotes++;
      continue;
    }
    try {
      validateVote(targets, v);
    } catch {
      invalidVotes++;
      continue;
    }
    perSet.set(v.promptId, [...(perSet.get(v.promptId) ?? []), v]);
  }
  const pairs: PreferencePair[] = [];
  const thumbs: Thumb[] = [];
  const perPrompt: PromptReport[] = [];
  for (const set of sets) {
    const r = aggregatePrompt(set, perSet.get(set.promptId) ?? [], o);
    pairs.push(...r.pairs);
    thumbs.push(...r.thumbs);
    perPrompt.push(r.report);
  }
  const sum = (f: (r: PromptReport) => number): number => perPrompt.reduce((a, r) => a + f(r), 0);
  const judged = sum((r) => r.judgedPairs);
  return {
    pairs,
    thumbs,
    report: {
      prompts: sets.length,
      promptsWithVotes: perPrompt.filter((r) => r.votes > 0).length,
      pairs: pairs.length,
      ties: perPrompt.filter((r) => r.skipped === 'tied-top').length,
      voters: new Set([...perSet.values()].flat().map((v) => v.voter)).size,
      allBad: sum((r) => r.allBad),
      thumbs: thumbs.length,
      disagreement: judged ? sum((r) => r.contestedPairs) / judged : null,
      unknownPromptVotes,
      invalidVotes,
      perPrompt,
    },
  };
}
