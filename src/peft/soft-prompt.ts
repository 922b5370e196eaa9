/**
 * Prompt tuning ("training the input layer"): N trainable virtual-token embeddings [N, C]
 * placed before the input embeddings. Saved by PEFT as `prompt_embeddings` [N, C].
 */
import { randn, rng } from '../util/random.js';
import { fail } from '../util/errors.js';
import type { BaseModel, Method, Param, PeftAdapter, SoftPromptConfig } from './types.js';

export const SOFT_PROMPT_PARAM = 'prompt_embeddings';

function embeddingRows(base: BaseModel, ids: number[]): Float32Array {
  const C = base.cfg.hiddenSize;
  const table = base.weights.get('model.embed_tokens.weight')!;
  const out = new Float32Array(ids.length * C);
  ids.forEach((id, i) => out.set(table.subarray(id * C, (id + 1) * C), i * C));
  return out;
}

function tableStd(table: Float32Array): number {
  let s = 0;
  let s2 = 0;
  for (const v of table) {
    s += v;
    s2 += v * v;
  }
  const m = s / table.length;
  return Math.sqrt(Math.max(s2 / table.length - m * m, 1e-12));
}

function adapter(config: SoftPromptConfig, base: BaseModel, data: Float32Array): PeftAdapter {
  const N = config.virtualTokens;
  const param: Param = { name: SOFT_PROMPT_PARAM, shape: [N, base.cfg.hiddenSize], data };
  return {
    id: `soft-prompt:${N}`,
    config,
    virtualTokens: N,
    prefixLength: 0,
    params: [param],
    baseTrainable: [],
    attach: (g) => ({ virtualTokens: g.input(param.name, param.shape) }),
    feeds: () => ({ [param.name]: param.data }),
  };
}

export const softPrompt: Method<SoftPromptConfig> = {
  kind: 'soft-prompt',
  async create(config, base, seed) {
    const N = config.virtualTokens;
    const C = base.cfg.hiddenSize;
    const r = rng(seed);
    const table = base.weights.get('model.embed_tokens.weight')!;
    if (config.init === 'random') return adapter(config, base, randn(N * C, r, tableStd(table)));
    if (config.init === 'vocab') {
      // Sample from the tokens the tokenizer knows (padded embedding rows are untrained).
      const V = Math.min(base.cfg.vocabSize, base.tokenizer?.vocabSize ?? base.cfg.vocabSize);
      const ids = Array.from({ length: N }, () => Math.floor(r() * V));
      return adapter(config, base, embeddingRows(base, ids));
    }
    if (!config.initText) fail('soft-prompt: init "text" needs initText (--init-text "...")');
    if (!base.tokenizer) fail('soft-prompt: init "text" needs the model tokenizer');
    const ids = base.tokenizer.encode(config.initText, { addSpecialTokens: false });
    if (ids.length === 0) fail('soft-prompt: initText encodes to no tokens');
    // As PEFT: repeat the text's tokens to fill N (or cut them to N).
    const filled = Array.from({ length: N }, (_, i) => ids[i % ids.length]!);
    return adapter(config, base, embeddingRows(base, filled));
  },
  restore(config, base, tensors) {
    const data = tensors.get(SOFT_PROMPT_PARAM);
    if (!data || data.length !== config.virtualTokens * base.cfg.hiddenSize) {
      fail(`soft-prompt: ${SOFT_PROMPT_PARAM} must have shape [${config.virtualTokens}, ${base.cfg.hiddenSize}]`);
    }
    return adapter(config, base, data);
  },
};
