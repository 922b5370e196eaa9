/**
 * Rotary position tables, computed on the host and fed to the graph (so every RoPE variant
 * is a few lines of TypeScript, not graph code). Follows HF `_compute_default_rope_parameters`
 * and `_compute_llama3_parameters`; cos/sin are laid out as cat(freqs, freqs) (rotate-half).
 */
import type { ModelConfig } from './config.js';

export function inverseFrequencies(cfg: ModelConfig): Float64Array {
  const half = cfg.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  // llama3: long wavelengths are scaled by `factor`, short ones kept, smooth in between.
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos and sin tables [positions.length, Dh] for the given absolute positions. */
export function ropeTables(cfg: ModelConfig, positions: ArrayLike<number>, inv = inverseFrequencies(cfg)): { cos: Float32Array; sin: Float32Array } {
  const Dh = cfg.headDim;
  const half = Dh / 2;
  const n = positions.length;
  const cos = new Float32Array(n * Dh);
  const sin = new Float32Array(n * Dh);
  for (let t = 0; t < n; t++) {
    const p = positions[t]!;
    for (let i = 0; i < half; i++) {
      // HF computes inv_freq in float32 and the angle in float32.
      const angle = Math.fround(Math.fround(p) * Math.fround(inv[i]!));
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * Dh + i] = c;
      cos[t * Dh + i + half] = c;
      sin[t * Dh + i] = s;
      sin[t * Dh + i + half] = s;
    }
  }
  return { cos, sin };
}
