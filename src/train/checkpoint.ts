/**
 * Resumable training state. A checkpoint is a folder `checkpoint-<step>/` holding the trainable
 * tensors, the optimizer moments and a state.json; `latest.json` (written atomically last)
 * names the complete one. Older checkpoint folders are removed after the pointer moves, so a
 * crash at any moment leaves a usable checkpoint.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type NamedTensor, readSafetensors, writeSafetensors } from '../model/safetensors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { fail } from '../util/errors.js';
import type { AdamW, Trainable } from './optimizer.js';

export interface LoopState {
  /** Optimizer steps done. */
  step: number;
  epoch: number;
  /** Next micro-batch index within the epoch. */
  batchIndex: number;
  bestEval: number | null;
  badEvals: number;
  /** Options that must match for a resume to be exact. */
  fingerprint: Record<string, unknown>;
}

const LATEST = 'latest.json';

export function saveCheckpoint(outDir: string, state: LoopState, params: Trainable[], opt: AdamW): void {
  const dir = join(outDir, `checkpoint-${state.step}`);
  mkdirSync(dir, { recursive: true });
  const t = (data: Float32Array): NamedTensor => ({ dtype: 'F32', shape: [data.length], data });
  writeSafetensors(join(dir, 'params.safetensors'), new Map(params.map((p) => [p.name, t(p.data)])));
  const moments = new Map<string, NamedTensor>();
  for (const p of params) {
    moments.set(`m.${p.name}`, t(opt.m.get(p.name)!));
    moments.set(`v.${p.name}`, t(opt.v.get(p.name)!));
  }
  writeSafetensors(join(dir, 'optimizer.safetensors'), moments, { adam_step: String(opt.step) });
  writeJsonAtomic(join(dir, 'state.json'), state);
  writeJsonAtomic(join(outDir, LATEST), { checkpoint: `checkpoint-${state.step}`, step: state.step });
  for (const name of readdirSync(outDir)) {
    if (/^checkpoint-\d+$/.test(name) && name !== `checkpoint-${state.step}`) rmSync(join(outDir, name), { recursive: true, force: true });
  }
}

export function hasCheckpoint(outDir: string): boolean {
  return existsSync(join(outDir, LATEST));
}

/** Restore tensors and optimizer in place; returns the loop state. */
export function loadCheckpoint(outDir: string, params: Trainable[], opt: AdamW, fingerprint: Record<string, unknown>): LoopState {
  const latest = join(outDir, LATEST);
  if (!existsSync(latest)) fail(`${outDir}: no checkpoint to resume from (${LATEST} missing); run without --resume`);
  const { checkpoint } = JSON.parse(readFileSync(latest, 'utf8')) as { checkpoint: string };
  const dir = join(outDir, checkpoint);
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as LoopState;
  for (const [k, v] of Object.entries(fingerprint)) {
    if (JSON.stringify(state.fingerprint[k]) !== JSON.stringify(v)) {
      fail(`${dir}: the checkpoint was made with a different ${k} (${JSON.stringify(state.fingerprint[k])}, now ${JSON.stringify(v)}); resume with the same options or use a new --out`);
    }
  }
  const saved = readSafetensors(join(dir, 'params.safetensors')).tensors;
  const moments = readSafetensors(join(dir, 'optimizer.safetensors'));
  for (const p of params) {
    const s = saved.get(p.name);
    if (!s || s.data.length !== p.data.length) fail(`${dir}: checkpoint has no tensor ${p.name} of the right size`);
    p.data.set(s.data);
    opt.m.get(p.name)!.set(moments.tensors.get(`m.${p.name}`)!.data);
    opt.v.get(p.name)!.set(moments.tensors.get(`v.${p.name}`)!.data);
  }
  opt.step = Number(moments.metadata.adam_step ?? state.step);
  return state;
}
