/**
 * Small, dependency-free SVG charts (line and grouped bar) for training and evaluation
 * reports, and PNG output through resvg.
 *
 * Axes get "nice" ticks in 1-2-5 steps with light gridlines; the legend sits in a row under
 * the title so it never covers data. Non-finite points are skipped (and non-positive ones on a
 * log axis); a series with a single point is drawn as a dot; with no data at all the chart
 * still renders, saying so.
 *
 * @example
 * writeLineChartPng('loss.png', {
 *   title: 'Loss', xLabel: 'step', yLabel: 'loss',
 *   series: [{ name: 'train', points: [[0, 3.1], [10, 2.4]] }],
 * });
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { writeFileAtomic } from './atomic.js';
import { fail } from './errors.js';
import { metricSeries, readMetrics } from './metrics.js';

export type Point = readonly [x: number, y: number];

export interface LineSeries {
  name: string;
  points: readonly Point[];
  /** Any SVG colour; default from a colour-blind-friendly palette by position. */
  color?: string;
}

export interface LineChartSpec {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: readonly LineSeries[];
  /** Logarithmic y axis (points with y <= 0 are skipped). */
  logY?: boolean;
  /** Pixels; default 800 x 480. */
  width?: number;
  height?: number;
}

export interface BarSeries {
  name: string;
  /** One value per category; NaN for a missing value (no bar, `n/a`). */
  values: readonly number[];
  color?: string;
}

export interface BarChartSpec {
  title?: string;
  yLabel?: string;
  categories: readonly string[];
  /** One bar per series in each category group, e.g. `before` and `after`. */
  series: readonly BarSeries[];
  /** Values are fractions shown as percentages on a 0-100% axis (default true). */
  percent?: boolean;
  width?: number;
  height?: number;
}

/** Tableau 10: distinguishable for common colour-vision deficiencies. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const FONT = "'DejaVu Sans', Arial, Helvetica, sans-serif";
const TEXT = '#222';
const MUTED = '#555';
const GRID = '#e6e6e6';
const AXIS = '#999';
/** Width of one character as a fraction of the font size (DejaVu Sans digits are 0.64 em). */
const CHAR_EM = 0.62;

// ---- ticks ----

/**
 * Ticks in 1-2-5 steps covering [min, max] with about `intervals` intervals, starting at or
 * below `min` and ending at or above `max`: niceTicks(0, 1) = [0, 0.2, 0.4, 0.6, 0.8, 1].
 * An empty range is widened around its value.
 */
export function niceTicks(min: number, max: number, intervals = 6): number[] {
  [min, max] = widen(min, max);
  const raw = (max - min) / intervals;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  const step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const lo = Math.floor(min / step + 1e-9);
  const hi = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let i = lo; i <= hi; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return ticks;
}

/** Powers of ten covering [min, max] (both > 0), with 2x and 5x between when few decades. */
export function logTicks(min: number, max: number): number[] {
  let lo = Math.floor(Math.log10(min) + 1e-9);
  let hi = Math.ceil(Math.log10(max) - 1e-9);
  if (hi <= lo) hi = lo + 1;
  const mids = hi - lo <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) {
    for (const m of mids) if (e < hi || m === 1) ticks.push(Number((m * 10 ** e).toPrecision(12)));
  }
  return ticks;
}

/**
 * Labels for a set of ticks, with as few decimals as show them all exactly: thousands as `k`
 * (and `M` from 10^6) when the largest reaches 10^4, exponents when all are below 10^-3:
 * [0, 5000, 10000] -> ['0', '5k', '10k'], [0, 2e-4, 4e-4] -> ['0', '2e-4', '4e-4'].
 */
