import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../model/config.js';
import { loadWeights } from '../../model/weights.js';

const plum = (...args: string[]) => spawnSync(process.execPath, ['bin/plum.js', ...args], { encoding: 'utf8' });

test('bad option values print one line "plum: ..." naming the option and the allowed values, exit 1', () => {
  const cases: Array<[string[], string]> = [
    [['init', '--preset', 'nope', '--out', '/tmp/x'], 'plum: init: option --preset: "nope" is not one of tiny, micro, smollm2-135m, qwen2.5-0.5b\n'],
    [['init', '--arch', 'gpt2', '--out', '/tmp/x'], 'plum: init: option --arch: "gpt2" is not one of llama, qwen2, qwen3\n'],
    [['init', '--seed', '-3', '--out', '/tmp/x'], 'plum: init: option --seed: "-3" is not an integer from 0 to 4294967295\n'],
    [['init', '--preset', 'tiny'], 'plum: init: option --out: is required (the folder to write the model to)\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = plum(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stderr, stderr);
    assert.equal(r.stdout, '');
  }
  assert.ok(!existsSync('/tmp/x/config.json'));
});

test('plum init writes a loadable model folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'plum-cli-init-'));
  try {
    const out = join(root, 'm');
    const r = plum('init', '--arch', 'qwen3', '--preset', 'tiny', '--seed', '5', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*: config\.json, model\.safetensors, generation_config\.json, tokenizer\.json, tokenizer_config\.json\n  qwen3 \(tiny\): hidden 64, 2 layers, 4 heads \(2 kv\), vocab 512; \d+ random parameters, seed 5\n$/);
    const cfg = loadConfig(out);
    assert.equal(cfg.family, 'qwen3');
    assert.ok(loadWeights(out, cfg).has('model.layers.0.self_attn.q_norm.weight'));
    const again = plum('init', '--out', out);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^plum: .*already holds a model \(config\.json\); choose another --out or pass --force to overwrite\n$/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
