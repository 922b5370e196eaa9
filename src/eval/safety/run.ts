/**
 * Running safety suites on model variants (the base model, the base with an adapter, ...) and
 * writing a side-by-side report: markdown table, JSON and a grouped bar chart.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { ModelAdapter } from '../../model/adapter.js';
import { generate } from '../../model/generate.js';
import { type LoadedModel, encodeChat } from '../../model/load.js';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { writeBarChartPng } from '../../util/plot.js';
import { createProgress } from '../../util/progress.js';
import type { SafetyCase, SafetySuite, SuiteMetric, SuiteOptions, Verdict } from './suite.js';

export interface Variant {
  name: string;
  model: LoadedModel;
  adapter: ModelAdapter | null;
}

export interface SuiteResult {
  suite: string;
  variant: string;
  metrics: SuiteMetric[];
  results: Array<{ case: SafetyCase; answer: string; verdict: Verdict }>;
}

export async function runSuite(suite: SafetySuite, v: Variant, o: SuiteOptions & { batchSize?: number; quiet?: boolean }): Promise<SuiteResult> {
  const cases = suite.cases(o);
  const m = v.model;
  const results: SuiteResult['results'] = [];
  const bs = o.batchSize ?? 16;
  const progress = createProgress({ total: cases.length, label: `${suite.name} [${v.name}]`, unit: 'case', stream: o.quiet ? { write: () => true } : process.stderr });
  for (let i = 0; i < cases.length; i += bs) {
    const chunk = cases.slice(i, i + bs);
    const prompts = chunk.map((c) => encodeChat(m.tokenizer, c.messages));
    const gens = await generate(m.lm, prompts, {
      temperature: 0, topK: 0, topP: 1, seed: 0, eosIds: m.eosIds, adapter: v.adapter,
      maxTokens: Math.max(...chunk.map((c) => c.maxTokens ?? suite.maxTokens)),
    });
    chunk.forEach((c, j) => {
      const limit = c.maxTokens ?? suite.maxTokens;
      const answer = m.tokenizer.decode(gens[j]!.tokens.slice(0, limit), { skipSpecialTokens: true }).trim();
      results.push({ case: c, answer, verdict: c.judge(answer) });
    });
    progress.tick(chunk.length);
  }
  progress.done();
  return { suite: suite.name, variant: v.name, metrics: suite.summarize(results.map((r) => ({ case: r.case, verdict: r.verdict }))), results };
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');

/** Markdown table: one row per (suite, metric), one column per variant. */
export function reportTable(results: SuiteResult[], variants: string[]): string {
  const lines = [`| suite | metric | ${variants.join(' | ')} | better |`, `|---|---|${variants.map(() => '---:').join('|')}|---|`];
  const suites = [...new Set(results.map((r) => r.suite))];
  for (const s of suites) {
    const first = results.find((r) => r.suite === s)!;
    for (const metric of first.metrics) {
      const cells = variants.map((v) => {
        const m = results.find((r) => r.suite === s && r.variant === v)?.metrics.find((x) => x.name === metric.name);
        return m ? `${pct(m.value)} (n=${m.n})` : '';
      });
      lines.push(`| ${s} | ${metric.name} | ${cells.join(' | ')} | ${metric.better} |`);
    }
  }
  return lines.join('\n');
}

export function writeReport(dir: string, results: SuiteResult[], variants: string[], title = 'Safety evaluation'): string {
  mkdirSync(dir, { recursive: true });
  const table = reportTable(results, variants);
  writeFileAtomic(join(dir, 'report.md'), `# ${title}\n\n${table}\n`);
  writeJsonAtomic(join(dir, 'report.json'), results.map((r) => ({ suite: r.suite, variant: r.variant, metrics: r.metrics })));
  writeJsonAtomic(
    join(dir, 'answers.json'),
    results.map((r) => ({ suite: r.suite, variant: r.variant, answers: r.results.map((x) => ({ id: x.case.id, group: x.case.group, answer: x.answer, ...x.verdict })) })),
  );
  const categories: string[] = [];
  const key: Array<[string, string]> = [];
  for (const r of results) for (const m of r.metrics) if (!key.some(([s, n]) => s === r.suite && n === m.name)) {
    key.push([r.suite, m.name]);
    categories.push(`${m.name.replace(/_/g, ' ')} ${m.better === 'higher' ? '↑' : '↓'}`);
  }
  writeBarChartPng(join(dir, 'report.png'), {
    title: `${title} (↑ higher is better, ↓ lower is better)`,
    categories,
    series: variants.map((v) => ({
      name: v,
      values: key.map(([s, n]) => results.find((r) => r.suite === s && r.variant === v)?.metrics.find((m) => m.name === n)?.value ?? NaN),
    })),
    width: Math.max(800, 160 * categories.length),
  });
  return table;
}
