/**
 * Rotary position tables, computed on the host and fed to the graph (so every RoPE variant
 * is a few lines of TypeScript, not graph code). Follows HF's `ROPE_INIT_FUNCTIONS` (default,
 * linear, dynamic, llama3, yarn) and its rotary embedding's forward: cos/sin are laid out as
 * cat(freqs, freqs) (rotate-half) and multiplied by the attention scaling (YaRN's factor, else 1).
 */
import type { ModelConfig } from './config.js';

export interface RopeParameters {
  /** inverse frequencies [Dh/2] */
  inv: Float64Array;
  /** multiplies cos and sin (HF `attention_scaling`) */
  attentionScaling: number;
}

const f32 = Math.fround;

/** 1 / base^(2i/Dh), in float32 as HF computes it. */
function baseFrequencies(base: number, Dh: number): Float64Array {
  const inv = new Float64Array(Dh / 2);
  for (let i = 0; i < Dh / 2; i++) inv[i] = f32(1 / f32(Math.pow(base, f32((2 * i) / Dh))));
  return inv;
}

/**
 * HF's RoPE parameters for a forward pass over positions < `seqLen`. Only dynamic NTK depends on
 * it: beyond max_position_embeddings the base grows with the sequence. (HF's module keeps the
 * longest length seen so far between calls; here each call uses its own, which is the same for
 * any single pass and for prefill followed by decode.)
 */
export function ropeParameters(cfg: ModelConfig, seqLen = 0): RopeParameters {
  const Dh = cfg.headDim;
  const s = cfg.ropeScaling;
  if (!s) return { inv: baseFrequencies(cfg.ropeTheta, Dh), attentionScaling: 1 };
  if (s.type === 'linear') return { inv: baseFrequencies(cfg.ropeTheta, Dh).map((f) => f32(f / s.factor)), attentionScaling: 1 };
  if (s.type === 'dynamic') {
    const maxPos = cfg.maxPositionEmbeddings;
    const len = seqLen > maxPos ? seqLen : maxPos;
    const base = cfg.ropeTheta * Math.pow((s.factor * len) / maxPos - (s.factor - 1), Dh / (Dh - 2));
    return { inv: baseFrequencies(base, Dh), attentionScaling: 1 };
  }
  if (s.type === 'yarn') {
    // YaRN: interpolate (divide by factor) the low frequencies, keep the high ones, ramp between
    // the dimensions that make beta_fast and beta_slow rotations over the original context.
    const base = cfg.ropeTheta;
    const correctionDim = (rotations: number): number => (Dh * Math.log(s.originalMaxPositionEmbeddings / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
    let low = correctionDim(s.betaFast);
    let high = correctionDim(s.betaSlow);
    if (s.truncate) {
      low = Math.floor(low);
      high = Math.ceil(high);
    }
    low = Math.max(low, 0);
    high = Math.min(high, Dh - 1);
    if (low === high) high += 0.001; // HF: prevent a zero-width ramp
    const inv = new Float64Array(Dh / 2);
    for (let i = 0; i < Dh / 2; i++) {
      const posFreq = f32(Math.pow(base, f32((2 * i) / Dh)));
      const extrapolation = f32(1 / posFreq);
      const interpolation = f32(1 / f32(s.factor * posFreq));
      const ramp = f32(Math.min(1, Math.max(0, f32(f32(i - low) / f32(high - low)))));
      const keep = f32(1 - ramp); // HF's inv_freq_extrapolation_factor
      inv[i] = f32(f32(interpolation * f32(1 - keep)) + f32(extrapolation * keep));
    }
    return { inv, attentionScaling: s.attentionFactor };
  }
  // llama3: long wavelengths are scaled by `factor`, short ones kept, smooth in between.
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const inv = baseFrequencies(cfg.ropeTheta, Dh).map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f32(f / s.factor);
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return f32((1 - smooth) * (f / s.factor) + smooth * f);
  });
  return { inv, attentionScaling: 1 };
}

/** The inverse frequencies alone (see ropeParameters). */
export const inverseFrequencies = (cfg: ModelConfig, seqLen = 0): Float64Array => ropeParameters(cfg, seqLen).inv;

/**
 * cos and sin tables [positions.length, Dh] for the given absolute positions. Without `params`
 * they are HF's for a pass whose longest position is the largest given.
 */
export function ropeTables(cfg: ModelConfig, positions: ArrayLike<number>, params?: RopeParameters): { cos: Float32Array; sin: Float32Array } {
  const Dh = cfg.headDim;
  const half = Dh / 2;
  const n = positions.length;
  if (!params) {
    let maxPos = -1;
    for (let t = 0; t < n; t++) maxPos = Math.max(maxPos, positions[t]!);
    params = ropeParameters(cfg, maxPos + 1);
  }
  const { inv, attentionScaling: scale } = params;
  const cos = new Float32Array(n * Dh);
  const sin = new Float32Array(n * Dh);
  for (let t = 0; t < n; t++) {
    const p = positions[t]!;
    for (let i = 0; i < half; i++) {
      // HF computes inv_freq in float32 and the angle in float32.
      const angle = f32(f32(p) * f32(inv[i]!));
      const c = scale === 1 ? Math.cos(angle) : f32(Math.cos(angle)) * scale;
      const s = scale === 1 ? Math.sin(angle) : f32(Math.sin(angle)) * scale;
      cos[t * Dh + i] = c;
      cos[t * Dh + i + half] = c;
      sin[t * Dh + i] = s;
      sin[t * Dh + i + half] = s;
    }
  }
  return { cos, sin };
}

/** Tables for one model: the parameters are computed once unless they depend on the length (dynamic NTK). */
export class Rope {
  private readonly fixed: RopeParameters | null;
  constructor(readonly cfg: ModelConfig) {
    this.fixed = cfg.ropeScaling?.type === 'dynamic' ? null : ropeParameters(cfg);
  }
  tables(positions: ArrayLike<number>): { cos: Float32Array; sin: Float32Array } {
    return ropeTables(this.cfg, positions, this.fixed ?? undefined);
  }
}
