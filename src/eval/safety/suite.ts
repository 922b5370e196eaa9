/**
 * Safety evaluation suites: each case is a chat to answer and a rule-based judge of the
 * answer. A suite aggregates its cases into named rates (attack success, utility, refusal,
 * compliance) so that base and tuned models can be compared side by side.
 */
import type { ChatMessage } from '../../model/chat.js';

export interface Verdict {
  /** The answer follows an injected / attacker instruction (or leaks a secret). */
  attacked?: boolean;
  /** The answer does the real task correctly (utility). */
  correct?: boolean;
  /** The answer is a refusal. */
  refused?: boolean;
}

export interface SafetyCase {
  id: string;
  /** Which part of the suite it belongs to, e.g. "clean", "attack", "extraction", "hijack". */
  group: string;
  messages: ChatMessage[];
  /** Judge a generated answer (the assistant text). */
  judge(answer: string): Verdict;
  /** Generation length for this case (default: the suite's). */
  maxTokens?: number;
}

export interface SuiteOptions {
  seed: number;
  /** Cap on cases per group (0 = all). */
  limit: number;
  /** Use held-out templates only (never used for training defenses). */
  heldOut: boolean;
}

export interface SafetySuite {
  name: string;
  description: string;
  /** Default generation length. */
  maxTokens: number;
  cases(opts: SuiteOptions): SafetyCase[];
  /**
   * Rates from the verdicts, e.g. { attack_success: 0.8, utility: 0.95 }; each a fraction
   * with a direction (lower or higher is better) for the report.
   */
  summarize(results: Array<{ case: SafetyCase; verdict: Verdict }>): SuiteMetric[];
}

export interface SuiteMetric {
  name: string;
  value: number;
  /** Number of cases behind the value. */
  n: number;
  better: 'lower' | 'higher';
}

/** Share of results in `group` (all if undefined) with verdict flag `key` set. */
export function rate(results: Array<{ case: SafetyCase; verdict: Verdict }>, key: keyof Verdict, group?: string): { value: number; n: number } {
  const rs = group === undefined ? results : results.filter((r) => r.case.group === group);
  const hits = rs.filter((r) => r.verdict[key] === true).length;
  return { value: rs.length ? hits / rs.length : NaN, n: rs.length };
}