export function tickLabels(ticks: readonly number[]): string[] {
  const maxAbs = Math.max(0, ...ticks.map(Math.abs));
  const exact = (f: (t: number) => string): boolean => ticks.every((t) => Math.abs(Number(f(t)) - t) <= 1e-9 * maxAbs);
  const zeroOr = (f: (t: number) => string) => ticks.map((t) => (t === 0 ? '0' : f(t)));
  if (maxAbs > 0 && maxAbs < 1e-3) {
    let d = 0;
    while (d < 6 && !exact((t) => t.toExponential(d))) d++;
    return zeroOr((t) => t.toExponential(d));
  }
  const [scale, suffix] = maxAbs >= 1e6 ? [1e6, 'M'] : maxAbs >= 1e4 ? [1e3, 'k'] : [1, ''];
  let d = 0;
  while (d < 6 && !exact((t) => String(Number((t / scale).toFixed(d)) * scale))) d++;
  return zeroOr((t) => (t / scale).toFixed(d) + suffix);
}

function widen(min: number, max: number): [number, number] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max > min) return [min, max];
  if (min === 0) return [0, 1];
  const d = Math.abs(min) * 0.1;
  return [min - d, min + d];
}

// ---- SVG building ----

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Coordinates to 0.1 px keep files small without visible change. */
function r1(v: number): number {
  return Math.round(v * 10) / 10;
}

type Attrs = Record<string, string | number | undefined>;

function el(tag: string, attrs: Attrs, body?: string): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? r1(v) : esc(v!)}"`)
    .join('');
  return body === undefined ? `<${tag}${a}/>` : `<${tag}${a}>${body}</${tag}>`;
}

function text(x: number, y: number, s: string, attrs: Attrs = {}): string {
  return el('text', { x, y, 'font-size': 12, fill: TEXT, ...attrs }, esc(s));
}

function textWidth(s: string, fontSize: number): number {
  return s.length * fontSize * CHAR_EM;
}

interface Frame {
  width: number;
  height: number;
  /** Plot area. */
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface LegendItem {
  name: string;
  color: string;
}

/** Title and legend rows at the top; returns the SVG and the y where the plot may start. */
function header(width: number, title: string | undefined, legend: readonly LegendItem[], swatch: 'line' | 'box'): { svg: string; y: number } {
  let svg = '';
  let y = 14;
  if (title) {
    svg += text(width / 2, y + 18, title, { 'font-size': 18, 'font-weight': 'bold', 'text-anchor': 'middle' });
    y += 30;
  }
  const items = legend.filter((l) => l.name);
  if (items.length > 0) {
    const rows: { item: LegendItem; w: number }[][] = [[]];
    let rowW = 0;
    for (const item of items) {
      const w = 26 + textWidth(item.name, 13) + 18;
      if (rowW + w > width - 40 && rows.at(-1)!.length > 0) {
        rows.push([]);
        rowW = 0;
      }
      rows.at(-1)!.push({ item, w });
      rowW += w;
    }
    for (const row of rows) {
      let x = (width - row.reduce((a, r) => a + r.w, 0) + 18) / 2; // centred
      const cy = y + 10;
      for (const { item, w } of row) {
        svg += swatch === 'line'
          ? el('line', { x1: x, y1: cy, x2: x + 20, y2: cy, stroke: item.color, 'stroke-width': 3, 'stroke-linecap': 'round' })
          : el('rect', { x: x + 4, y: cy - 6, width: 12, height: 12, fill: item.color });
        svg += text(x + 26, cy + 4.5, item.name, { 'font-size': 13 });
        x += w;
      }
      y += 20;
    }
    y += 4;
  }
  return { svg, y };
}

function svgDocument(f: Frame, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" font-family="${esc(FONT)}">` +
    el('rect', { x: 0, y: 0, width: f.width, height: f.height, fill: '#ffffff' }) +
    body +
    '</svg>\n'
  );
}

