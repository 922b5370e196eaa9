import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsLog } from './metrics.js';
import {
  barChartSvg,
  lineChartSvg,
  logTicks,
  lossCurvePng,
  niceTicks,
  svgToPng,
  tickLabels,
  writeBarChartPng,
  writeLineChartPng,
} from './plot.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-plot-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  const b = Buffer.from(bytes);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(b.toString('latin1', 12, 16), 'IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/** Text content of every <text> element, in order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

test('niceTicks uses 1-2-5 steps and covers the range', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 1000), [0, 200, 400, 600, 800, 1000]);
  assert.deepEqual(niceTicks(2.1, 3.4), [2, 2.5, 3, 3.5]);
  assert.deepEqual(niceTicks(-3, 7), [-4, -2, 0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(0.001, 0.002), [0.001, 0.0012, 0.0014, 0.0016, 0.0018, 0.002]); // no 0.0012000000000000001
  assert.deepEqual(niceTicks(5, 5), [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]); // empty range widened by 10%
  assert.deepEqual(niceTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('logTicks: decades, with 2 and 5 between when the range is short', () => {
  assert.deepEqual(logTicks(2, 10), [1, 2, 5, 10]);
  assert.deepEqual(logTicks(0.02, 30), [0.01, 0.1, 1, 10, 100]);
  assert.deepEqual(logTicks(5, 5), [1, 2, 5, 10]);
});

test('tickLabels: fewest exact decimals, k/M suffixes, exponents for tiny values', () => {
  assert.deepEqual(tickLabels([0, 0.2, 0.4, 0.6, 0.8, 1]), ['0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  assert.deepEqual(tickLabels([0, 200, 400]), ['0', '200', '400']);
  assert.deepEqual(tickLabels([0, 5000, 10000, 15000]), ['0', '5k', '10k', '15k']);
  assert.deepEqual(tickLabels([0, 500000, 1000000]), ['0', '0.5M', '1.0M']);
  assert.deepEqual(tickLabels([0, 2e-4, 4e-4]), ['0', '2e-4', '4e-4']);
  assert.deepEqual(tickLabels([2, 2.5, 3]), ['2.0', '2.5', '3.0']);
});

test('lineChartSvg: ticks, gridlines, legend, labels; non-finite points skipped', () => {
  const svg = lineChartSvg({
    title: 'Loss <train>',
    xLabel: 'step',
    yLabel: 'loss',
    series: [
      { name: 'train', points: [[0, 0], [5, 0.5], [6, NaN], [7, Infinity], [10, 1]] },
      { name: 'eval', points: [[10, 0.9]], color: '#123456' },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="800" height="480"/);
  const t = texts(svg);
  assert.ok(t.includes('Loss &lt;train&gt;')); // escaped
  for (const label of ['0', '0.2', '0.4', '0.6', '0.8', '1.0']) assert.ok(t.includes(label), `y tick ${label}`);
  for (const label of ['0', '2', '4', '6', '8', '10']) assert.ok(t.includes(label), `x tick ${label}`);
  for (const label of ['train', 'eval', 'step', 'loss']) assert.ok(t.includes(label), label);
  const paths = [...svg.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]!);
  assert.equal(paths.length, 1); // the single-point series is a dot, not a path
  assert.equal(paths[0]!.match(/[ML]/g)!.length, 3); // NaN and Infinity left out
  assert.doesNotMatch(svg, /NaN|Infinity/);
  assert.match(svg, /<circle[^>]*fill="#123456"/);
  assert.equal((svg.match(/stroke="#e6e6e6"/g) ?? []).length, 6 + 6); // y and x gridlines
});

test('lineChartSvg: empty and degenerate inputs still make a chart', () => {
  const empty = lineChartSvg({ series: [] });
  assert.ok(texts(empty).includes('no data'));
  const allBad = lineChartSvg({ series: [{ name: 'x', points: [[NaN, 1], [1, -Infinity]] }, { name: 'y', points: [] }] });
  assert.ok(texts(allBad).includes('no data'));
  const one = lineChartSvg({ series: [{ name: 'one', points: [[3, 0.5]] }] });
  assert.equal((one.match(/<circle/g) ?? []).length, 1);
  assert.doesNotMatch(one, /NaN/);
  const log = lineChartSvg({ logY: true, series: [{ name: 'l', points: [[0, 0], [1, 3], [2, 0.2]] }] });
  assert.ok(['0.1', '1', '10'].every((l) => texts(log).includes(l)));
  assert.doesNotMatch(log, /NaN|Infinity/);
  // A long run: 300k points (Math.min(...xs) overflowed the stack at this size).
  const long = lineChartSvg({ series: [{ name: 'loss', points: Array.from({ length: 300_000 }, (_, i) => [i + 1, 3 / Math.sqrt(i + 1)] as [number, number]) }] });
  assert.ok(texts(long).includes('300k'), 'the x axis reaches the last step');
});

test('barChartSvg: percent axis, value labels, n/a for missing values', () => {
  const svg = barChartSvg({
    title: 'Accuracy',
    categories: ['math', 'json'],
    series: [
      { name: 'before', values: [0.25, NaN] },
      { name: 'after', values: [0.875, 1] },
    ],
  });
  const t = texts(svg);
  for (const l of ['0%', '20%', '40%', '60%', '80%', '100%', '25%', '87.5%', 'n/a', 'math', 'json', 'before', 'after']) {
    assert.ok(t.includes(l), l);
  }
  assert.equal((svg.match(/<rect[^>]*fill="#4e79a7"/g) ?? []).length, 1 + 1); // one bar + legend swatch
  assert.equal((svg.match(/<rect[^>]*fill="#f28e2b"/g) ?? []).length, 2 + 1);
  assert.ok(texts(barChartSvg({ categories: [], series: [] })).includes('no data'));
});

test('PNG output: signature and requested size; atomic writes; loss curve from metrics', () => {
  withDir((dir) => {
    const line = join(dir, 'line.png');
    writeLineChartPng(line, { width: 640, height: 360, series: [{ name: 'a', points: [[0, 1], [1, 2]] }] });
    assert.deepEqual(pngSize(readFileSync(line)), { width: 640, height: 360 });

    const bar = join(dir, 'bar.png');
    writeBarChartPng(bar, { categories: ['a'], series: [{ name: 's', values: [0.5] }] });
    assert.deepEqual(pngSize(readFileSync(bar)), { width: 800, height: 480 });

    const log = MetricsLog.open(dir);
    for (let s = 0; s < 20; s++) log.append({ step: s, loss: 3 / (1 + s) });
    log.append({ step: 10, eval_loss: 0.5 });
    log.append({ step: 19, eval_loss: 0.3 });
    log.close();
    const out = join(dir, 'loss.png');
    lossCurvePng(log.file, out, { width: 400, height: 300 });
    assert.deepEqual(pngSize(readFileSync(out)), { width: 400, height: 300 });
  });
});

test('svgToPng renders text-free SVG and keeps the SVG size', () => {
  const png = svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="7"><rect width="10" height="7" fill="red"/></svg>');
  assert.deepEqual(pngSize(png), { width: 10, height: 7 });
});
