/** For the micro scripts: put a training run's latest checkpoint weights into a loaded model. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../src/model/load.js';
import { readSafetensors } from '../src/model/safetensors.js';

/** Returns the checkpoint's folder name. `m` must be the model the run started from. */
export function loadLatestCheckpoint(m: LoadedModel, run: string): string {
  const latest = JSON.parse(readFileSync(join(run, 'latest.json'), 'utf8')) as { checkpoint: string };
  for (const [k, v] of readSafetensors(join(run, latest.checkpoint, 'params.safetensors')).tensors) m.lm.weights.get(k)!.set(v.data as Float32Array);
  return latest.checkpoint;
}
