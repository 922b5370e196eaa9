import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectedTensorShapes, parseConfig } from './config.js';
import { buildByteLevelTokenizer } from './bytelevel-tokenizer.js';
import { ARCH_NAMES, PRESET_NAMES, presetConfig } from './presets.js';

const tokens = { bos: 282, eos: [284, 282], pad: 282 };
const paramCount = (raw: Record<string, unknown>): number =>
  [...expectedTensorShapes(parseConfig(raw)).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);

test('published presets reproduce the real parameter counts', () => {
  assert.equal(paramCount(presetConfig('smollm2-135m', undefined, tokens, 285)), 134_515_008); // SmolLM2-135M
  assert.equal(paramCount(presetConfig('qwen2.5-0.5b', undefined, tokens, 285)), 494_032_768); // Qwen2.5-0.5B
});

test('smollm2-135m and qwen2.5-0.5b carry the published hyperparameters', () => {
  const smol = parseConfig(presetConfig('smollm2-135m', undefined, tokens, 285));
  assert.deepEqual(
    [smol.family, smol.hiddenSize, smol.intermediateSize, smol.numLayers, smol.numHeads, smol.numKvHeads, smol.headDim, smol.vocabSize, smol.rmsNormEps, smol.ropeTheta, smol.tieWordEmbeddings, smol.maxPositionEmbeddings],
    ['llama', 576, 1536, 30, 9, 3, 64, 49152, 1e-5, 100000, true, 8192],
  );
  const qwen = parseConfig(presetConfig('qwen2.5-0.5b', undefined, tokens, 285));
  assert.deepEqual(
    [qwen.family, qwen.qkvBias, qwen.hiddenSize, qwen.intermediateSize, qwen.numLayers, qwen.numHeads, qwen.numKvHeads, qwen.headDim, qwen.vocabSize, qwen.rmsNormEps, qwen.ropeTheta, qwen.tieWordEmbeddings, qwen.maxPositionEmbeddings, qwen.slidingWindow],
    ['qwen2', true, 896, 4864, 24, 14, 2, 64, 151936, 1e-6, 1000000, true, 32768, null],
  );
});

test('--arch selects architectures, model_type and traits for every preset', () => {
  const expect = {
    llama: ['LlamaForCausalLM', 'llama', false, false],
    qwen2: ['Qwen2ForCausalLM', 'qwen2', true, false],
    qwen3: ['Qwen3ForCausalLM', 'qwen3', false, true],
  } as const;
  for (const preset of PRESET_NAMES) {
    for (const arch of ARCH_NAMES) {
      const raw = presetConfig(preset, arch, tokens, 285);
      const cfg = parseConfig(raw);
      assert.deepEqual([(raw.architectures as string[])[0], raw.model_type, cfg.qkvBias, cfg.qkNorm], [...expect[arch]], `${preset} ${arch}`);
      assert.equal(cfg.oBias, false);
      if (arch === 'qwen3') assert.equal(raw.head_dim, cfg.hiddenSize / cfg.numHeads);
      assert.deepEqual([cfg.bosTokenId, cfg.eosTokenIds, cfg.padTokenId], [282, [284, 282], 282]);
    }
  }
});

test('the tiny vocabulary holds the byte-level tokenizer; a too-small vocabulary fails', () => {
  const tok = buildByteLevelTokenizer();
  const tiny = parseConfig(presetConfig('tiny', undefined, tokens, tok.size));
  assert.equal(tiny.vocabSize, 512);
  assert.ok(tok.size <= 512 && tok.size > 256);
  assert.throws(() => presetConfig('tiny', undefined, tokens, 600), { name: 'PlumError', message: "preset tiny: vocab_size 512 is smaller than the tokenizer's 600 tokens" });
});
