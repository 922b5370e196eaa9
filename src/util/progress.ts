/**
 * Progress reporting for long jobs (training steps, tokenising, evaluation).
 *
 * On a terminal: one line redrawn in place, e.g.
 *   `train ████████▌       37/120  31%  2.31 it/s  1.2k tok/s  ETA 36s  loss 2.314`
 * Off a terminal (CI logs, pipes): plain lines without escape codes, one every `intervalS`
 * seconds or every ~5% of the total, whichever comes first, plus a final summary line.
 *
 * Rates come from a sliding window of recent ticks, so a slow first step (graph building,
 * warm-up) does not distort the ETA for the rest of the run.
 *
 * @example
 * const p = createProgress({ total: steps, label: 'train', rates: { tokens: 'tok' } });
 * for (...) p.tick(1, { tokens: batchTokens, loss });
 * p.done();
 */

/** Extra values shown after the rates: the latest value of each key (`loss 2.314`). */
export type ProgressFields = Record<string, number | string>;

/** The part of a writable stream the reporter uses; `process.stderr` qualifies. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Number of items (steps, examples) expected; 0 when unknown (no bar, no ETA). */
  total: number;
  /** Shown at the start of every line. */
  label?: string;
  /** Default `process.stderr`. */
  stream?: ProgressStream;
  /** Unit of the main count for its rate, default `it` (`2.31 it/s`). */
  unit?: string;
  /**
   * Fields that are per-tick counts to turn into rates rather than values to show, mapped to
   * their unit: `{ tokens: 'tok' }` makes `tick(1, { tokens: 512 })` show `… tok/s`.
   */
  rates?: Record<string, string>;
  /** Redraw in place (default: `stream.isTTY`). */
  tty?: boolean;
  /** Off a terminal, print at least this often (seconds, default 30). */
  intervalS?: number;
  /** Milliseconds clock, for tests (default `performance.now`). */
  now?: () => number;
}

export interface Progress {
  /** Count `n` more items done; `fields` update the shown values and add to the rate counters. */
  tick(n?: number, fields?: ProgressFields): void;
  /** Print a line above the progress line (which is redrawn after it on a terminal). */
  log(line: string): void;
  /** Print the final state and stop; later calls do nothing. */
  done(): void;
}

// ---- deterministic formatting helpers ----

/** `12s`, `3m05s`, `1h02m`, `2d03h`; `--` for unknown (negative, NaN, infinite). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (v: number): string => String(v).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/**
 * A rate with 3-4 significant figures: `1.2M tok/s`, `23.5k tok/s`, `845 it/s`, `12.3 it/s`,
 * `2.31 it/s`; below 1 per second it flips to seconds per item (`4.2 s/it`), which reads
 * better for slow training steps. `-- it/s` when unknown.
 */
export function formatRate(perSecond: number, unit = 'it'): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `-- ${unit}/s`;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M ${unit}/s`;
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(1)}k ${unit}/s`;
  if (perSecond >= 100) return `${perSecond.toFixed(0)} ${unit}/s`;
  if (perSecond >= 10) return `${perSecond.toFixed(1)} ${unit}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(2)} ${unit}/s`;
  return `${(1 / perSecond).toFixed(1)} s/${unit}`;
}

/** A field value: integers as is, others with 4 significant digits (`2.314`, `3.00e-4`). */
export function formatValue(v: number | string): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

const PARTIAL = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar `width` cells wide filled to `fraction` (clamped to 0..1) in eighths of a cell. */
export function renderBar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const eighths = Math.floor(f * width * 8);
  const full = Math.floor(eighths / 8);
  const part = PARTIAL[eighths % 8]!;
  return '█'.repeat(full) + part + ' '.repeat(width - full - (part ? 1 : 0));
}

// ---- the reporter ----

interface Sample {
  t: number; // ms
  count: number;
  rateTotals: number[]; // cumulative sum of each `rates` field, in key order
}

