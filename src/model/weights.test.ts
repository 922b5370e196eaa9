import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedTensorShapes, loadConfig, parseConfig } from './config.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16, readSafetensors, writeSafetensors, type NamedTensor } from './safetensors.js';
import { INDEX_FILE, loadWeights, saveModelFolder } from './weights.js';

const baseRaw = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 10,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: false,
};

/** Deterministic, distinct values for every tensor of `raw`'s config. */
function fakeWeights(raw: Record<string, unknown>): Map<string, Float32Array> {
  const shapes = expectedTensorShapes(parseConfig(raw));
  let k = 0;
  return new Map([...shapes].map(([n, s]) => [n, Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => Math.sin(++k) * 0.1)]));
}

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-weights-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertSameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [n, v] of a) assert.deepEqual(b.get(n), v, n);
}

test('unsharded save + load round-trips F32 exactly', () => {
  withTmp((dir) => {
    const w = fakeWeights(baseRaw);
    saveModelFolder(dir, baseRaw, w);
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
    const cfg = loadConfig(dir);
    assert.equal(cfg.raw.torch_dtype, 'float32');
    assertSameWeights(w, loadWeights(dir, cfg));
  });
});

test('sharded save + load equals unsharded; re-saving removes stale weight files', () => {
  withTmp((dir) => {
    const w = fakeWeights(baseRaw);
    saveModelFolder(dir, baseRaw, w); // leaves model.safetensors, which the sharded save must remove
    saveModelFolder(dir, baseRaw, w, { maxShardBytes: 1200 });
    const files = readdirSync(dir).sort();
    const shards = files.filter((f) => f.startsWith('model-'));
    assert.ok(shards.length >= 3, files.join(' '));
    assert.deepEqual(files, ['config.json', ...shards, INDEX_FILE]);
    shards.forEach((f, i) => assert.equal(f, `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8'));
    const total = [...w.values()].reduce((a, v) => a + v.length * 4, 0);
    assert.equal(index.metadata.total_size, total);
    assert.deepEqual(Object.keys(index.weight_map), [...w.keys()].sort());
    assert.equal(index.weight_map['model.embed_tokens.weight'], shards[0]);
    assert.equal(index.weight_map['lm_head.weight'], shards.at(-1));
    for (const f of shards) assert.ok(readFileSync(join(dir, f)).length <= 1200 + 1024, `${f} within the limit plus header`);
    assertSameWeights(w, loadWeights(dir, loadConfig(dir)));
    saveModelFolder(dir, baseRaw, w); // back to one file: shards and index go
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  });
});

test('F16 and BF16 saves round values to nearest even and set torch_dtype', () => {
  for (const [dtype, torch, roundTrip] of [
    ['F16', 'float16', (v: Float32Array) => decodeF16(encodeF16(v))],
    ['BF16', 'bfloat16', (v: Float32Array) => decodeBf16(encodeBf16(v))],
  ] as const) {
    withTmp((dir) => {
      const w = fakeWeights(baseRaw);
      saveModelFolder(dir, baseRaw, w, { dtype });
      const cfg = loadConfig(dir);
      assert.equal(cfg.raw.torch_dtype, torch);
      assert.equal(readSafetensors(join(dir, 'model.safetensors')).tensors.get('model.norm.weight')!.dtype, dtype);
      const back = loadWeights(dir, cfg);
      for (const [n, v] of w) assert.deepEqual(back.get(n), roundTrip(v), n);
    });
  }
});

/** Save the base model, then rewrite model.safetensors through `edit`. */
function withEditedModel(edit: (t: Map<string, NamedTensor>) => void, fn: (dir: string, file: string) => void): void {
  withTmp((dir) => {
    saveModelFolder(dir, baseRaw, fakeWeights(baseRaw));
    const file = join(dir, 'model.safetensors');
    const { tensors } = readSafetensors(file);
    edit(tensors);
    writeSafetensors(file, tensors);
    fn(dir, file);
  });
}

test('shape mismatch names the file, tensor, both shapes and the config fields', () => {
  withTmp((dir) => {
    saveModelFolder(dir, baseRaw, fakeWeights(baseRaw));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...baseRaw, head_dim: 8 }));
    assert.throws(() => loadWeights(dir, loadConfig(dir)), {
      name: 'PlumError',
      message: `${join(dir, 'model.safetensors')}: tensor model.layers.0.self_attn.q_proj.weight has shape [8,8] but config.json implies [16,8] (hidden_size/num_attention_heads/head_dim disagree with the weights)`,
    });
  });
});

test('missing tensors fail naming the tensor and the file, with a hint', () => {
  withEditedModel((t) => t.delete('model.layers.1.mlp.up_proj.weight'), (dir, file) => {
    assert.throws(() => loadWeights(dir, loadConfig(dir)), {
      message: `${file}: tensor model.layers.1.mlp.up_proj.weight (shape [12,8]) is missing; the checkpoint is incomplete or does not belong to this config.json`,
    });
  });
  withEditedModel((t) => t.delete('lm_head.weight'), (dir, file) => {
    assert.throws(() => loadWeights(dir, loadConfig(dir)), {
      message: `${file}: tensor lm_head.weight is missing but config.json has tie_word_embeddings=false; set "tie_word_embeddings": true if the output layer shares model.embed_tokens.weight`,
    });
  });
  withEditedModel(() => {}, (dir, file) => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...baseRaw, architectures: ['Qwen2ForCausalLM'] }));
    assert.throws(() => loadWeights(dir, loadConfig(dir)), {
      message: `${file}: tensor model.layers.0.self_attn.q_proj.bias (shape [8]) is missing; config.json implies attention biases (qwen2 family or attention_bias=true); check architectures and attention_bias`,
    });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...baseRaw, num_hidden_layers: 3 }));
    assert.throws(() => loadWeights(dir, loadConfig(dir)), { message: /model\.layers\.2\.input_layernorm\.weight \(shape \[8\]\) is missing; config.json has num_hidden_layers=3 but the weights have no layer 2$/ });
  });
});

test('extra tensors: inv_freq and a tied lm_head are ignored, anything else fails', () => {
  const inv = (t: Map<string, NamedTensor>): void => {
    t.set('model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
  };
  withEditedModel(inv, (dir) => {
    const cfg = loadConfig(dir);
    assert.equal(loadWeights(dir, cfg).size, expectedTensorShapes(cfg).size);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...baseRaw, tie_word_embeddings: true }));
    const tied = loadWeights(dir, loadConfig(dir));
    assert.ok(!tied.has('lm_head.weight'));
  });
  withEditedModel((t) => t.set('foo.bar', { dtype: 'F32', shape: [1], data: new Float32Array(1) }), (dir, file) => {
    assert.throws(() => loadWeights(dir, loadConfig(dir)), {
      message: `${file}: unexpected tensors foo.bar that config.json does not describe; check architectures, attention_bias and num_hidden_layers in config.json`,
    });
  });
});

test('folders without weights, and indexes naming absent shards, fail clearly', () => {
  withTmp((dir) => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(baseRaw));
    assert.throws(() => loadWeights(dir, loadConfig(dir)), { message: `${dir}: no model.safetensors or model.safetensors.index.json; this folder holds no safetensors weights` });
    saveModelFolder(dir, baseRaw, fakeWeights(baseRaw), { maxShardBytes: 1200 });
    const shard = readdirSync(dir).filter((f) => f.startsWith('model-'))[1]!;
    rmSync(join(dir, shard));
    assert.throws(() => loadWeights(dir, loadConfig(dir)), { message: new RegExp(`^${join(dir, INDEX_FILE)}: weight_map lists shard ${shard} \\(for tensor .*\\) but .* does not exist; the download is incomplete$`) });
  });
});
