import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, formatDuration, formatRate, formatValue, renderBar } from './progress.js';

test('formatDuration', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(12), '12s');
  assert.equal(formatDuration(12.4), '12s');
  assert.equal(formatDuration(59.6), '1m00s');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(3720), '1h02m');
  assert.equal(formatDuration(86400 + 3 * 3600 + 59), '1d03h');
  assert.equal(formatDuration(-1), '--');
  assert.equal(formatDuration(NaN), '--');
  assert.equal(formatDuration(Infinity), '--');
});

test('formatRate', () => {
  assert.equal(formatRate(2.314), '2.31 it/s');
  assert.equal(formatRate(12.34, 'step'), '12.3 step/s');
  assert.equal(formatRate(845.4), '845 it/s');
  assert.equal(formatRate(1234), '1234 it/s');
  assert.equal(formatRate(23456, 'tok'), '23.5k tok/s');
  assert.equal(formatRate(1.25e6, 'tok'), '1.3M tok/s');
  assert.equal(formatRate(0.25), '4.0 s/it');
  assert.equal(formatRate(0), '-- it/s');
  assert.equal(formatRate(NaN, 'tok'), '-- tok/s');
});

test('formatValue', () => {
  assert.equal(formatValue(2.31449), '2.314');
  assert.equal(formatValue(0.5), '0.5');
  assert.equal(formatValue(42), '42');
  assert.equal(formatValue(3e-4), '3.00e-4');
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue('warmup'), 'warmup');
});

test('renderBar', () => {
  assert.equal(renderBar(0, 10), '          ');
  assert.equal(renderBar(0.5, 10), '█████     ');
  assert.equal(renderBar(0.55, 10), '█████▌    ');
  assert.equal(renderBar(1, 10), '██████████');
  assert.equal(renderBar(2, 4), '████'); // clamped
  assert.equal(renderBar(NaN, 4), '    ');
  for (const f of [0, 0.01, 0.33, 0.999, 1]) assert.equal([...renderBar(f, 7)].length, 7);
});

/** A fake stream and clock: every tick advances the clock by `msPerTick`. */
function harness(isTTY: boolean, msPerTick: number) {
  let t = 0;
  const out: string[] = [];
  const stream = { isTTY, columns: 200, write: (s: string) => out.push(s) };
  return { out, stream, now: () => t, advance: () => (t += msPerTick) };
}

test('off a terminal: plain lines about every 5% with rate and ETA, no escape codes', () => {
  const h = harness(false, 500); // 2 steps/s
  const p = createProgress({ total: 100, label: 'train', stream: h.stream, now: h.now, rates: { tokens: 'tok' } });
  for (let i = 0; i < 100; i++) {
    h.advance();
    p.tick(1, { tokens: 1000, loss: 3 - i / 100 });
  }
  p.log('eval loss 2.5');
  p.done();
  const text = h.out.join('');
  assert.doesNotMatch(text, /\x1b|\r/);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 20 + 2); // every 5 steps, the log line, the summary
  assert.equal(lines[0], 'train  5/100  5%  2.00 it/s  2000 tok/s  ETA 48s  loss 2.96');
  assert.equal(lines[20], 'eval loss 2.5');
  assert.equal(lines[21], 'train  100/100  100%  2.00 it/s  2000 tok/s  in 50s  loss 2.01');
});

test('off a terminal: a line at least every intervalS even when 5% takes longer', () => {
  const h = harness(false, 4000);
  const p = createProgress({ total: 1000, stream: h.stream, now: h.now, intervalS: 10 });
  for (let i = 0; i < 6; i++) {
    h.advance();
    p.tick();
  }
  // ticks at 4, 8, 12, 16, 20, 24 s: printed at 12 s and 24 s
  assert.deepEqual(
    h.out.map((l) => l.split('  ')[0]),
    ['3/1000', '6/1000'],
  );
  assert.match(h.out[0]!, /ETA 1h06m/);
});

test('on a terminal: one redrawn line with bar, log lines above it, final newline', () => {
  const h = harness(true, 1000);
  const p = createProgress({ total: 4, label: 'eval', stream: h.stream, now: h.now });
  h.advance();
  p.tick(1, { acc: 0.5 });
  p.log('hello');
  h.advance();
  p.tick();
  p.done();
  p.done(); // idempotent
  assert.equal(h.out[0], '\reval  █████                 1/4  25%  1.00 it/s  ETA 3s  acc 0.5\x1b[K');
  assert.equal(h.out[1], '\r\x1b[Khello\n');
  assert.match(h.out.at(-2)!, /^\reval  ██████████            2\/4  50%  1.00 it\/s  in 2s  acc 0.5\x1b\[K$/);
  assert.equal(h.out.at(-1), '\n');
  assert.ok(!h.out.slice(0, -1).some((s) => s.endsWith('\n') && s !== '\r\x1b[Khello\n'));
});

test('the window rate ignores a slow first step', () => {
  let t = 0;
  const out: string[] = [];
  const p = createProgress({ total: 1000, stream: { write: (s: string) => out.push(s) }, now: () => t, intervalS: 1e9 });
  t = 60_000; // 60 s of warm-up for step 1
  p.tick();
  for (let i = 0; i < 49; i++) {
    t += 1000;
    p.tick();
  }
  // 50 steps printed at 5%: the last 30 s ran at 1 step/s, so ETA is ~950 s, not ~2 hours
  assert.match(out[0]!.trimEnd(), /^50\/1000  5%  1.00 it\/s  ETA 15m50s$/);
});
