/**
 * IEEE half (f16) and bfloat16 (bf16) <-> float32 conversion.
 *
 * f32 -> f16 and f32 -> bf16 round to nearest, ties to even; overflow goes to +-Infinity,
 * f16 subnormals are produced and read exactly, NaN stays NaN (quiet).
 * Bulk helpers work on typed arrays; host byte order is assumed little-endian (as on every
 * platform Node and onnxruntime-node support), which is also the safetensors byte order.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 bit pattern (as uint32) -> f16 bit pattern, round to nearest even. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0); // inf / quiet NaN
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (e <= 0) {
    // Subnormal f16 (value = m * 2^-24), or zero when below half the smallest subnormal.
    if (e < -10) return sign;
    mant |= 0x800000; // implicit leading 1
    const shift = 14 - e; // 14..24 bits dropped
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m++; // may carry into the smallest normal: correct
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // carry may reach 0x7c00 = infinity: correct
  return sign | h;
}

/** f32 bit pattern (as uint32) -> bf16 bit pattern, round to nearest even. */
function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Round `x` to the nearest f16 and return its 16-bit pattern (1.0 -> 0x3c00). */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]!);
}

/** The value of a 16-bit f16 pattern (0x3c00 -> 1.0). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Round `x` (first to f32, then) to the nearest bf16 and return its 16-bit pattern (1.0 -> 0x3f80). */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0]!);
}

/** The value of a 16-bit bf16 pattern (0x3f80 -> 1.0). */
export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Float32Array -> f16 bit patterns. */
export function encodeF16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = u32View(src);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** Float32Array -> bf16 bit patterns. */
export function encodeBf16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = u32View(src);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

let f16Table: Float32Array | undefined; // all 65536 f16 values, built on first use (256 KiB)

/** f16 bit patterns -> Float32Array (exact). */
export function decodeF16(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  const t = f16Table;
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  return out;
}

/** bf16 bit patterns -> Float32Array (exact). */
export function decodeBf16(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = u32View(out);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}
