import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { initModel } from '../model/init.js';
import { readMetrics } from '../util/metrics.js';
import { readSafetensors } from '../model/safetensors.js';
import { runSftCommand } from '../cli/commands/train.js';
import { REPO_ROOT } from '../testing/shared.js';
import { loadModel } from '../model/load.js';
import { loadSftDataset } from '../data/dataset.js';
import { packLength, packRows, packSegments } from '../data/batches.js';
import { makeAdapter } from './session.js';
import type { MethodConfig } from '../peft/types.js';
import { sftObjective } from './sft.js';
import { trainLoop, trainables } from './loop.js';

const tmp = mkdtempSync(join(tmpdir(), 'plum-sft-'));
const model = join(tmp, 'model');
initModel({ preset: 'tiny', arch: 'llama', seed: 3, out: model });
const data = join(tmp, 'data.jsonl');
writeFileSync(
  data,
  Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({ messages: [{ role: 'user', content: `say ${i}` }, { role: 'assistant', content: `number ${i} ${'x'.repeat(i % 4)}` }] }),
  ).join('\n') + '\n',
);

const base = { model, data, batchSize: '4', lr: '0.01', seed: '5', quiet: true, exactMatch: '0' };

for (const [label, extra] of [['', {}], [', modules_to_save lm_head', { modulesToSave: 'lm_head' }]] as const) {
  test(`resume: interrupted at step 3 and resumed equals an uninterrupted run (loss to 1e-6, identical adapter${label})`, async () => {
    const opts = { ...base, method: 'lora', r: '4', dropout: '0.1', epochs: '3', saveEvery: '2', ...extra };
    const a = join(tmp, `a${label ? '-mts' : ''}`);
    const b = join(tmp, `b${label ? '-mts' : ''}`);
    await runSftCommand({ ...opts, out: a });
    await runSftCommand({ ...opts, out: b, interruptAfter: '3' });
    assert.ok(!existsSync(join(b, 'adapter_config.json')), 'an interrupted run has no final adapter');
    await runSftCommand({ ...opts, out: b, resume: true });
    const la = readMetrics(join(a, 'metrics.jsonl')).filter((r) => r.loss !== undefined);
    const lb = readMetrics(join(b, 'metrics.jsonl')).filter((r) => r.loss !== undefined);
    assert.equal(la.length, 9);
    assert.deepEqual(lb.map((r) => r.step), la.map((r) => r.step));
    la.forEach((r, i) => assert.ok(Math.abs((r.loss as number) - (lb[i]!.loss as number)) < 1e-6, `step ${r.step}`));
    const ta = readSafetensors(join(a, 'adapter_model.safetensors')).tensors;
    const tb = readSafetensors(join(b, 'adapter_model.safetensors')).tensors;
    for (const [k, v] of ta) assert.deepEqual(v.data, tb.get(k)!.data, k);
    // A run changes the adapter; the loss goes down.
    assert.ok((la.at(-1)!.loss as number) < (la[0]!.loss as number));
  });
}

test('resume refuses a checkpoint made with other options, naming the option', async () => {
  const out = join(tmp, 'c');
  await runSftCommand({ ...base, method: 'soft-prompt', virtualTokens: '4', maxSteps: '2', out, interruptAfter: '1' });
  await assert.rejects(runSftCommand({ ...base, method: 'soft-prompt', virtualTokens: '4', maxSteps: '2', out, resume: true, lr: '0.02' }), /different lr \(0\.01, now 0\.02\)/);
});

test('--recompute is a memory setting: a run interrupted with attention recomputed resumes with whole layers recomputed, to the same losses', async () => {
  const opts = { ...base, method: 'lora', r: '4', epochs: '2', saveEvery: '1' };
  const [a, b] = [join(tmp, 'rc-a'), join(tmp, 'rc-b')];
  await runSftCommand({ ...opts, out: a, recompute: 'none' });
  await runSftCommand({ ...opts, out: b, interruptAfter: '3' });
  await runSftCommand({ ...opts, out: b, resume: true, recompute: 'layers' });
  const [la, lb] = [a, b].map((d) => readMetrics(join(d, 'metrics.jsonl')).filter((r) => r.loss !== undefined));
  assert.deepEqual(lb!.map((r) => r.step), la!.map((r) => r.step));
  la!.forEach((r, i) => assert.ok(Math.abs((r.loss as number) - (lb![i]!.loss as number)) < 1e-5, `step ${r.step}: ${r.loss} vs ${lb![i]!.loss}`));
  await assert.rejects(runSftCommand({ ...opts, out: join(tmp, 'rc-c'), recompute: 'everything' }), /--recompute: Invalid option: expected one of "none"\|"attention"\|"layers"/);
});

