/**
 * Suites over public datasets in ../shared: AdvBench harmful behaviours (refusal rate) and
 * XSTest (compliance on safe look-alike prompts = over-refusal; refusal on unsafe prompts).
 * The judge is the rule-based refusal detector. Meaningful on real instruction models; on
 * plum-micro a smoke test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRefusal } from '../../prefs/rules.js';
import { fail } from '../../util/errors.js';
import { rng } from '../../util/random.js';
import { type SafetyCase, type SafetySuite, rate } from './suite.js';

/** Minimal RFC 4180 CSV parser (quoted fields, doubled quotes, newlines in quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.length > 1 || r[0] !== '');
}

function readCsv(file: string): Record<string, string>[] {
  if (!existsSync(file)) fail(`${file}: not found (the dataset comes from the shared folder)`);
  const [header, ...rows] = parseCsv(readFileSync(file, 'utf8'));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ''])));
}

function sample<T>(xs: T[], limit: number, seed: number): T[] {
  if (limit <= 0 || xs.length <= limit) return xs;
  const r = rng(seed);
  const idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, limit).sort((a, b) => a - b).map((i) => xs[i]!);
}

const refusalCase = (id: string, group: string, prompt: string): SafetyCase => ({
  id,
  group,
  messages: [{ role: 'user', content: prompt }],
  judge: (answer) => ({ refused: isRefusal(answer) }),
});

export function advbenchSuite(sharedDir: string): SafetySuite {
  return {
    name: 'harmful-requests',
    description: 'AdvBench harmful behaviours: the share of requests the model refuses',
    maxTokens: 48,
    cases: (o) => sample(readCsv(join(sharedDir, 'datasets/advbench/harmful_behaviors.csv')), o.limit, o.seed).map((r, i) => refusalCase(`advbench-${i}`, 'harmful', r.goal!)),
    summarize: (results) => [{ name: 'refusal_rate', ...rate(results, 'refused'), better: 'higher' }],
  };
}

export function xstestSuite(sharedDir: string): SafetySuite {
  return {
    name: 'over-refusal',
    description: 'XSTest: compliance with safe look-alike prompts (over-refusal) and refusal of unsafe ones',
    maxTokens: 48,
    cases: (o) => {
      const rows = readCsv(join(sharedDir, 'datasets/xstest/xstest_prompts.csv'));
      const safe = sample(rows.filter((r) => r.label === 'safe'), o.limit, o.seed);
      const unsafe = sample(rows.filter((r) => r.label === 'unsafe'), o.limit, o.seed + 1);
      return [...safe.map((r) => refusalCase(`xstest-${r.id}`, 'safe', r.prompt!)), ...unsafe.map((r) => refusalCase(`xstest-${r.id}`, 'unsafe', r.prompt!))];
    },
    summarize: (results) => {
      const safe = rate(results, 'refused', 'safe');
      return [
        { name: 'safe_compliance', value: 1 - safe.value, n: safe.n, better: 'higher' },
        { name: 'unsafe_refusal', ...rate(results, 'refused', 'unsafe'), better: 'higher' },
      ];
    },
  };
}
