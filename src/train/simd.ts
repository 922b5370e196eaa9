/**
 * AdamW's update and the gradients' sum of squares as WebAssembly SIMD (f32x4) kernels, built
 * here as a few hundred bytes of module (no toolchain, nothing downloaded). V8 runs the plain
 * JavaScript loop as scalar code; these run four lanes at a time. Parameters and gradients are
 * staged through the module's memory in chunks (64 KiB per array, so they stay in cache); the
 * moments m and v live in the module's memory for the optimizer's lifetime (a `SimdArena`), so
 * the kernel reads and writes them where they are and its arithmetic overlaps their memory
 * traffic, instead of two more copies in and out per chunk. Full fine-tuning of SmolLM2-135M
 * shapes (134.5M parameters): BENCHMARKS.md, findings 15 and 38.
 */

/** Floats per staged chunk (per array). */
export const CHUNK = 16384;

// ------------------------------------------------------------------ a minimal module writer

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return out.push(b), out;
    out.push(b | 0x80);
  }
};
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [...leb(s.length), ...Buffer.from(s, 'latin1')];

const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
const get = (i: number): number[] => [0x20, ...leb(i)];
const set = (i: number): number[] => [0x21, ...leb(i)];
const i32c = (n: number): number[] => [0x41, ...sleb(n)];
const simd = (op: number, ...imm: number[]): number[] => [0xfd, ...leb(op), ...imm];
const load = (offset: number): number[] => simd(0x00, 4, ...leb(offset)); // align 2^4
const store = (offset: number): number[] => simd(0x0b, 4, ...leb(offset));
const SPLAT = 0x13, EXTRACT = 0x1f, SQRT = 0xe3, ADD = 0xe4, MUL = 0xe6, DIV = 0xe7, SUB = 0xe5;

/** Byte offsets of the staged arrays p, g, m, v in the module's memory (m, v: when not resident). */
const P = 0, G = CHUNK * 4, M = CHUNK * 8, V = CHUNK * 12;
/** Bytes of staging at the start of the memory; resident moments follow it. */
const STAGING = CHUNK * 16;
const PAGE = 65536;

/** for (i = 0; i < n*4 bytes; i += 16) body — `i` is local `iLocal`, n (floats) is param 0. */
function loop(iLocal: number, body: number[]): number[] {
  return [
    ...i32c(0), ...set(iLocal),
    0x02, 0x40, 0x03, 0x40, // block, loop
    ...get(iLocal), ...get(0), ...i32c(2), 0x74, 0x4f, 0x0d, 1, // i >= n << 2: br_if out
    ...body,
    ...get(iLocal), ...i32c(16), 0x6a, ...set(iLocal), 0x0c, 0, // i += 16; br loop
    0x0b, 0x0b,
  ];
}

function buildModule(): Uint8Array<ArrayBuffer> {
  // adamw(n, mAt, vAt, b1, 1-b1, b2, 1-b2, scale, decay, stepSize, 1/sqrtBc2, eps): params 0..11
  // (mAt, vAt: byte addresses of this chunk's m and v); locals i (12), g, m, v (13..15), the
  // addresses mAt + i, vAt + i (16, 17) and the nine scalars splatted to four lanes (18..26)
  const splats = [3, 4, 5, 6, 7, 8, 9, 10, 11];
  const L = { i: 12, g: 13, m: 14, v: 15, ma: 16, va: 17, b1: 18, omb1: 19, b2: 20, omb2: 21, scale: 22, decay: 23, step: 24, rsbc2: 25, eps: 26 };
  const adam = [
    ...splats.flatMap((p, k) => [...get(p), ...simd(SPLAT), ...set(L.b1 + k)]),
    ...loop(L.i, [
      ...get(1), ...get(L.i), 0x6a, ...set(L.ma), // i32.add
      ...get(2), ...get(L.i), 0x6a, ...set(L.va),
      ...get(L.i), ...load(G), ...get(L.scale), ...simd(MUL), ...set(L.g),
      ...get(L.b1), ...get(L.ma), ...load(0), ...simd(MUL), ...get(L.omb1), ...get(L.g), ...simd(MUL), ...simd(ADD), ...set(L.m),
      ...get(L.b2), ...get(L.va), ...load(0), ...simd(MUL), ...get(L.omb2), ...get(L.g), ...simd(MUL), ...get(L.g), ...simd(MUL), ...simd(ADD), ...set(L.v),
      ...get(L.ma), ...get(L.m), ...store(0),
      ...get(L.va), ...get(L.v), ...store(0),
      ...get(L.i),
      ...get(L.i), ...load(P), ...get(L.decay), ...simd(MUL),
      ...get(L.step), ...get(L.m), ...simd(MUL),
      ...get(L.v), ...simd(SQRT), ...get(L.rsbc2), ...simd(MUL), ...get(L.eps), ...simd(ADD),
      ...simd(DIV), ...simd(SUB),
      ...store(P),
    ]),
  ];
  const adamLocals = vec([[...leb(1), I32], [...leb(3), V128], [...leb(2), I32], [...leb(9), V128]]);
  // sumsq(n) -> f32: sum of g*g over the staged g (four lanes, then added)
  const sumsq = [
    ...loop(1, [...get(2), ...get(1), ...load(G), ...get(1), ...load(G), ...simd(MUL), ...simd(ADD), ...set(2)]),
    ...[0, 1, 2, 3].flatMap((l, k) => [...get(2), ...simd(EXTRACT, l), ...(k ? [0x92] : [])]), // f32.add
  ];
  const sumLocals = vec([[...leb(1), I32], [...leb(1), V128]]);
  const fn = (locals: number[], body: number[]): number[] => {
    const f = [...locals, ...body, 0x0b];
    return [...leb(f.length), ...f];
  };
  const pages = Math.ceil(STAGING / PAGE);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], ...Array(9).fill([F32])]), 0x00], [0x60, 1, I32, 1, F32]])),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x00, ...leb(pages)]])),
    ...section(7, vec([[...name('adamw'), 0x00, 0], [...name('sumsq'), 0x00, 1], [...name('mem'), 0x02, 0]])),
    ...section(10, vec([fn(adamLocals, adam), fn(sumLocals, sumsq)])),
  ];
  return new Uint8Array(bytes);
}

