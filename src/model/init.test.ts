import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadConfig } from './config.js';
import { loadWeights } from './weights.js';
import { initModel } from './init.js';
import { ARCH_NAMES } from './presets.js';

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-init-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function meanStd(a: Float32Array): [number, number] {
  let s = 0;
  let s2 = 0;
  for (const x of a) {
    s += x;
    s2 += x * x;
  }
  const m = s / a.length;
  return [m, Math.sqrt(s2 / a.length - m * m)];
}

test('tiny init folders load with loadConfig + loadWeights for every arch', () => {
  for (const arch of ARCH_NAMES) {
    withTmp((root) => {
      const out = join(root, 'model');
      const res = initModel({ arch, preset: 'tiny', seed: 7, out });
      assert.deepEqual(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      const cfg = loadConfig(out);
      assert.equal(cfg.family, arch);
      assert.equal(cfg.raw.torch_dtype, 'float32');
      const w = loadWeights(out, cfg);
      assert.equal([...w.values()].reduce((a, v) => a + v.length, 0), res.numParams);
      assert.equal(w.has('model.layers.0.self_attn.q_proj.bias'), arch === 'qwen2');
      assert.equal(w.has('model.layers.1.self_attn.k_norm.weight'), arch === 'qwen3');
      assert.ok(w.get('model.norm.weight')!.every((x) => x === 1));
      if (arch === 'qwen3') assert.ok(w.get('model.layers.0.self_attn.q_norm.weight')!.every((x) => x === 1));
      const [mean, std] = meanStd(w.get('model.embed_tokens.weight')!); // 32768 samples of normal(0, 0.02)
      assert.ok(Math.abs(mean) < 0.0005, `mean ${mean}`);
      assert.ok(Math.abs(std - 0.02) < 0.0005, `std ${std}`);
      if (arch === 'qwen2') {
        const [, bstd] = meanStd(w.get('model.layers.0.self_attn.q_proj.bias')!);
        assert.ok(bstd > 0.01 && bstd < 0.03, `bias std ${bstd}`);
      }
      const gen = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'));
      assert.deepEqual(gen, { bos_token_id: 282, eos_token_id: [284, 282], pad_token_id: 282, do_sample: false });
    });
  }
});

test('the written tokenizer loads and its special ids match config.json', () => {
  withTmp((root) => {
    const out = join(root, 'm');
    initModel({ preset: 'tiny', seed: 1, out });
    const read = (f: string): object => JSON.parse(readFileSync(join(out, f), 'utf8'));
    const tok = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
    const cfg = loadConfig(out);
    assert.equal(tok.token_to_id('<|endoftext|>'), cfg.bosTokenId);
    assert.equal(tok.token_to_id('<|im_end|>'), cfg.eosTokenIds[0]);
    assert.ok(tok.get_vocab(true).size <= cfg.vocabSize);
    const text = 'Once upon a time, a 🐱 sat.';
    assert.equal(tok.decode(tok.encode(text).ids), text);
  });
});

test('same seed gives identical bytes; a different seed gives different weights', () => {
  withTmp((root) => {
    initModel({ arch: 'qwen2', preset: 'tiny', seed: 42, out: join(root, 'a') });
    initModel({ arch: 'qwen2', preset: 'tiny', seed: 42, out: join(root, 'b') });
    initModel({ arch: 'qwen2', preset: 'tiny', seed: 43, out: join(root, 'c') });
    for (const f of readdirSync(join(root, 'a'))) {
      assert.ok(readFileSync(join(root, 'a', f)).equals(readFileSync(join(root, 'b', f))), `${f} differs for the same seed`);
    }
    assert.ok(!readFileSync(join(root, 'a', 'model.safetensors')).equals(readFileSync(join(root, 'c', 'model.safetensors'))));
    assert.ok(readFileSync(join(root, 'a', 'config.json')).equals(readFileSync(join(root, 'c', 'config.json'))));
  });
});

test('init refuses to overwrite a model folder, and rejects bad seeds', () => {
  withTmp((root) => {
    const out = join(root, 'm');
    initModel({ preset: 'tiny', seed: 1, out });
    assert.throws(() => initModel({ preset: 'tiny', seed: 2, out }), {
      name: 'PlumError',
      message: `${out}: already holds a model (config.json); choose another --out or pass --force to overwrite`,
    });
    initModel({ preset: 'tiny', seed: 2, out, force: true });
    assert.equal(loadConfig(out).family, 'llama');
    assert.throws(() => initModel({ preset: 'tiny', seed: -1, out: join(root, 'n') }), { message: '--seed: -1 is not an integer from 0 to 4294967295' });
  });
});
