import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16BitsToF32, decodeBf16, decodeF16, encodeBf16, encodeF16, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from './float16.js';

const f32FromBits = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0]!;

test('f32 -> f16 known bit patterns', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [0, 0x0000], [-0, 0x8000], [0.1, 0x2e66],
    [65504, 0x7bff], // largest finite f16
    [65519, 0x7bff], // below the midpoint to 65536: stays finite
    [65520, 0x7c00], // midpoint 65504|65536 ties to even (65536 = infinity)
    [1e6, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half the smallest subnormal: ties to even (zero)
    [2 ** -25 * 1.0001, 0x0001], // just above half: rounds up
    [3 * 2 ** -25, 0x0002], // 1.5 ulp: ties to even (2)
    [1023.5 * 2 ** -24, 0x0400], // largest subnormal + half ulp carries into the smallest normal
    [1e-10, 0x0000], [-1e-10, 0x8000],
    [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01: even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
  ];
  for (const [x, h] of cases) assert.equal(f32ToF16Bits(x), h, `f16(${x})`);
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  // a NaN whose payload sits only in the low f32 mantissa bits must not become infinity
  const lowNaN = f32ToF16Bits(f32FromBits(0x7f800001));
  assert.notEqual(lowNaN & 0x3ff, 0);
});

test('f16 -> f32 known values, and every f16 pattern round-trips exactly', () => {
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x7c00), Infinity);
  assert.equal(f16BitsToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
  const all = new Uint16Array(65536).map((_, i) => i);
  const wide = decodeF16(all);
  const back = encodeF16(wide);
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) assert.ok(Number.isNaN(wide[h]!));
    else assert.equal(back[h], h, `pattern 0x${h.toString(16)}`);
    if (!isNaN) assert.ok(Object.is(wide[h], f16BitsToF32(h)));
  }
});

test('f32 -> bf16 known bit patterns and ties to even', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(-2), 0xc000);
  assert.equal(f32ToBf16Bits(Math.PI), 0x4049); // 0x40490fdb truncates
  assert.equal(f32ToBf16Bits(f32FromBits(0x3f808000)), 0x3f80); // tie: even
  assert.equal(f32ToBf16Bits(f32FromBits(0x3f818000)), 0x3f82); // tie: even (up)
  assert.equal(f32ToBf16Bits(f32FromBits(0x3f808001)), 0x3f81); // above tie
  assert.equal(f32ToBf16Bits(f32FromBits(0x7f7fffff)), 0x7f80); // f32 max rounds to infinity
  assert.equal(f32ToBf16Bits(Infinity), 0x7f80);
  assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
  assert.equal(f32ToBf16Bits(-0), 0x8000);
  assert.equal(f32ToBf16Bits(f32FromBits(0x00000001)), 0x0000); // smallest f32 subnormal -> 0
  assert.equal(f32ToBf16Bits(f32FromBits(0x00008001)), 0x0001); // bf16 subnormals are kept
  const nan = f32ToBf16Bits(f32FromBits(0x7f800001)); // payload only in low bits: must stay NaN
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0);
  assert.equal(bf16BitsToF32(0x3f80), 1);
  assert.equal(bf16BitsToF32(0xff80), -Infinity);
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = encodeBf16(decodeBf16(all));
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) assert.ok(Number.isNaN(bf16BitsToF32(h)));
    else assert.equal(back[h], h, `pattern 0x${h.toString(16)}`);
  }
});