// ------------------------------------------------------------------ the kernels

interface Exports {
  adamw(n: number, mAt: number, vAt: number, b1: number, omb1: number, b2: number, omb2: number, scale: number, decay: number, stepSize: number, rSqrtBc2: number, eps: number): void;
  sumsq(n: number): number;
  mem: WebAssembly.Memory;
}

let compiled: WebAssembly.Module | null | undefined;
function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = buildModule();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

let instance: Exports | null | undefined;
/** The kernels, or null where this Node has no WebAssembly SIMD (then the caller loops in JS). */
export function simdKernels(): Exports | null {
  if (instance === undefined) {
    const mod = module();
    instance = mod ? (new WebAssembly.Instance(mod).exports as unknown as Exports) : null;
  }
  return instance;
}

/**
 * An instance of the kernels whose memory also holds zeroed float32 arrays of the given lengths
 * (an optimizer's moments, 16-byte aligned), returned as views that stay valid (the memory never
 * grows again). Null without WebAssembly SIMD, or when they do not fit in a 32-bit memory (4 GiB
 * with the staging area: about 500M parameters' m and v); the caller then keeps its arrays on the
 * JavaScript heap and the kernel stages them.
 */
export interface SimdArena {
  kernels: Exports;
  arrays: Float32Array[];
}
export function simdArena(lengths: number[], maxBytes = 4 * 1024 ** 3): SimdArena | null {
  const mod = module();
  if (!mod) return null;
  const offsets: number[] = [];
  let at = STAGING;
  for (const n of lengths) offsets.push(at), (at += Math.ceil(n / 4) * 16);
  if (at > maxBytes) return null;
  const kernels = new WebAssembly.Instance(mod).exports as unknown as Exports;
  try {
    kernels.mem.grow(Math.ceil(at / PAGE) - kernels.mem.buffer.byteLength / PAGE);
  } catch (e) {
    if (e instanceof RangeError) return null; // the engine would not reserve that much
    throw e;
  }
  return { kernels, arrays: lengths.map((n, i) => new Float32Array(kernels.mem.buffer, offsets[i], n)) };
}

export interface AdamWStep {
  b1: number;
  b2: number;
  scale: number;
  decay: number;
  stepSize: number;
  sqrtBc2: number;
  eps: number;
}

/**
 * One AdamW update of x, m, v in place from scale * g (as the JavaScript loop in optimizer.ts).
 * When m and v are views into k's own memory (simdArena) the kernel works on them where they
 * are; otherwise they are staged with x and g.
 */
export function adamwSimd(k: Exports, x: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: AdamWStep): void {
  const mem = new Float32Array(k.mem.buffer);
  const resident = m.buffer === k.mem.buffer && v.buffer === k.mem.buffer;
  for (let off = 0; off < x.length; off += CHUNK) {
    const end = Math.min(off + CHUNK, x.length);
    const len = end - off;
    mem.set(x.subarray(off, end), P / 4);
    mem.set(g.subarray(off, end), G / 4);
    if (!resident) (mem.set(m.subarray(off, end), M / 4), mem.set(v.subarray(off, end), V / 4));
    const [mAt, vAt] = resident ? [m.byteOffset + off * 4, v.byteOffset + off * 4] : [M, V];
    // lanes past len (up to the next multiple of 4) hold stale values: staged, they are not
    // copied back; resident, they fall in the array's own padding (simdArena rounds each up to 16 bytes)
    k.adamw((len + 3) & ~3, mAt, vAt, s.b1, 1 - s.b1, s.b2, 1 - s.b2, s.scale, s.decay, s.stepSize, 1 / s.sqrtBc2, s.eps);
    x.set(mem.subarray(P / 4, P / 4 + len), off);
    if (!resident) (m.set(mem.subarray(M / 4, M / 4 + len), off), v.set(mem.subarray(V / 4, V / 4 + len), off));
  }
}

/** Sum of g*g: float32 lanes within a chunk, chunks summed in float64. */
export function sumSquaresSimd(k: Exports, g: Float32Array): number {
  const mem = new Float32Array(k.mem.buffer);
  let total = 0;
  for (let off = 0; off < g.length; off += CHUNK) {
    const end = Math.min(off + CHUNK, g.length);
    const len = end - off;
    mem.set(g.subarray(off, end), G / 4);
    if (len & 3) mem.fill(0, G / 4 + len, G / 4 + ((len + 3) & ~3));
    total += k.sumsq((len + 3) & ~3);
  }
  return total;
}
