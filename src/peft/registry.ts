/** The methods, by kind: an explicit typed map (no registration by import side effects). */
import { full, lastLayers } from './layers.js';
import { lora } from './lora.js';
import { prefix } from './prefix.js';
import { softPrompt } from './soft-prompt.js';
import type { BaseModel, Method, MethodConfig, MethodKind, PeftAdapter } from './types.js';

type MethodFor<K extends MethodKind> = Method<Extract<MethodConfig, { kind: K }>>;

export const methods: { [K in MethodKind]: MethodFor<K> } = {
  'soft-prompt': softPrompt,
  prefix,
  lora,
  'last-layers': lastLayers,
  full,
};

export function createAdapter(config: MethodConfig, base: BaseModel, seed: number): Promise<PeftAdapter> {
  return (methods[config.kind] as Method<MethodConfig>).create(config, base, seed);
}

export function restoreAdapter(config: MethodConfig, base: BaseModel, tensors: Map<string, Float32Array>): PeftAdapter {
  return (methods[config.kind] as Method<MethodConfig>).restore(config, base, tensors);
}

/** The base model itself, as an adapter with nothing to train (e.g. the reference of DPO). */
export function noAdapter(): PeftAdapter {
  return {
    id: 'none',
    config: { kind: 'full' },
    virtualTokens: 0,
    prefixLength: 0,
    params: [],
    baseTrainable: [],
    attach: () => ({}),
    feeds: () => ({}),
  };
}
