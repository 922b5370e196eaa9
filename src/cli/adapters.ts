/**
 * --adapter DIR for generate / score / serve: a PEFT adapter folder (Plum's or PEFT's own).
 * A last-layers / full run writes a model folder; point --model at it instead.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../model/load.js';
import { baseModelOf } from '../peft/base.js';
import { loadAdapter } from '../peft/io.js';
import type { PeftAdapter } from '../peft/types.js';
import { fail } from '../util/errors.js';

export function loadAdapterForModel(dir: string, model: LoadedModel): PeftAdapter {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`${dir}: adapter folder not found`);
  if (!existsSync(join(dir, 'adapter_config.json')) && existsSync(join(dir, 'config.json'))) {
    fail(`${dir}: this is a model folder (a last-layers or full run); use it as --model ${dir}`);
  }
  return loadAdapter(dir, baseModelOf(model));
}
