import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { crossEntropy } from '../graph/nn.js';
import { checkLossGrads } from '../graph/testing.js';
import { OrtBackend } from '../runtime/ort.js';
import { WeightInputs, decoder, embed, lmHead } from './decoder.js';
import { attentionBias } from './masks.js';
import { ropeTables } from './rope.js';
import { randomWeights, tinyConfig } from './testing.js';

const backend = new OrtBackend({ threads: 1 });

// Whole-model gradient of the mean next-token cross-entropy, every weight kind at once,
// against central finite differences along random directions (tolerance: see graph/testing.ts).
for (const [name, overrides] of [
  ['llama', {}],
  ['qwen2', { architectures: ['Qwen2ForCausalLM'] }],
  ['qwen3 tied', { architectures: ['Qwen3ForCausalLM'], tie_word_embeddings: true }],
] as const) {
  test(`whole-model gradient vs finite differences: ${name}`, async () => {
    const cfg = tinyConfig(overrides);
    const weights = randomWeights(cfg, 9);
    const B = 2;
    const T = 6;
    const g = new Graph();
    const w = new WeightInputs(g, cfg);
    const ids = g.input('ids', [B, T], 'int64');
    const targets = g.input('targets', [B * T], 'int64');
    const cos = g.input('cos', [B, T, cfg.headDim]);
    const sin = g.input('sin', [B, T, cfg.headDim]);
    const bias = g.input('bias', [B, 1, T, T]);
    const { hidden } = decoder(w, { embeds: embed(w, ids), cos, sin, bias });
    const loss = crossEntropy(lmHead(w, op.reshape(hidden, [B * T, cfg.hiddenSize])), targets);
    const wrt = [...w.used().values()];
    const seq = [
      [1, 5, 9, 33, 7, 12],
      [1, 20, 3, 3, 0, 0],
    ];
    const pos = Int32Array.from([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, -1, -1]);
    const rows = [0, 1].map((b) => ({ keyPos: pos.slice(b * T, b * T + T), queryPos: pos.slice(b * T, b * T + T) }));
    const tabs = ropeTables(cfg, Array.from(pos, (p) => Math.max(p, 0)));
    const tgt = seq.flatMap((s, b) => s.map((_, t) => (t + 1 < (b ? 4 : 6) ? s[t + 1]! : -100)));
    const feeds: Record<string, Float32Array | BigInt64Array> = {
      ids: BigInt64Array.from(seq.flat().map(BigInt)),
      targets: BigInt64Array.from(tgt.map(BigInt)),
      cos: tabs.cos,
      sin: tabs.sin,
      bias: attentionBias(rows, T, T, null),
    };
    for (const v of wrt) feeds[v.name!] = weights.get(v.name!)!;
    const res = await checkLossGrads(backend, loss, wrt, feeds, { seed: 3, directions: 3 });
    for (const r of res) assert.ok(r.relErr < 2e-3, `analytic ${r.analytic} vs numeric ${r.numeric}`);
  });
}
