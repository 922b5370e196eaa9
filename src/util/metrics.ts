/**
 * Training metrics as JSON lines: `<dir>/metrics.jsonl`, one `{"step": …, …}` object a line.
 *
 * Each record is written with one `write` call as soon as it is appended, so a crash (or
 * Ctrl-C) loses nothing already logged. A resumed run opens the log at its resume step: lines
 * of later steps (written after the checkpoint it resumes from) are dropped, atomically, so
 * the log never shows two histories for the same steps.
 *
 * @example
 * const log = MetricsLog.open(outDir, { resumeStep: ckpt?.step });
 * log.append({ step, loss, lr, tokens_per_s });
 * log.close();
 * lossCurvePng(log.file, join(outDir, 'loss.png'));
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { fail } from './errors.js';

/** One logged value. Non-finite numbers (a diverged loss) are stored as `null`: JSON has no NaN. */
export type MetricValue = number | string | boolean | null;

/** One line of metrics.jsonl. */
export interface MetricsRecord {
  step: number;
  [key: string]: MetricValue;
}

export const METRICS_FILE = 'metrics.jsonl';

export interface MetricsOpenOptions {
  /**
   * Resume a run at this step: keep earlier lines with `step < resumeStep`, drop the rest.
   * Without it the log starts empty (a fresh run replaces an old log in the same folder).
   */
  resumeStep?: number;
  /** File name inside the folder (default `metrics.jsonl`). */
  fileName?: string;
}

/** An append-only metrics log; see the module comment. */
export class MetricsLog {
  private fd: number | undefined;

  private constructor(
    /** Path of the JSON-lines file. */
    readonly file: string,
  ) {
    this.fd = openSync(file, 'a');
  }

  /** Open (creating the folder and file) `<dir>/metrics.jsonl` for a fresh or resumed run. */
  static open(dir: string, opts: MetricsOpenOptions = {}): MetricsLog {
    const file = join(dir, opts.fileName ?? METRICS_FILE);
    const { resumeStep } = opts;
    if (resumeStep !== undefined && !Number.isFinite(resumeStep)) fail(`resumeStep must be a number, got ${resumeStep}`);
    const kept = resumeStep !== undefined && existsSync(file) ? readMetrics(file).filter((r) => r.step < resumeStep) : [];
    // Rewrite even when nothing changes: it also drops a torn last line from a crash.
    writeFileAtomic(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    return new MetricsLog(file);
  }

  /** Append one record and write it out at once. */
  append(record: MetricsRecord): void {
    if (this.fd === undefined) throw new Error(`MetricsLog ${this.file} is closed`);
    if (!Number.isFinite(record.step)) throw new Error(`metrics record needs a finite step, got ${record.step}`);
    writeSync(this.fd, serialize(record));
  }

  /** Close the file; further appends throw. Safe to call twice. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** `step` first, then the other fields in insertion order; NaN and ±Infinity become null. */
function serialize(record: MetricsRecord): string {
  const { step, ...rest } = record;
  return JSON.stringify({ step, ...rest }, (_k, v: unknown) =>
    typeof v === 'number' && !Number.isFinite(v) ? null : v,
  ) + '\n';
}

/**
 * Read every record of a metrics file. A last line without its newline that does not parse
 * (torn by a crash mid-write) is skipped; any other bad line is an error naming file and line.
 */
export function readMetrics(file: string): MetricsRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return fail(`cannot read metrics file ${file}: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  const out: MetricsRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const torn = i === lines.length - 1; // no trailing newline after it
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      if (torn) break;
      return fail(`${file}:${i + 1}: not valid JSON; fix or delete that line`);
    }
    if (typeof rec !== 'object' || rec === null || typeof (rec as { step?: unknown }).step !== 'number') {
      return fail(`${file}:${i + 1}: expected an object with a numeric "step"`);
    }
    out.push(rec as MetricsRecord);
  }
  return out;
}

/** `[step, value]` pairs for every record where `key` holds a finite number. */
export function metricSeries(records: readonly MetricsRecord[], key: string): [number, number][] {
  const out: [number, number][] = [];
  for (const r of records) {
    const v = r[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push([r.step, v]);
  }
  return out;
}
