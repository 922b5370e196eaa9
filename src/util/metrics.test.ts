import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsLog, metricSeries, readMetrics, type MetricsRecord } from './metrics.js';
import { PlumError } from './errors.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-metrics-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('append writes one JSON line per record at once, step first, NaN as null', () => {
  withDir((dir) => {
    const log = MetricsLog.open(join(dir, 'run'));
    log.append({ loss: 2.5, step: 1 });
    // visible before close: nothing is buffered in the process
    assert.equal(readFileSync(log.file, 'utf8'), '{"step":1,"loss":2.5}\n');
    log.append({ step: 2, loss: NaN, note: 'diverged', eval: true });
    log.close();
    log.close();
    assert.throws(() => log.append({ step: 3 }), /closed/);
    assert.equal(readFileSync(log.file, 'utf8'), '{"step":1,"loss":2.5}\n{"step":2,"loss":null,"note":"diverged","eval":true}\n');
    assert.deepEqual(readMetrics(log.file), [
      { step: 1, loss: 2.5 },
      { step: 2, loss: null, note: 'diverged', eval: true },
    ]);
  });
});

test('resume keeps lines with step < resumeStep and drops later ones; a fresh open starts empty', () => {
  withDir((dir) => {
    const log = MetricsLog.open(dir);
    for (let s = 0; s < 10; s++) log.append({ step: s, loss: 10 - s });
    log.append({ step: 5, eval_loss: 4 }); // eval line after the train lines
    log.close();

    const resumed = MetricsLog.open(dir, { resumeStep: 5 });
    assert.deepEqual(readMetrics(resumed.file).map((r) => r.step), [0, 1, 2, 3, 4]);
    resumed.append({ step: 5, loss: 4.5 });
    resumed.close();
    assert.deepEqual(metricSeries(readMetrics(resumed.file), 'loss'), [[0, 10], [1, 9], [2, 8], [3, 7], [4, 6], [5, 4.5]]);
    assert.deepEqual(readdirSync(dir), ['metrics.jsonl']); // no temp file left

    MetricsLog.open(dir).close();
    assert.equal(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'), '');
  });
});

test('resume with no earlier file starts an empty log', () => {
  withDir((dir) => {
    const log = MetricsLog.open(dir, { resumeStep: 100 });
    log.close();
    assert.deepEqual(readMetrics(log.file), []);
  });
});

test('readMetrics skips a torn last line but rejects a bad line in the middle', () => {
  withDir((dir) => {
    const f = join(dir, 'metrics.jsonl');
    writeFileSync(f, '{"step":1,"loss":2}\n{"step":2,"lo');
    assert.deepEqual(readMetrics(f), [{ step: 1, loss: 2 }]);
    // resuming drops the torn line too
    const log = MetricsLog.open(dir, { resumeStep: 10 });
    log.append({ step: 2, loss: 1 });
    log.close();
    assert.equal(readFileSync(f, 'utf8'), '{"step":1,"loss":2}\n{"step":2,"loss":1}\n');

    appendFileSync(f, 'oops\n{"step":3}\n');
    assert.throws(() => readMetrics(f), (e: unknown) => e instanceof PlumError && /metrics\.jsonl:3: not valid JSON/.test(e.message));
    writeFileSync(f, '{"loss":1}\n');
    assert.throws(() => readMetrics(f), /:1: expected an object with a numeric "step"/);
    assert.throws(() => readMetrics(join(dir, 'missing.jsonl')), /cannot read metrics file/);
  });
});

test('metricSeries keeps finite numbers only', () => {
  const recs: MetricsRecord[] = [
    { step: 0, loss: 3 },
    { step: 1, loss: null },
    { step: 2, eval_loss: 2 },
    { step: 3, loss: 'x' },
    { step: 4, loss: 1 },
  ];
  assert.deepEqual(metricSeries(recs, 'loss'), [[0, 3], [4, 1]]);
  assert.deepEqual(metricSeries(recs, 'eval_loss'), [[2, 2]]);
});