test('only the trainable tensors change (frozen base weights stay bit-identical)', async () => {
  const methods: MethodConfig[] = [
    { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], rslora: false },
    { kind: 'last-layers', layers: 1, includeHead: false },
  ];
  for (const method of methods) {
    const m = loadModel(model);
    const before = new Map([...m.lm.weights].map(([k, v]) => [k, v.slice()]));
    const adapter = await makeAdapter(m, method, 1);
    const adapterBefore = adapter.params.map((p) => p.data.slice());
    const ds = loadSftDataset(data, m.tokenizer);
    const objective = sftObjective(m, adapter, ds.examples, [], { batchSize: 4, seed: 0, lengthBuckets: false, exactMatchLimit: 0 });
    const out = join(tmp, `frozen-${method.kind}`);
    await trainLoop(trainables(adapter, m.lm.weights), objective, {
      epochs: 1, maxSteps: 2, gradAccum: 1, lr: 0.01, warmup: 0, schedule: 'constant', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8,
      maxGradNorm: 1, evalEvery: 0, saveEvery: 0, patience: 0, outDir: out, resume: false, label: 't', fingerprint: {}, quiet: true,
    });
    const trainable = new Set(adapter.baseTrainable);
    for (const [k, v] of m.lm.weights) {
      if (trainable.has(k)) assert.notDeepEqual(v, before.get(k), `${k} should train`);
      else assert.deepEqual(v, before.get(k), `${k} must stay frozen`);
    }
    adapter.params.forEach((p, i) => assert.notDeepEqual(p.data, adapterBefore[i], `${p.name} should train`));
    assert.equal(trainable.size, method.kind === 'lora' ? 0 : 9); // last layer of 'tiny': 9 tensors
  }
});

test('SFT batches pad to row lengths fitted to the training and held-out data, not to powers of two', async () => {
  const m = loadModel(model);
  const adapter = await makeAdapter(m, { kind: 'soft-prompt', virtualTokens: 2, init: 'random' }, 1);
  const ex = (n: number, i: number) => ({ ids: Array.from({ length: n }, (_, t) => 1 + ((t + i) % 50)), labels: Array.from({ length: n }, (_, t) => (t < 3 ? -100 : 1 + ((t + i) % 50))), source: { file: 'mem', line: i + 1 } });
  // 33-40 tokens would pad to 64 as powers of two; a held-out example of 45 sets the longest length
  const train = [33, 35, 38, 40].map(ex);
  const objective = sftObjective(m, adapter, train, [ex(45, 9)], { batchSize: 2, seed: 0, lengthBuckets: true, exactMatchLimit: 0 });
  const Ts = objective.batches(0).map((b) => b.T);
  assert.deepEqual(Ts, [48, 48], `row lengths ${Ts}: one fitted length (the longest, 45, rounded up to 16)`);
});

