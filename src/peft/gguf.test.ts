/**
 * LoRA adapters as llama.cpp GGUF LoRA: applied the way llama.cpp applies them (W + alpha / r *
 * B A on the GGUF's own tensors), they give the GGUF of the merged model, q/k rows included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { GGML_TYPES, readGguf, readGgufTensor, writeGguf } from '../model/gguf.js';
import { exportGguf } from '../model/gguf-export.js';
import { loadModel } from '../model/load.js';
import { saveModelFolder } from '../model/weights.js';
import { OrtBackend } from '../runtime/ort.js';
import { REPO_ROOT } from '../testing/shared.js';
import { baseModelOf } from './base.js';
import { exportLoraGguf } from './gguf.js';
import { mergeLora } from './lora.js';
import { createAdapter } from './registry.js';
import { loadAdapter, saveAdapter } from './io.js';
import type { MethodConfig } from './types.js';

const backend = new OrtBackend({ threads: 1 });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const plum = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), ...args], { encoding: 'utf8' });

for (const arch of ['llama', 'qwen2'] as const) {
  test(`GGUF LoRA (${arch}): base + alpha/r * lora_b lora_a equals the merged model's GGUF, with rank/alpha patterns and rsLoRA folded`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plum-lora-gguf-'));
    assert.equal(plum('init', '--arch', arch, '--preset', 'tiny', '--seed', '2', '--out', join(dir, 'base')).status, 0);
    const m = loadModel(join(dir, 'base'), backend);
    const base = baseModelOf(m);
    const config: MethodConfig = { kind: 'lora', r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'], rslora: true, rankPattern: { k_proj: 2 }, alphaPattern: { down_proj: 3 } };
    const a = await createAdapter(config, base, 5);
    let k = 0;
    for (const p of a.params) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.02 * Math.sin(++k);
    exportLoraGguf(a, base, join(dir, 'lora.gguf'));
    exportGguf({ model: join(dir, 'base'), out: join(dir, 'base.gguf'), type: 'f32' });
    saveModelFolder(join(dir, 'merged'), m.cfg.raw, mergeLora(base, a));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) spawnSync('cp', [join(dir, 'base', f), join(dir, 'merged', f)]);
    exportGguf({ model: join(dir, 'merged'), out: join(dir, 'merged.gguf'), type: 'f32' });
    const lora = readGguf(join(dir, 'lora.gguf'));
    assert.equal(lora.metadata.get('general.type'), 'adapter');
    assert.equal(lora.metadata.get('adapter.type'), 'lora');
    assert.equal(lora.metadata.get('general.architecture'), arch);
    const alpha = lora.metadata.get('adapter.lora.alpha') as number;
    const [bg, mg] = [readGguf(join(dir, 'base.gguf')), readGguf(join(dir, 'merged.gguf'))];
    let checked = 0;
    for (const name of bg.tensors.keys()) {
      const W = readGgufTensor(bg, name);
      const want = readGgufTensor(mg, name);
      if (!lora.tensors.has(`${name}.lora_a`)) {
        assert.deepEqual(W, want, `${name} is not adapted`);
        continue;
      }
      const A = readGgufTensor(lora, `${name}.lora_a`);
      const B = readGgufTensor(lora, `${name}.lora_b`);
      const [r, inF] = lora.tensors.get(`${name}.lora_a`)!.shape as [number, number];
      const out = lora.tensors.get(`${name}.lora_b`)!.shape[0]!;
      assert.equal(lora.tensors.get(`${name}.lora_b`)!.shape[1], r);
      let maxErr = 0;
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inF; i++) {
          let d = 0;
          for (let j = 0; j < r; j++) d += B[o * r + j]! * A[j * inF + i]!;
          maxErr = Math.max(maxErr, Math.abs(W[o * inF + i]! + (alpha / r) * d - want[o * inF + i]!));
        }
      assert.ok(maxErr < 1e-5, `${name}: ${maxErr}`);
      checked++;
    }
    assert.equal(checked, 4 * m.cfg.numLayers);
  });
}

test('export gguf --adapter: a LoRA run as llama.cpp --lora; DoRA refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-lora-gguf-cli-'));
  assert.equal(plum('init', '--arch', 'llama', '--preset', 'tiny', '--seed', '2', '--out', join(dir, 'base')).status, 0);
  const m = loadModel(join(dir, 'base'), backend);
  const lora = await createAdapter({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], rslora: false }, baseModelOf(m), 1);
  saveAdapter(join(dir, 'lora'), lora, baseModelOf(m), join(dir, 'base'));
  let r = plum('export', 'gguf', '--model', join(dir, 'base'), '--adapter', join(dir, 'lora'), '--out', join(dir, 'lora.gguf'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*lora\.gguf: LoRA for .*, \d+ modules, \d+ tensors \(f16\); llama\.cpp: --model <base>\.gguf --lora/);
  const dora = await createAdapter({ kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], rslora: false, dora: true }, baseModelOf(m), 1);
  saveAdapter(join(dir, 'dora'), dora, baseModelOf(m), join(dir, 'base'));
  r = plum('export', 'gguf', '--model', join(dir, 'base'), '--adapter', join(dir, 'dora'), '--out', join(dir, 'dora.gguf'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /export gguf --adapter: DoRA has no llama\.cpp GGUF LoRA form; merge it/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

for (const arch of ['llama', 'qwen3'] as const) {
  test(`GGUF LoRA -> PEFT adapter (${arch}): plum convert gguf-lora gives the adapter's logits back (ranks, scales, q/k rows)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plum-lora-gguf-in-'));
    assert.equal(plum('init', '--arch', arch, '--preset', 'tiny', '--seed', '4', '--out', join(dir, 'base')).status, 0);
    const m = loadModel(join(dir, 'base'), backend);
    const base = baseModelOf(m);
    const a = await createAdapter({ kind: 'lora', r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'k_proj', 'o_proj', 'up_proj'], rslora: true, rankPattern: { o_proj: 2 }, alphaPattern: { up_proj: 2 } }, base, 6);
    let k = 0;
    for (const p of a.params) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.03 * Math.cos(++k);
    exportLoraGguf(a, base, join(dir, 'lora.gguf'), 'f32');
    const r = plum('convert', 'gguf-lora', '--model', join(dir, 'base'), '--lora', join(dir, 'lora.gguf'), '--out', join(dir, 'peft'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*peft: PEFT LoRA, r 4, alpha 8, \d+ modules/);
    const back = loadAdapter(join(dir, 'peft'), base);
    const ids = m.tokenizer.encode('Once upon a time there was a model.');
    const [l0, l1, l2] = [await m.lm.logits(ids), await m.lm.logits(ids, a), await m.lm.logits(ids, back)];
    for (let t = 0; t < ids.length; t++) assert.ok(maxDiff(l1[t]!, l2[t]!) < 1e-5, `position ${t}: ${maxDiff(l1[t]!, l2[t]!)}`);
    assert.ok(maxDiff(l0[ids.length - 1]!, l1[ids.length - 1]!) > 1e-3, 'the adapter changes the logits');
    const bad = plum('convert', 'gguf-lora', '--model', join(dir, 'base'), '--lora', join(dir, 'base', 'config.json'), '--out', join(dir, 'x'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /config\.json: not a GGUF file/);
  });
}

test('a LoRA on lm_head: exported as output.weight\'s LoRA for an untied model and read back by convert gguf-lora; refused by name for a tied one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-lora-gguf-head-'));
  assert.equal(plum('init', '--arch', 'llama', '--preset', 'tiny', '--seed', '3', '--out', join(dir, 'tied')).status, 0);
  const tied = loadModel(join(dir, 'tied'), backend);
  const headLora: MethodConfig = { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'lm_head'], rslora: false };
  const t = await createAdapter(headLora, baseModelOf(tied), 1);
  saveAdapter(join(dir, 'tied-lora'), t, baseModelOf(tied), join(dir, 'tied'));
  const refused = plum('export', 'gguf', '--model', join(dir, 'tied'), '--adapter', join(dir, 'tied-lora'), '--out', join(dir, 'x.gguf'));
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /export gguf --adapter: a LoRA on the tied lm_head has no llama\.cpp GGUF LoRA form .* merge it/);
  // the same model untied: a head of its own
  const weights = new Map(tied.lm.weights);
  weights.set('lm_head.weight', weights.get('model.embed_tokens.weight')!.map((x, i) => x + 0.01 * Math.sin(i)));
  saveModelFolder(join(dir, 'untied'), { ...tied.cfg.raw, tie_word_embeddings: false }, weights);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) spawnSync('cp', [join(dir, 'tied', f), join(dir, 'untied', f)]);
  const m = loadModel(join(dir, 'untied'), backend);
  const base = baseModelOf(m);
  const a = await createAdapter(headLora, base, 2);
  let k = 0;
  for (const p of a.params) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.03 * Math.cos(++k);
  exportLoraGguf(a, base, join(dir, 'lora.gguf'), 'f32');
  const g = readGguf(join(dir, 'lora.gguf'));
  assert.deepEqual(g.tensors.get('output.weight.lora_a')!.shape, [2, m.cfg.hiddenSize]);
  assert.deepEqual(g.tensors.get('output.weight.lora_b')!.shape, [m.cfg.vocabSize, 2]);
  const r = plum('convert', 'gguf-lora', '--model', join(dir, 'untied'), '--lora', join(dir, 'lora.gguf'), '--out', join(dir, 'peft'));
  assert.equal(r.status, 0, r.stderr);
  const back = loadAdapter(join(dir, 'peft'), base);
  const ids = m.tokenizer.encode('Once upon a time');
  const [l1, l2] = [await m.lm.logits(ids, a), await m.lm.logits(ids, back)];
  for (let i = 0; i < ids.length; i++) assert.ok(maxDiff(l1[i]!, l2[i]!) < 1e-5, `position ${i}: ${maxDiff(l1[i]!, l2[i]!)}`);
  // a token-embedding LoRA in a GGUF is refused by name, not dropped
  const withEmbd = new Map([...g.tensors.keys()].map((n) => [n, { shape: g.tensors.get(n)!.shape, type: GGML_TYPES.F32, data: readGgufTensor(g, n) }]));
  withEmbd.set('token_embd.weight.lora_a', { shape: [2, m.cfg.vocabSize], type: GGML_TYPES.F32, data: new Float32Array(2 * m.cfg.vocabSize) });
  withEmbd.set('token_embd.weight.lora_b', { shape: [m.cfg.hiddenSize, 2], type: GGML_TYPES.F32, data: new Float32Array(2 * m.cfg.hiddenSize) });
  writeGguf(join(dir, 'embd.gguf'), g.metadata, withEmbd);
  const embd = plum('convert', 'gguf-lora', '--model', join(dir, 'untied'), '--lora', join(dir, 'embd.gguf'), '--out', join(dir, 'peft2'));
  assert.equal(embd.status, 1);
  assert.match(embd.stderr, /embd\.gguf: a LoRA on model\.embed_tokens, which convert gguf-lora does not read/);
  assert.equal(embd.stderr.trim().split('\n').length, 1);
});