/** Rates are measured over roughly this much recent time. */
const WINDOW_MS = 30_000;
/** Terminal redraws at most this often. */
const REDRAW_MS = 100;
const ESC_CLEAR_LINE = '\x1b[K';

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? stream.isTTY === true;
  const now = opts.now ?? (() => performance.now());
  const total = Math.max(0, opts.total);
  const unit = opts.unit ?? 'it';
  const rateKeys = Object.keys(opts.rates ?? {});
  const intervalMs = (opts.intervalS ?? 30) * 1000;
  const stepForPrint = total > 0 ? Math.max(1, Math.ceil(total / 20)) : Infinity; // ~5%

  const start = now();
  let count = 0;
  const rateTotals = rateKeys.map(() => 0);
  const shown: ProgressFields = {};
  const origin: Sample = { t: start, count: 0, rateTotals: [...rateTotals] };
  const samples: Sample[] = [origin]; // recent ticks, oldest first
  let lastDraw = -Infinity;
  let lastPrint = start;
  let nextPrintAt = stepForPrint;
  let drawn = false; // a progress line is on screen (terminal mode)
  let finished = false;

  /** Items/s (and each custom rate) over the window; whole-run averages when `overall`. */
  function rates(t: number, overall: boolean): { main: number; custom: number[] } {
    const first = overall ? origin : oldestInWindow(t);
    const dt = (t - first.t) / 1000;
    if (dt <= 0) return { main: NaN, custom: rateKeys.map(() => NaN) };
    return {
      main: (count - first.count) / dt,
      custom: rateTotals.map((v, i) => (v - first.rateTotals[i]!) / dt),
    };
  }

  function oldestInWindow(t: number): Sample {
    while (samples.length > 2 && t - samples[1]!.t >= WINDOW_MS) samples.shift();
    return samples[0]!;
  }

  function line(t: number, final: boolean, withBar: boolean): string {
    const r = rates(t, final);
    const parts: string[] = [];
    if (opts.label) parts.push(opts.label);
    const frac = total > 0 ? count / total : NaN;
    if (withBar && total > 0) parts.push(renderBar(frac, 20));
    parts.push(total > 0 ? `${count}/${total}` : `${count}`);
    if (total > 0) parts.push(`${Math.floor(Math.min(1, frac) * 100)}%`);
    parts.push(formatRate(r.main, unit));
    rateKeys.forEach((k, i) => parts.push(formatRate(r.custom[i]!, opts.rates![k])));
    if (final) parts.push(`in ${formatDuration((t - start) / 1000)}`);
    else if (total > 0) parts.push(`ETA ${formatDuration((total - count) / r.main)}`);
    for (const [k, v] of Object.entries(shown)) parts.push(`${k} ${formatValue(v)}`);
    return parts.join('  ');
  }

  function draw(t: number, final = false): void {
    let s = line(t, final, true);
    const cols = stream.columns ?? 0;
    if (cols > 1 && s.length > cols - 1) s = s.slice(0, cols - 1); // never wrap: \r could not undo it
    stream.write(`\r${s}${ESC_CLEAR_LINE}`);
    drawn = true;
    lastDraw = t;
  }

  return {
    tick(n = 1, fields) {
      if (finished) return;
      count += n;
      if (fields) {
        for (const [k, v] of Object.entries(fields)) {
          const i = rateKeys.indexOf(k);
          if (i >= 0) rateTotals[i]! += Number(v);
          else shown[k] = v;
        }
      }
      const t = now();
      samples.push({ t, count, rateTotals: [...rateTotals] });
      if (samples.length > 4096) samples.splice(0, samples.length - 4096);
      if (tty) {
        if (t - lastDraw >= REDRAW_MS) draw(t);
      } else if (count >= nextPrintAt || t - lastPrint >= intervalMs) {
        stream.write(line(t, false, false) + '\n');
        lastPrint = t;
        while (nextPrintAt <= count) nextPrintAt += stepForPrint;
      }
    },
    log(text) {
      if (finished || !tty) {
        stream.write(text + '\n');
        return;
      }
      stream.write(`${drawn ? `\r${ESC_CLEAR_LINE}` : ''}${text}\n`);
      drawn = false;
      draw(now());
    },
    done() {
      if (finished) return;
      finished = true;
      const t = now();
      if (tty) {
        draw(t, true);
        stream.write('\n');
      } else {
        stream.write(line(t, true, false) + '\n');
      }
    },
  };
}