test('gradient accumulation: 2 micro-batches of 2 rows make the same step as one batch of 4', async () => {
  const method: MethodConfig = { kind: 'soft-prompt', virtualTokens: 3, init: 'random' };
  const run = async (batchSize: number, gradAccum: number) => {
    const m = loadModel(model);
    const adapter = await makeAdapter(m, method, 1);
    const ds = loadSftDataset(data, m.tokenizer);
    const objective = sftObjective(m, adapter, ds.examples, [], { batchSize, seed: 0, lengthBuckets: false, exactMatchLimit: 0 });
    // eps 1 makes Adam's first step about lr * g (not lr * sign(g)), so a wrong sum shows.
    const res = await trainLoop(trainables(adapter, m.lm.weights), objective, {
      epochs: 1, maxSteps: 2, gradAccum, lr: 0.1, warmup: 0, schedule: 'constant', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1,
      maxGradNorm: 0, evalEvery: 0, saveEvery: 0, patience: 0, outDir: join(tmp, `accum-${batchSize}-${gradAccum}`), resume: false, label: 't', fingerprint: {}, quiet: true,
    });
    const norms = readFileSync(join(tmp, `accum-${batchSize}-${gradAccum}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).grad_norm as number);
    return { losses: res.losses, norms, params: adapter.params[0]!.data.slice(), init: (await makeAdapter(m, method, 1)).params[0]!.data };
  };
  const one = await run(4, 1);
  const two = await run(2, 2);
  one.losses.forEach((l, i) => assert.ok(Math.abs(l - two.losses[i]!) < 1e-5, `step ${i + 1}: loss ${l} vs ${two.losses[i]}`));
  // one micro-batch: the norm from the graph's grad_sumsq; two: a pass over the summed gradients
  assert.equal(one.norms.length, 2);
  one.norms.forEach((n, i) => assert.ok(n > 0 && Math.abs(n - two.norms[i]!) < 1e-5 * n, `step ${i + 1}: grad_norm ${n} vs ${two.norms[i]}`));
  let moved = 0;
  one.params.forEach((x, i) => {
    assert.ok(Math.abs(x - two.params[i]!) < 1e-6, `param ${i}: ${x} vs ${two.params[i]}`);
    moved = Math.max(moved, Math.abs(x - one.init[i]!));
  });
  assert.ok(moved > 1e-4, 'the steps changed the soft prompt');
});

test('packed rows: the same loss and gradients as one example per row (attention and positions stay within each example)', async () => {
  const m = loadModel(model);
  const ds = loadSftDataset(data, m.tokenizer);
  const ex = ds.examples.slice(0, 6);
  for (const method of [{ kind: 'full' }, { kind: 'lora', r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'], rslora: false }] as MethodConfig[]) {
    const adapter = await makeAdapter(m, method, 1);
    const objective = sftObjective(m, adapter, ex, [], { batchSize: 6, seed: 0, lengthBuckets: false, exactMatchLimit: 0 });
    const T = packLength(ex) * 4;
    const one = await objective.step(packRows(ex, 0), 1);
    const packed = await objective.step(packSegments([ex.slice(0, 4), ex.slice(4)], T, 0), 1);
    assert.equal(packed.tokens, one.tokens);
    assert.ok(Math.abs(packed.lossSum - one.lossSum) < 1e-4 * Math.abs(one.lossSum), `${method.kind}: loss ${packed.lossSum} vs ${one.lossSum}`);
    assert.ok(one.grads.size > 0);
    for (const [k, g] of one.grads) {
      const p = packed.grads.get(k)!;
      let [diff, norm] = [0, 0];
      g.forEach((x, i) => {
        diff = Math.max(diff, Math.abs(x - p[i]!));
        norm = Math.max(norm, Math.abs(x));
      });
      assert.ok(diff <= 1e-4 * norm + 1e-7, `${method.kind} ${k}: max diff ${diff} (max |g| ${norm})`);
    }
  }
});

test('--pack: refused for soft prompts and prefixes, naming the reason; --pack-length must hold the longest example', async () => {
  await assert.rejects(runSftCommand({ ...base, method: 'soft-prompt', pack: true, out: join(tmp, 'pack-sp') }), /--pack does not work with --method soft-prompt \(its virtual tokens are per sequence\)/);
  await assert.rejects(runSftCommand({ ...base, method: 'lora', pack: true, packLength: '4', out: join(tmp, 'pack-short') }), /--pack-length 4 is shorter than the longest example \(\d+ tokens\)/);
  await assert.rejects(runSftCommand({ ...base, method: 'lora', packLength: '64', out: join(tmp, 'pack-no') }), /--pack-length needs --pack/);
});

const cli = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/plum.js'), ...args], { encoding: 'utf8' });

for (const [name, content, message] of [
  ['malformed JSON line', '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{"messages": [\n', /bad\.jsonl:2: .*JSON/],
  ['missing assistant turn', '{"messages": [{"role": "user", "content": "hi"}]}\n', /bad\.jsonl:1: .*assistant/],
  ['empty file', '', /bad\.jsonl.*empty/],
  ['wrong field type', '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 5}]}\n', /bad\.jsonl:1: messages\[1\]\.content/],
] as const) {
  test(`bad data (${name}): one-line error naming the line and field, exit 1, output untouched`, () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, content);
    const out = join(tmp, `out-${name.replace(/\W/g, '')}`);
    const r = cli(['train', 'sft', '--model', model, '--data', bad, '--method', 'lora', '--out', out, '--quiet']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.ok(!existsSync(out), 'nothing written');
  });
}

test('an option that does not apply to the method is an error naming it', () => {
  const r = cli(['train', 'sft', '--model', model, '--data', data, '--method', 'soft-prompt', '--r', '8', '--out', join(tmp, 'x')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--r does not apply to --method soft-prompt \(it is an option of lora\)/);
  const r2 = cli(['train', 'sft', '--model', model, '--data', data, '--method', 'dora', '--out', join(tmp, 'x')]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /--method: .*soft-prompt/);
});

test('options from a YAML config file; unknown keys are named', async () => {
  const cfg = join(tmp, 'run.yaml');
  writeFileSync(cfg, `model: ${model}\ndata: ${data}\nmethod: soft-prompt\nvirtualTokens: 2\nmaxSteps: 1\nquiet: true\nexactMatch: 0\n`);
  const out = join(tmp, 'yaml-out');
  await runSftCommand({ config: cfg, out });
  assert.ok(existsSync(join(out, 'adapter_config.json')));
  writeFileSync(cfg, `model: ${model}\ndata: ${data}\nmethod: lora\nbogus: 1\n`);
  await assert.rejects(runSftCommand({ config: cfg, out: join(tmp, 'y2') }), /unknown option "bogus"/);
});

test('plum score and plum generate take --adapter (the trained adapter changes the log-probabilities)', () => {
  const out = join(tmp, 'a'); // trained by the resume test above
  const ids = '1,40,41,42,43';
  const base = JSON.parse(cli(['score', '--model', model, '--ids', ids, '--json']).stdout);
  const tuned = JSON.parse(cli(['score', '--model', model, '--ids', ids, '--json', '--adapter', out]).stdout);
  assert.equal(base.logprobs.length, 4);
  assert.notDeepEqual(base.logprobs, tuned.logprobs);
  const g = cli(['generate', '--model', model, '--adapter', out, '--prompt', 'say 3', '--chat', '--max-tokens', '5', '--temperature', '0']);
  assert.equal(g.status, 0, g.stderr);
  const bad = cli(['score', '--model', model, '--ids', ids, '--adapter', join(tmp, 'nope')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /nope: adapter folder not found/);
});
