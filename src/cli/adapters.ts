/**
 * Adapter loading for commands that take --adapter. Filled in by the PEFT layer.
 */
import type { ModelAdapter } from '../model/adapter.js';
import type { LoadedModel } from '../model/load.js';
import { fail } from '../util/errors.js';

export function loadAdapterForModel(dir: string, _model: LoadedModel): ModelAdapter {
  return fail(`${dir}: adapters are not supported yet`);
}
