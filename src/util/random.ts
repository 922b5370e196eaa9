/** Seeded pseudo-random numbers for initialisation, shuffling and tests (no global state). */

/** mulberry32: a small, fast 32-bit generator; returns uniforms in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal samples (Box-Muller) with the given standard deviation. */
export function randn(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()) * scale;
  }
  return out;
}

/** n uniform samples in [-bound, bound). */
export function uniform(n: number, rand: () => number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * bound;
  return out;
}
