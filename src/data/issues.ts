/**
 * Turning zod issues into one-line messages a user can act on:
 * `messages[2].content must be a string (got number); put the text in quotes`.
 * The caller prefixes `file:line: `.
 */
import type { z } from 'zod';
import { fail } from '../util/errors.js';

/** `['messages', 2, 'content']` -> `messages[2].content`; `[]` -> `the record`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out || 'the record';
}

/** The JSON type name of a value: string, number, boolean, null, array, object. */
export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

const article = (t: string): string => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

/** What to write instead, for a value of the expected JSON type. */
const HINTS: Record<string, { example: string; fix: string }> = {
  string: { example: '"..."', fix: 'put the text in quotes' },
  number: { example: '1', fix: 'write a plain number' },
  boolean: { example: 'true', fix: 'write true or false' },
  array: { example: '[...]', fix: 'use a JSON array [...]' },
  object: { example: '{...}', fix: 'use a JSON object {...}' },
};

/**
 * One issue as `<path> <problem>; <fix>`. Schemas in this folder give their own message for
 * `too_small` and `custom` issues, phrased to follow the path ("is empty; add ...").
 */
export function describeIssue(issue: z.core.$ZodIssue, record: unknown): string {
  const path = formatPath(issue.path);
  const value = valueAt(record, issue.path);
  switch (issue.code) {
    case 'invalid_type': {
      const expected = String(issue.expected);
      if (expected === 'int' && typeof value === 'number') return `${path} must be a whole number (got ${value})`;
      const hint = HINTS[expected] ?? { example: expected, fix: `use ${article(expected)}` };
      if (value === undefined) {
        const key = issue.path[issue.path.length - 1];
        return typeof key === 'string'
          ? `${path} is missing; add "${key}": ${hint.example}`
          : `${path} is missing; add ${article(expected)}`;
      }
      return `${path} must be ${article(expected)} (got ${jsonType(value)}); ${hint.fix}`;
    }
    case 'too_small':
    case 'too_big': {
      if (typeof value !== 'number') return `${path} ${issue.message}`;
      const small = issue.code === 'too_small';
      const bound = small ? issue.minimum : issue.maximum;
      const op = small ? (issue.inclusive ? 'at least' : 'greater than') : issue.inclusive ? 'at most' : 'less than';
      return `${path} must be ${op} ${String(bound)} (got ${value})`;
    }
    case 'invalid_value': {
      const allowed = issue.values.map((v) => JSON.stringify(v)).join(', ');
      return `${path} is ${JSON.stringify(value)}, not one of ${allowed}; use one of those`;
    }
    default:
      return `${path} ${issue.message}`;
  }
}

/** Parse `value` with `schema`, or fail with `<what>: <first issue>` on one line. */
export function parseOrFail<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  return fail(`${what}: ${issue.code === 'custom' ? issue.message : describeIssue(issue, value)}`);
}
