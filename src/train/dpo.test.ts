import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrtBackend } from '../runtime/ort.js';
import { packRows } from '../data/batches.js';
import { checkLossGrads } from '../graph/testing.js';
import { randomWeights, tinyConfig } from '../model/testing.js';
import { CausalLM } from '../model/lm.js';
import { createAdapter } from '../peft/registry.js';
import type { MethodConfig } from '../peft/types.js';
import type { HostArray } from '../runtime/backend.js';
import { prepareBatch } from './feeds.js';
import { buildPreferenceStep } from './graph.js';
import { rowLogps } from './dpo.js';
import { GraphCache } from '../runtime/backend.js';
import type { LoadedModel } from '../model/load.js';

const backend = new OrtBackend({ threads: 1 });
const cfg = tinyConfig();
const weights = randomWeights(cfg, 31);
const base = { cfg, weights };
// Two pairs: chosen rows then rejected rows; labels mark the responses.
const rows = [
  { ids: [1, 5, 9, 33, 7], labels: [-100, -100, -100, 33, 7] },
  { ids: [1, 6, 2, 8], labels: [-100, -100, 2, 8] },
  { ids: [1, 5, 9, 20, 21, 22], labels: [-100, -100, -100, 20, 21, 22] },
  { ids: [1, 6, 2, 30], labels: [-100, -100, 2, 30] },
];

function feedsFor(a: Awaited<ReturnType<typeof createAdapter>>, ref: Float32Array) {
  const prep = prepareBatch(cfg, a, packRows(rows, 0));
  const R = 4;
  const label_row = new Float32Array(prep.shape.K * R);
  prep.labelRows.forEach((r, k) => r >= 0 && (label_row[k * R + r] = 1));
  return { prep, feeds: { ...prep.feeds, label_row, ref_logps: ref, ...a.feeds() } as Record<string, HostArray> };
}

test('DPO loss equals the hand-computed value from the sequence log-probabilities', async () => {
  const lm = new CausalLM(cfg, weights, backend);
  const a = await createAdapter({ kind: 'lora', r: 2, alpha: 2, dropout: 0, targetModules: ['q_proj'], rslora: false }, base, 1);
  const ref = Float32Array.from([-7.5, -4.25, -8.0, -6.5]);
  const { prep, feeds } = feedsFor(a, ref);
  const outs = buildPreferenceStep(cfg, a, { P: 2, T: prep.shape.T, K: prep.shape.K }, { kind: 'sigmoid', beta: 0.1 }, false);
  const run = await backend.compile(outs);
  for (const v of run.inputNames) feeds[v] ??= weights.get(v)!;
  const out = await run.run(feeds);
  // Sequence log-probs from the scoring path (a separate graph).
  const scored = await lm.score(rows.map((r) => r.ids));
  const seq = rows.map((r, i) => r.labels.reduce((s, l, t) => (t > 0 && l !== -100 ? s + scored[i]![t - 1]! : s), 0));
  const logps = out.logps as Float32Array;
  seq.forEach((v, i) => assert.ok(Math.abs(logps[i]! - v) < 1e-4, `row ${i}: ${logps[i]} vs ${v}`));
  let want = 0;
  for (let p = 0; p < 2; p++) {
    const d = seq[p]! - ref[p]! - (seq[2 + p]! - ref[2 + p]!);
    want += Math.log1p(Math.exp(-0.1 * d));
  }
  assert.ok(Math.abs((out.loss_sum as Float32Array)[0]! - want) < 1e-5);
});

test('RPO: --sft-weight adds w x the chosen response NLL per token to the DPO loss', async () => {
  const a = await createAdapter({ kind: 'lora', r: 2, alpha: 2, dropout: 0, targetModules: ['q_proj'], rslora: false }, base, 1);
  const ref = Float32Array.from([-7.5, -4.25, -8.0, -6.5]);
  const { prep, feeds } = feedsFor(a, ref);
  const shape = { P: 2, T: prep.shape.T, K: prep.shape.K };
  const lossOf = async (sftWeight: number) => {
    const run = await backend.compile(buildPreferenceStep(cfg, a, shape, { kind: 'sigmoid', beta: 0.1, sftWeight }, false));
    const f = { ...feeds };
    for (const v of run.inputNames) f[v] ??= weights.get(v)!;
    const out = await run.run(f);
    return { loss: (out.loss_sum as Float32Array)[0]!, logps: out.logps as Float32Array };
  };
  const plain = await lossOf(0);
  const rpo = await lossOf(0.5);
  // Labels per chosen row (rows 0 and 1), as the host counts them.
  const perRow = [0, 1].map((r) => [...prep.labelRows].filter((x) => x === r).length);
  assert.ok(perRow.every((n) => n > 0));
  const want = plain.loss + 0.5 * perRow.reduce((s, n, p) => s - plain.logps[p]! / n, 0);
  assert.ok(Math.abs(rpo.loss - want) < 1e-4, `${rpo.loss} vs ${want}`);
  assert.ok(rpo.loss > plain.loss + 0.1);
});

for (const [name, config] of [
  ['soft prompt', { kind: 'soft-prompt', virtualTokens: 2, init: 'vocab' }],
  ['LoRA', { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj', 'up_proj'], rslora: false }],
] as Array<[string, MethodConfig]>) {
  for (const kind of ['sigmoid', 'ipo'] as const) {
    test(`${kind} preference loss gradient w.r.t. ${name} vs finite differences`, async () => {
      const a = await createAdapter(config, base, 3);
      let k = 0;
      for (const p of a.params) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.1 * Math.sin(++k);
      const { prep, feeds } = feedsFor(a, Float32Array.from([-9, -5, -7, -6]));
      const outs = buildPreferenceStep(cfg, a, { P: 2, T: prep.shape.T, K: prep.shape.K }, { kind, beta: 0.5 }, false);
      const loss = outs.loss_sum!;
      for (const v of loss.graph.inputs) feeds[v.name!] ??= weights.get(v.name!)!;
      const wrt = loss.graph.inputs.filter((v) => a.params.some((p) => p.name === v.name));
      const res = await checkLossGrads(backend, loss, wrt, feeds, { seed: 9, directions: 3 });
      for (const r of res) assert.ok(r.relErr < 2e-3, `analytic ${r.analytic} vs numeric ${r.numeric}`);
    });
  }
}

test('rowLogps batches rows in order of length and returns each row its own log-probability, in the given order', async () => {
  const lm = new CausalLM(cfg, weights, backend);
  const m = { cfg, lm } as unknown as LoadedModel;
  const none = await createAdapter({ kind: 'full' }, base as never, 0);
  const mixed = [rows[2]!, rows[1]!, rows[0]!, rows[3]!, { ids: [1, 2, 3, 4, 5, 6, 7, 8, 9], labels: [-100, -100, -100, -100, -100, 6, 7, 8, 9] }];
  const cache = new GraphCache(backend);
  const alone: number[] = [];
  for (const r of mixed) alone.push((await rowLogps(m, none, [r], 1, cache))[0]!);
  const batched = await rowLogps(m, none, mixed, 2, cache);
  assert.equal(batched.length, mixed.length);
  alone.forEach((x, i) => assert.ok(x < 0 && Math.abs(batched[i]! - x) < 1e-4, `row ${i}: ${batched[i]} batched vs ${x} alone`));
  assert.ok(new Set(alone.map((x) => x.toFixed(4))).size === mixed.length, 'every row has its own value');
});
