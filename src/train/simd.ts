/**
 * AdamW's update and the gradients' sum of squares as WebAssembly SIMD (f32x4) kernels, built
 * here as a few hundred bytes of module (no toolchain, nothing downloaded). V8 runs the plain
 * JavaScript loop as scalar code; these run four lanes at a time on chunks staged through the
 * module's memory (64 KiB per array, so they stay in cache), bounded by memory bandwidth.
 * Full fine-tuning of SmolLM2-135M shapes (134.5M parameters): BENCHMARKS.md, finding 15.
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

/** Byte offsets of the staged arrays p, g, m, v in the module's memory. */
const P = 0, G = CHUNK * 4, M = CHUNK * 8, V = CHUNK * 12;

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
  // adamw(n, b1, 1-b1, b2, 1-b2, scale, decay, stepSize, sqrtBc2, eps): params 0..9; locals i (10),
  // g, m, v (11..13) and the nine scalars splatted to four lanes (14..22)
  const splats = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const L = { b1: 14, omb1: 15, b2: 16, omb2: 17, scale: 18, decay: 19, step: 20, sbc2: 21, eps: 22 };
  const adam = [
    ...splats.flatMap((p, k) => [...get(p), ...simd(SPLAT), ...set(14 + k)]),
    ...loop(10, [
      ...get(10), ...load(G), ...get(L.scale), ...simd(MUL), ...set(11),
      ...get(L.b1), ...get(10), ...load(M), ...simd(MUL), ...get(L.omb1), ...get(11), ...simd(MUL), ...simd(ADD), ...set(12),
      ...get(L.b2), ...get(10), ...load(V), ...simd(MUL), ...get(L.omb2), ...get(11), ...simd(MUL), ...get(11), ...simd(MUL), ...simd(ADD), ...set(13),
      ...get(10), ...get(12), ...store(M),
      ...get(10), ...get(13), ...store(V),
      ...get(10),
      ...get(10), ...load(P), ...get(L.decay), ...simd(MUL),
      ...get(L.step), ...get(12), ...simd(MUL),
      ...get(13), ...simd(SQRT), ...get(L.sbc2), ...simd(DIV), ...get(L.eps), ...simd(ADD),
      ...simd(DIV), ...simd(SUB),
      ...store(P),
    ]),
  ];
  const adamLocals = vec([[...leb(1), I32], [...leb(3), V128], [...leb(9), V128]]);
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
  const pages = Math.ceil((CHUNK * 16) / 65536);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], ...Array(9).fill([F32])]), 0x00], [0x60, 1, I32, 1, F32]])),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x00, ...leb(pages)]])),
    ...section(7, vec([[...name('adamw'), 0x00, 0], [...name('sumsq'), 0x00, 1], [...name('mem'), 0x02, 0]])),
    ...section(10, vec([fn(adamLocals, adam), fn(sumLocals, sumsq)])),
  ];
  return new Uint8Array(bytes);
}

// ------------------------------------------------------------------ the kernels

interface Exports {
  adamw(n: number, b1: number, omb1: number, b2: number, omb2: number, scale: number, decay: number, stepSize: number, sqrtBc2: number, eps: number): void;
  sumsq(n: number): number;
  mem: WebAssembly.Memory;
}

let instance: Exports | null | undefined;
/** The kernels, or null where this Node has no WebAssembly SIMD (then the caller loops in JS). */
export function simdKernels(): Exports | null {
  if (instance === undefined) {
    const bytes = buildModule();
    instance = WebAssembly.validate(bytes) ? (new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Exports) : null;
  }
  return instance;
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

/** One AdamW update of x, m, v in place from scale * g (as the JavaScript loop in optimizer.ts). */
export function adamwSimd(k: Exports, x: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: AdamWStep): void {
  const mem = new Float32Array(k.mem.buffer);
  for (let off = 0; off < x.length; off += CHUNK) {
    const end = Math.min(off + CHUNK, x.length);
    const len = end - off;
    mem.set(x.subarray(off, end), P / 4);
    mem.set(g.subarray(off, end), G / 4);
    mem.set(m.subarray(off, end), M / 4);
    mem.set(v.subarray(off, end), V / 4);
    // lanes past len (up to the next multiple of 4) hold stale values and are not copied back
    k.adamw((len + 3) & ~3, s.b1, 1 - s.b1, s.b2, 1 - s.b2, s.scale, s.decay, s.stepSize, s.sqrtBc2, s.eps);
    x.set(mem.subarray(P / 4, P / 4 + len), off);
    m.set(mem.subarray(M / 4, M / 4 + len), off);
    v.set(mem.subarray(V / 4, V / 4 + len), off);
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
