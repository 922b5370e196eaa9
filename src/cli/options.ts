/**
 * Shared CLI option parsing: commander gives strings, zod turns them into typed values with
 * one-line errors that name the option.
 */
import { z } from 'zod';
import { fail } from '../util/errors.js';

export function parseOptions<S extends z.ZodType>(schema: S, raw: unknown, command: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const flag = issue.path.length ? `--${String(issue.path[0]).replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}` : 'options';
    fail(`${command}: ${flag}: ${issue.message}`);
  }
  return r.data;
}

/** A number given on the command line. */
export const num = z.coerce.number<string>().refine(Number.isFinite, 'must be a number');
export const int = z.coerce.number<string>().int('must be an integer');

/** "1,2,3" -> [1,2,3] */
export const idList = z
  .string()
  .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, 'must be comma-separated token ids, e.g. 1,2,3')
  .transform((s) => s.split(',').map((x) => Number(x.trim())));

/** `--no-head-copy` of the commands that decode (generate, serve, bench latency): see LmOptions.headCopy. */
export const NO_HEAD_COPY_HELP = 'do not keep a transposed copy of the output layer for one-row decoding (saves vocab x hidden x 4 bytes; decoding is ~5% slower)';