/** Horizontal gridlines with labels on the left; returns SVG. */
function yAxis(f: Frame, ticks: readonly number[], labels: readonly string[], toY: (v: number) => number, label?: string): string {
  let svg = '';
  ticks.forEach((t, i) => {
    const y = toY(t);
    svg += el('line', { x1: f.left, y1: y, x2: f.right, y2: y, stroke: GRID, 'stroke-width': 1 });
    svg += text(f.left - 8, y + 4, labels[i]!, { 'text-anchor': 'end', fill: MUTED });
  });
  if (label) {
    const cx = f.left - 8 - Math.max(0, ...labels.map((l) => textWidth(l, 12))) - 14; // beside the widest tick label
    const cy = (f.top + f.bottom) / 2;
    svg += text(cx, cy, label, { 'font-size': 14, 'text-anchor': 'middle', transform: `rotate(-90 ${r1(cx)} ${r1(cy)})` });
  }
  return svg;
}

function yLabelRoom(labels: readonly string[], yLabel?: string): number {
  return 12 + (yLabel ? 22 : 0) + Math.max(0, ...labels.map((l) => textWidth(l, 12))) + 8;
}

// ---- line chart ----

/** An SVG line chart; see the module comment. */
export function lineChartSvg(spec: LineChartSpec): string {
  const width = spec.width ?? 800;
  const height = spec.height ?? 480;
  const logY = spec.logY ?? false;
  const series = spec.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length]!,
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)),
  }));
  const all = series.flatMap((s) => s.points);
  // Loops, not Math.min(...xs): a long run's 100k+ points would overflow the stack.
  const lo = (v: number[]): number => v.reduce((m, x) => Math.min(m, x), Infinity);
  const hi = (v: number[]): number => v.reduce((m, x) => Math.max(m, x), -Infinity);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);

  const [x0, x1] = widen(lo(xs), hi(xs));
  const xTicks = niceTicks(x0, x1).filter((t) => t >= x0 - 1e-9 * Math.abs(x1 - x0) && t <= x1 + 1e-9 * Math.abs(x1 - x0));
  const yTicks = all.length === 0 ? niceTicks(0, 1) : logY ? logTicks(lo(ys), hi(ys)) : niceTicks(lo(ys), hi(ys));
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  // log ticks span decades, so each gets its own decimals (0.001, 0.01, 1, 10)
  const yLabels = logY ? yTicks.map((t) => tickLabels([t])[0]!) : tickLabels(yTicks);

  const head = header(width, spec.title, series, 'line');
  const f: Frame = { width, height, left: yLabelRoom(yLabels, spec.yLabel), top: head.y + 8, right: width - 28, bottom: height - (spec.xLabel ? 52 : 32) };
  const toX = (x: number): number => f.left + ((x - x0) / (x1 - x0)) * (f.right - f.left);
  const yFrac = logY ? (y: number) => Math.log10(y / y0) / Math.log10(y1 / y0) : (y: number) => (y - y0) / (y1 - y0);
  const toY = (y: number): number => f.bottom - yFrac(y) * (f.bottom - f.top);

  let svg = head.svg + yAxis(f, yTicks, yLabels, toY, spec.yLabel);
  tickLabels(xTicks).forEach((label, i) => {
    const x = toX(xTicks[i]!);
    svg += el('line', { x1: x, y1: f.top, x2: x, y2: f.bottom, stroke: GRID, 'stroke-width': 1 });
    svg += el('line', { x1: x, y1: f.bottom, x2: x, y2: f.bottom + 5, stroke: AXIS, 'stroke-width': 1 });
    svg += text(x, f.bottom + 19, label, { 'text-anchor': 'middle', fill: MUTED });
  });
  svg += el('line', { x1: f.left, y1: f.bottom, x2: f.right, y2: f.bottom, stroke: AXIS, 'stroke-width': 1 });
  svg += el('line', { x1: f.left, y1: f.top, x2: f.left, y2: f.bottom, stroke: AXIS, 'stroke-width': 1 });
  if (spec.xLabel) svg += text((f.left + f.right) / 2, height - 14, spec.xLabel, { 'font-size': 14, 'text-anchor': 'middle' });

  svg += `<clipPath id="plot"><rect x="${r1(f.left - 4)}" y="${r1(f.top - 4)}" width="${r1(f.right - f.left + 8)}" height="${r1(f.bottom - f.top + 8)}"/></clipPath><g clip-path="url(#plot)">`;
  for (const s of series) {
    if (s.points.length > 1) {
      const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${r1(toX(x))} ${r1(toY(y))}`).join('');
      svg += el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' });
    }
    if (s.points.length <= 40) {
      for (const [x, y] of s.points) svg += el('circle', { cx: toX(x), cy: toY(y), r: 3.5, fill: s.color, stroke: '#ffffff', 'stroke-width': 1 });
    }
  }
  svg += '</g>';
  if (all.length === 0) svg += text((f.left + f.right) / 2, (f.top + f.bottom) / 2, 'no data', { 'font-size': 14, 'text-anchor': 'middle', fill: MUTED });
  return svgDocument(f, svg);
}

// ---- grouped bar chart ----

/** An SVG grouped bar chart; see BarChartSpec. */
export function barChartSvg(spec: BarChartSpec): string {
  const width = spec.width ?? 800;
  const height = spec.height ?? 480;
  const percent = spec.percent ?? true;
  const series = spec.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length]!, values: s.values }));
  const vals = series.flatMap((s) => s.values.filter(Number.isFinite));
  const lo = Math.min(0, ...vals);
  const hi = Math.max(percent ? 1 : 0, ...vals);
  const yTicks = niceTicks(lo, hi, percent && lo === 0 && hi === 1 ? 5 : 6);
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const fmt = (v: number): string => (percent ? `${Number((v * 100).toFixed(1))}%` : tickLabels([v])[0]!);
  const yLabels = percent ? yTicks.map((t) => `${Number((t * 100).toFixed(6))}%`) : tickLabels(yTicks);

  const n = Math.max(1, spec.categories.length);
  const head = header(width, spec.title, series, 'box');
  const cats = spec.categories.map((c) => (c.length > 28 ? c.slice(0, 27) + '…' : c));
  const longest = Math.max(0, ...cats.map((c) => textWidth(c, 12)));
  let left = yLabelRoom(yLabels, spec.yLabel);
  let groupW = (width - 20 - left) / n;
  const rotate = longest > groupW - 6;
  if (rotate) {
    // the first label, slanted down-left from its group's centre, must stay inside the image
    left = Math.max(left, textWidth(cats[0]!, 12) * Math.cos(Math.PI / 6) - groupW / 2 + 8);
    groupW = (width - 20 - left) / n;
  }
  const f: Frame = { width, height, left, top: head.y + 12, right: width - 20, bottom: height - (rotate ? 24 + longest * 0.5 : 36) };
  const toY = (v: number): number => f.bottom - ((v - y0) / (y1 - y0)) * (f.bottom - f.top);

  let svg = head.svg + yAxis(f, yTicks, yLabels, toY, spec.yLabel);
  const barW = (groupW * 0.8) / Math.max(1, series.length);
  const valueFont = Math.min(11, barW / 3.2);
  cats.forEach((cat, ci) => {
    const gx = f.left + ci * groupW + groupW * 0.1;
    series.forEach((s, si) => {
      const v = s.values[ci] ?? NaN;
      const x = gx + si * barW;
      const cx = x + barW / 2;
      if (!Number.isFinite(v)) {
        if (valueFont >= 7) svg += text(cx, toY(0) - 4, 'n/a', { 'font-size': valueFont, 'text-anchor': 'middle', fill: MUTED });
        return;
      }
      const [yTop, yBot] = [toY(Math.max(v, 0)), toY(Math.min(v, 0))];
      svg += el('rect', { x: x + 1, y: yTop, width: Math.max(1, barW - 2), height: Math.max(0.5, yBot - yTop), fill: s.color });
      if (valueFont >= 7) svg += text(cx, v >= 0 ? yTop - 4 : yBot + valueFont + 2, fmt(v), { 'font-size': valueFont, 'text-anchor': 'middle', fill: MUTED });
    });
    const lx = f.left + (ci + 0.5) * groupW;
    svg += rotate
      ? text(lx, f.bottom + 14, cat, { 'text-anchor': 'end', transform: `rotate(-30 ${r1(lx)} ${r1(f.bottom + 14)})` })
      : text(lx, f.bottom + 19, cat, { 'text-anchor': 'middle' });
  });
  svg += el('line', { x1: f.left, y1: toY(0), x2: f.right, y2: toY(0), stroke: AXIS, 'stroke-width': 1 });
  svg += el('line', { x1: f.left, y1: f.top, x2: f.left, y2: f.bottom, stroke: AXIS, 'stroke-width': 1 });
  if (spec.categories.length === 0) svg += text((f.left + f.right) / 2, (f.top + f.bottom) / 2, 'no data', { 'font-size': 14, 'text-anchor': 'middle', fill: MUTED });
  return svgDocument(f, svg);
}

// ---- PNG ----

interface ResvgModule {
  Resvg: new (svg: string, opts: object) => { render(): { asPng(): Uint8Array } };
}

let resvg: ResvgModule | undefined;

/** DejaVu Sans where Debian and most Linux distributions put it. */
const FONT_FILES = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'];

/**
 * Render SVG to PNG bytes at the SVG's own size. Uses DejaVu Sans when installed, else the
 * system fonts; with no fonts at all the text is left out rather than failing.
 */
export function svgToPng(svg: string): Uint8Array {
  const { Resvg } = (resvg ??= loadResvg());
  const fontFiles = FONT_FILES.filter((p) => existsSync(p));
  const font = fontFiles.length > 0
    ? { loadSystemFonts: false, fontFiles, defaultFontFamily: 'DejaVu Sans' }
    : { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' };
  return new Resvg(svg, { font, background: '#ffffff' }).render().asPng();
}

/** Loaded on first use, so the SVG functions work where the native binary is missing. */
function loadResvg(): ResvgModule {
  try {
    return createRequire(import.meta.url)('@resvg/resvg-js') as ResvgModule;
  } catch (e) {
    return fail(`PNG charts need @resvg/resvg-js with a prebuilt binary for ${process.platform}-${process.arch} (${(e as Error).message}); run npm install`);
  }
}

/** Write a line chart as PNG, atomically. */
export function writeLineChartPng(file: string, spec: LineChartSpec): void {
  writeFileAtomic(file, svgToPng(lineChartSvg(spec)));
}

/** Write a grouped bar chart as PNG, atomically. */
export function writeBarChartPng(file: string, spec: BarChartSpec): void {
  writeFileAtomic(file, svgToPng(barChartSvg(spec)));
}

export interface LossCurveOptions {
  /** Metrics key of the training loss (default `loss`). */
  trainKey?: string;
  /** Metrics key of the evaluation loss (default `eval_loss`); plotted when present. */
  evalKey?: string;
  title?: string;
  logY?: boolean;
  width?: number;
  height?: number;
}

/** Plot training loss (and eval loss when logged) against step from a metrics.jsonl file. */
export function lossCurvePng(metricsFile: string, outFile: string, opts: LossCurveOptions = {}): void {
  const records = readMetrics(metricsFile);
  const train = metricSeries(records, opts.trainKey ?? 'loss');
  const evals = metricSeries(records, opts.evalKey ?? 'eval_loss');
  const series: LineSeries[] = [{ name: 'train loss', points: train }];
  if (evals.length > 0) series.push({ name: 'eval loss', points: evals });
  writeLineChartPng(outFile, {
    title: opts.title ?? 'Loss',
    xLabel: 'step',
    yLabel: 'loss',
    series,
    logY: opts.logY,
    width: opts.width,
    height: opts.height,
  });
}
