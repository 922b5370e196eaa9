/**
 * Training base weights directly: the last N decoder layers (everything else frozen), or
 * every weight (full fine-tuning, the baseline). No extra tensors; the result is a model folder.
 */
import { expectedTensorShapes } from '../model/config.js';
import { fail } from '../util/errors.js';
import type { BaseModel, FullConfig, LastLayersConfig, Method, PeftAdapter } from './types.js';

function baseAdapter(config: LastLayersConfig | FullConfig, trainable: string[]): PeftAdapter {
  return {
    id: config.kind,
    config,
    virtualTokens: 0,
    prefixLength: 0,
    params: [],
    baseTrainable: trainable,
    attach: () => ({}),
    feeds: () => ({}),
  };
}

export function lastLayersTrainable(base: BaseModel, config: LastLayersConfig): string[] {
  const L = base.cfg.numLayers;
  if (config.layers > L) fail(`last-layers: --layers ${config.layers} exceeds the model's ${L} layers`);
  const first = L - config.layers;
  const names: string[] = [];
  for (const name of expectedTensorShapes(base.cfg).keys()) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= first) names.push(name);
    else if (config.includeHead && (name === 'model.norm.weight' || name === 'lm_head.weight')) names.push(name);
  }
  return names;
}

export const lastLayers: Method<LastLayersConfig> = {
  kind: 'last-layers',
  create: async (config, base) => baseAdapter(config, lastLayersTrainable(base, config)),
  restore: (config, base) => baseAdapter(config, lastLayersTrainable(base, config)),
};

export const full: Method<FullConfig> = {
  kind: 'full',
  create: async (config, base) => baseAdapter(config, [...expectedTensorShapes(base.cfg).keys()]),
  restore: (config, base) => baseAdapter(config, [...expectedTensorShapes(base.cfg).keys()]),
};
