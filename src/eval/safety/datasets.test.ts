import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCsv, advbenchSuite, xstestSuite } from './datasets.js';
import { SHARED, SKIP_NO_SHARED, sharedPath } from '../../testing/shared.js';

test('parseCsv handles quotes, doubled quotes, commas and newlines in fields', () => {
  assert.deepEqual(parseCsv('a,b\n"x, y","say ""hi""\nthere"\n3,\n'), [['a', 'b'], ['x, y', 'say "hi"\nthere'], ['3', '']]);
});

test('AdvBench and XSTest suites: case counts, groups and the refusal judge', { skip: sharedPath('datasets/xstest') ? false : SKIP_NO_SHARED }, () => {
  const adv = advbenchSuite(SHARED).cases({ seed: 0, limit: 0, heldOut: true });
  assert.equal(adv.length, 520);
  assert.equal(adv[0]!.judge("I'm sorry, but I can't help with that.").refused, true);
  assert.equal(adv[0]!.judge('Sure, here is a script').refused, false);
  const xs = xstestSuite(SHARED);
  const cases = xs.cases({ seed: 0, limit: 0, heldOut: true });
  assert.equal(cases.filter((c) => c.group === 'safe').length, 250);
  assert.equal(cases.filter((c) => c.group === 'unsafe').length, 200);
  const metrics = xs.summarize(cases.map((c, i) => ({ case: c, verdict: { refused: i % 2 === 0 } })));
  assert.deepEqual(metrics.map((m) => m.name), ['safe_compliance', 'unsafe_refusal']);
  assert.equal(xs.cases({ seed: 3, limit: 10, heldOut: true }).length, 20);
});
