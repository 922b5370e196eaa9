/**
 * GGUF (llama.cpp's model file, versions 2 and 3): metadata, tensor directory, tensor data as
 * float32 (F32, F16, BF16 and the block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K, IQ4_NL, IQ4_XS dequantized as ggml's dequantize_row_* do), and a
 * writer for F32 / F16 / BF16 / Q8_0 (tests and exports).
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata as
 * (string key, u32 type, value); per tensor (string name, u32 n_dims, u64 ne[n_dims], u32 ggml
 * type, u64 offset); zero padding to `general.alignment` (default 32); the data, each tensor at
 * its offset from the data start. ne[0] is the fastest-varying axis, so a row-major [out, in]
 * matrix has ne = [in, out]. Strings are u64 length + UTF-8 bytes.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { fail } from '../util/errors.js';
import { writeChunksAtomic } from '../util/atomic.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16, f16BitsToF32, f32ToF16Bits } from './float16.js';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types this module knows by name (others are reported by number). */
export const GGML_TYPES = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23, I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30,
} as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;
const TYPE_NAMES = new Map<number, string>(Object.entries(GGML_TYPES).map(([k, v]) => [v, k]));
export const ggmlTypeName = (t: number): string => TYPE_NAMES.get(t) ?? `type ${t}`;

/** Elements per block and bytes per block of the types that can be read. */
const BLOCKS: Partial<Record<number, { n: number; bytes: number }>> = {
  [GGML_TYPES.F32]: { n: 1, bytes: 4 },
  [GGML_TYPES.F16]: { n: 1, bytes: 2 },
  [GGML_TYPES.BF16]: { n: 1, bytes: 2 },
  [GGML_TYPES.Q8_0]: { n: 32, bytes: 34 },
  [GGML_TYPES.Q4_0]: { n: 32, bytes: 18 },
  [GGML_TYPES.Q4_1]: { n: 32, bytes: 20 },
  [GGML_TYPES.Q5_0]: { n: 32, bytes: 22 },
  [GGML_TYPES.Q5_1]: { n: 32, bytes: 24 },
  [GGML_TYPES.Q2_K]: { n: 256, bytes: 84 },
  [GGML_TYPES.Q3_K]: { n: 256, bytes: 110 },
  [GGML_TYPES.Q4_K]: { n: 256, bytes: 144 },
  [GGML_TYPES.Q5_K]: { n: 256, bytes: 176 },
  [GGML_TYPES.Q6_K]: { n: 256, bytes: 210 },
  [GGML_TYPES.IQ4_NL]: { n: 32, bytes: 18 },
  [GGML_TYPES.IQ4_XS]: { n: 256, bytes: 136 },
};

/** The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl). */
const IQ4_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/**
 * The 6-bit scale of sub-block i (0..15) of a Q3_K block's 12 packed bytes at `o`: the low 4
 * bits are nibbles of bytes 0-7 (low nibbles for i < 8), the high 2 bits are pairs of bytes 8-11.
 */
function scaleQ3K(buf: Buffer, o: number, i: number): number {
  const low = i < 8 ? buf[o + i]! & 15 : buf[o + i - 8]! >> 4;
  const high = (buf[o + 8 + (i & 3)]! >> (2 * (i >> 2))) & 3;
  return low | (high << 4);
}

/** The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block's 12 packed bytes at `o` (ggml's get_scale_min_k4). */
function scaleMinK4(buf: Buffer, o: number, j: number): [number, number] {
  if (j < 4) return [buf[o + j]! & 63, buf[o + j + 4]! & 63];
  return [(buf[o + j + 4]! & 15) | ((buf[o + j - 4]! >> 6) << 4), (buf[o + j + 4]! >> 4) | ((buf[o + j]! >> 6) << 4)];
}
export const READABLE_TYPES = Object.keys(BLOCKS).map((t) => ggmlTypeName(Number(t)));

export interface GgufTensorInfo {
  name: string;
  /** Row-major shape, slowest axis first (ne reversed): [out, in] for a matrix. */
  shape: number[];
  type: number;
  /** Absolute byte offset in the file. */
  offset: number;
  bytes: number;
}

export interface GgufFile {
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
}

const enum VT { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }

/** 64-bit integers as numbers where they fit exactly, else as bigints. */
const exact = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** Fixed-size value types: byte size and reader. */
const SCALARS: Partial<Record<number, { bytes: number; read: (b: Buffer, o: number) => GgufValue }>> = {
  [VT.U8]: { bytes: 1, read: (b, o) => b.readUInt8(o) },
  [VT.I8]: { bytes: 1, read: (b, o) => b.readInt8(o) },
  [VT.U16]: { bytes: 2, read: (b, o) => b.readUInt16LE(o) },
  [VT.I16]: { bytes: 2, read: (b, o) => b.readInt16LE(o) },
  [VT.U32]: { bytes: 4, read: (b, o) => b.readUInt32LE(o) },
  [VT.I32]: { bytes: 4, read: (b, o) => b.readInt32LE(o) },
  [VT.F32]: { bytes: 4, read: (b, o) => b.readFloatLE(o) },
  [VT.BOOL]: { bytes: 1, read: (b, o) => b.readUInt8(o) !== 0 },
  [VT.U64]: { bytes: 8, read: (b, o) => exact(b.readBigUInt64LE(o)) },
  [VT.I64]: { bytes: 8, read: (b, o) => exact(b.readBigInt64LE(o)) },
  [VT.F64]: { bytes: 8, read: (b, o) => b.readDoubleLE(o) },
};

/** Sequential reads from a file through a window, so that multi-GB files are never read whole. */
class Cursor {
  private buf = Buffer.alloc(0);
  private start = 0; // file position of buf[0]
  pos = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly file: string,
  ) {}
  private need(n: number, what: string): void {
    if (this.pos + n > this.size) fail(`${this.file}: truncated: ${what} at byte ${this.pos} needs ${n} bytes, the file has ${this.size}; re-download or re-export it`);
    if (this.pos >= this.start && this.pos + n <= this.start + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    readSync(this.fd, this.buf, 0, len, this.pos);
    this.start = this.pos;
  }
  /** The window holding the next `n` bytes, and their offset in it (the window may move: take it from here). */
  private at(n: number, what: string): [Buffer, number] {
    this.need(n, what);
    const o = this.pos - this.start;
    this.pos += n;
    return [this.buf, o];
  }
  u32(what: string): number {
    const [b, o] = this.at(4, what);
    return b.readUInt32LE(o);
  }
  u64(what: string): number {
    const [b, o] = this.at(8, what);
    const v = b.readBigUInt64LE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${this.file}: ${what} is ${v}, too large; the file is corrupt`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`${what} length`);
    if (n > this.size) fail(`${this.file}: ${what} claims ${n} bytes; the file is corrupt`);
    const [b, o] = this.at(n, what);
    return b.toString('utf8', o, o + n);
  }
  value(type: number, what: string): GgufValue {
    const scalar = SCALARS[type];
    if (scalar) {
      const [b, o] = this.at(scalar.bytes, what);
      return scalar.read(b, o);
    }
    switch (type) {
      case VT.STRING: return this.string(what);
      case VT.ARRAY: {
        const t = this.u32(`${what} element type`);
        const n = this.u64(`${what} element count`);
        if (n > this.size) fail(`${this.file}: ${what} claims ${n} elements; the file is corrupt`);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(t, what);
        return out;
      }
      default:
        return fail(`${this.file}: ${what} has value type ${type}, which GGUF does not define; the file is corrupt`);
    }
  }
}

/** Read a GGUF file's metadata and tensor directory (not the tensor data). */
export function readGguf(file: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return fail(`${file}: not found; pass a .gguf model file with --model`);
  }
  try {
    const size = fstatSync(fd).size;
    const c = new Cursor(fd, size, file);
    if (size < 24) fail(`${file}: ${size} bytes, too short for a GGUF header; not a GGUF file or truncated`);
    const magic = Buffer.alloc(4);
    readSync(fd, magic, 0, 4, 0);
    if (magic.toString('latin1') !== 'GGUF') fail(`${file}: not a GGUF file (it starts with ${JSON.stringify(magic.toString('latin1'))}, GGUF files start with "GGUF")`);
    c.pos = 4;
    const version = c.u32('version');
    if (version !== 2 && version !== 3) fail(`${file}: GGUF version ${version}; versions 2 and 3 are supported (re-export with a current llama.cpp)`);
    const nTensors = c.u64('tensor count');
    const nKv = c.u64('metadata count');
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.string(`metadata key ${i}`);
      metadata.set(key, c.value(c.u32(`type of ${key}`), `metadata ${key}`));
    }
    const raw: { name: string; ne: number[]; type: number; offset: number }[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.string(`tensor name ${i}`);
      const nd = c.u32(`dimensions of ${name}`);
      if (nd > 8) fail(`${file}: tensor ${name} has ${nd} dimensions; the file is corrupt`);
      const ne = Array.from({ length: nd }, () => c.u64(`shape of ${name}`));
      raw.push({ name, ne, type: c.u32(`type of ${name}`), offset: c.u64(`offset of ${name}`) });
    }
    const alignment = Number(metadata.get('general.alignment') ?? 32);
    if (!(alignment > 0) || (alignment & (alignment - 1)) !== 0) fail(`${file}: general.alignment ${alignment} is not a power of two; the file is corrupt`);
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const t of raw) {
      const count = t.ne.reduce((a, b) => a * b, 1);
      const blk = BLOCKS[t.type];
      const bytes = blk ? (count / blk.n) * blk.bytes : NaN;
      const info = { name: t.name, shape: [...t.ne].reverse(), type: t.type, offset: dataStart + t.offset, bytes };
      if (blk && (count % blk.n !== 0 || info.offset + bytes > size)) {
        fail(`${file}: tensor ${t.name} (${ggmlTypeName(t.type)}, [${info.shape.join(', ')}]) runs past the end of the file (${size} bytes); the file is truncated`);
      }
      tensors.set(t.name, info);
    }
    return { file, version, metadata, tensors };
  } finally {
    closeSync(fd);
  }
}

/** Fail, naming the first tensor whose type cannot be read (before any data is read). */
export function checkReadable(g: GgufFile): void {
  for (const t of g.tensors.values()) if (!BLOCKS[t.type]) unreadable(g, t);
}

function unreadable(g: GgufFile, t: GgufTensorInfo): never {
  return fail(`${g.file}: tensor ${t.name} is ${ggmlTypeName(t.type)}, which Plum cannot read yet (readable: ${READABLE_TYPES.join(', ')}); re-export the model with llama.cpp's convert_hf_to_gguf.py --outtype f16, bf16 or q8_0`);
}

/** One tensor's values as float32 (dequantized for the block formats). */
export function readGgufTensor(g: GgufFile, name: string): Float32Array {
  const t = g.tensors.get(name) ?? fail(`${g.file}: no tensor ${name}`);
  const blk = BLOCKS[t.type];
  if (!blk) unreadable(g, t);
  const buf = Buffer.alloc(t.bytes);
  const fd = openSync(g.file, 'r');
  try {
    readSync(fd, buf, 0, t.bytes, t.offset);
  } finally {
    closeSync(fd);
  }
  return dequantize(buf, t.type, t.shape.reduce((a, b) => a * b, 1));
}

/** Decode `n` values of ggml type `type` from `buf`. */
export function dequantize(buf: Buffer, type: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const h = (o: number): number => f16BitsToF32(buf.readUInt16LE(o));
  switch (type) {
    case GGML_TYPES.F32:
      new Uint8Array(out.buffer).set(buf.subarray(0, 4 * n));
      return out;
    case GGML_TYPES.F16:
    case GGML_TYPES.BF16: {
      const bits = new Uint16Array(n);
      new Uint8Array(bits.buffer).set(buf.subarray(0, 2 * n));
      return type === GGML_TYPES.F16 ? decodeF16(bits, out) : decodeBf16(bits, out);
    }
    case GGML_TYPES.Q8_0: // f16 d, int8 q[32]: x = d q
      for (let b = 0; b < n / 32; b++) {
        const o = b * 34;
        const d = h(o);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * buf.readInt8(o + 2 + j);
      }
      return out;
    case GGML_TYPES.Q4_0: // f16 d, u8 qs[16]: x[j] = d (lo(qs[j]) - 8), x[j + 16] = d (hi(qs[j]) - 8)
    case GGML_TYPES.Q4_1: {
      // Q4_1: f16 d, f16 m, u8 qs[16]: x = d q + m
      const q41 = type === GGML_TYPES.Q4_1;
      const size = q41 ? 20 : 18;
      for (let b = 0; b < n / 32; b++) {
        const o = b * size;
        const d = h(o);
        const m = q41 ? h(o + 2) : 0;
        const qs = o + (q41 ? 4 : 2);
        for (let j = 0; j < 16; j++) {
          const q = buf[qs + j]!;
          out[b * 32 + j] = q41 ? d * (q & 15) + m : d * ((q & 15) - 8);
          out[b * 32 + j + 16] = q41 ? d * (q >> 4) + m : d * ((q >> 4) - 8);
        }
      }
      return out;
    }
    case GGML_TYPES.Q5_0: // f16 d, u32 qh, u8 qs[16]: 5-bit q = low nibble | bit j (j+16) of qh << 4; x = d (q - 16)
    case GGML_TYPES.Q5_1: {
      // Q5_1: f16 d, f16 m, u32 qh, u8 qs[16]: x = d q + m
      const q51 = type === GGML_TYPES.Q5_1;
      const size = q51 ? 24 : 22;
      for (let b = 0; b < n / 32; b++) {
        const o = b * size;
        const d = h(o);
        const m = q51 ? h(o + 2) : 0;
        const qh = buf.readUInt32LE(o + (q51 ? 4 : 2));
        const qs = o + (q51 ? 8 : 6);
        for (let j = 0; j < 16; j++) {
          const lo = (buf[qs + j]! & 15) | (((qh >>> j) & 1) << 4);
          const hi = (buf[qs + j]! >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          out[b * 32 + j] = q51 ? d * lo + m : d * (lo - 16);
          out[b * 32 + j + 16] = q51 ? d * hi + m : d * (hi - 16);
        }
      }
      return out;
    }
    case GGML_TYPES.Q2_K: {
      // scales[16] (4-bit scale | 4-bit min << 4), qs[64], f16 d, f16 dmin; 16 sub-blocks of 16:
      // element 128 h + 32 j + l (l < 32) is bits 2j..2j+1 of qs[32 h + l], sub-block 8 h + 2 j + (l >= 16)
      for (let b = 0; b < n / 256; b++) {
        const o = b * 84;
        const d = h(o + 80);
        const dmin = h(o + 82);
        for (let e = 0; e < 256; e++) {
          const [hf, j, l] = [e >> 7, (e >> 5) & 3, e & 31];
          const sc = buf[o + 8 * hf + 2 * j + (l >> 4)]!;
          const q = (buf[o + 16 + 32 * hf + l]! >> (2 * j)) & 3;
          out[b * 256 + e] = d * (sc & 15) * q - dmin * (sc >> 4);
        }
      }
      return out;
    }
    case GGML_TYPES.Q3_K: {
      // hmask[32], qs[64], scales[12] (6-bit, offset 32), f16 d; the layout of Q2_K's low bits, and
      // a third bit: bit (4 h + j) of hmask[l], which when clear subtracts 4
      for (let b = 0; b < n / 256; b++) {
        const o = b * 110;
        const d = h(o + 108);
        for (let e = 0; e < 256; e++) {
          const [hf, j, l] = [e >> 7, (e >> 5) & 3, e & 31];
          const sc = scaleQ3K(buf, o + 96, 8 * hf + 2 * j + (l >> 4)) - 32;
          const low = (buf[o + 32 + 32 * hf + l]! >> (2 * j)) & 3;
          const q = low - ((buf[o + l]! >> (4 * hf + j)) & 1 ? 0 : 4);
          out[b * 256 + e] = d * sc * q;
        }
      }
      return out;
    }
    case GGML_TYPES.IQ4_NL: // f16 d, u8 qs[16]: x[j] = d L[lo(qs[j])], x[j + 16] = d L[hi(qs[j])] with L the 16 levels
      for (let b = 0; b < n / 32; b++) {
        const o = b * 18;
        const d = h(o);
        for (let j = 0; j < 16; j++) {
          out[b * 32 + j] = d * IQ4_LEVELS[buf[o + 2 + j]! & 15]!;
          out[b * 32 + j + 16] = d * IQ4_LEVELS[buf[o + 2 + j]! >> 4]!;
        }
      }
      return out;
    case GGML_TYPES.IQ4_XS: {
      // f16 d, u16 scales_h, u8 scales_l[4], qs[128]: 8 sub-blocks of 32 as IQ4_NL's, each with a
      // 6-bit scale (4 low bits from scales_l, 2 high from scales_h) offset by 32
      for (let b = 0; b < n / 256; b++) {
        const o = b * 136;
        const d = h(o);
        const sh = buf.readUInt16LE(o + 2);
        for (let s = 0; s < 8; s++) {
          const ls = ((buf[o + 4 + (s >> 1)]! >> (4 * (s & 1))) & 15) | (((sh >> (2 * s)) & 3) << 4);
          const dl = d * (ls - 32);
          const qs = o + 8 + 16 * s;
          for (let j = 0; j < 16; j++) {
            out[b * 256 + 32 * s + j] = dl * IQ4_LEVELS[buf[qs + j]! & 15]!;
            out[b * 256 + 32 * s + j + 16] = dl * IQ4_LEVELS[buf[qs + j]! >> 4]!;
          }
        }
      }
      return out;
    }
    case GGML_TYPES.Q4_K: // f16 d, f16 dmin, scales[12], qs[128]: 8 sub-blocks of 32, x = d sc q - dmin m
    case GGML_TYPES.Q5_K: {
      // Q5_K: f16 d, f16 dmin, scales[12], qh[32], qs[128]: the fifth bit of element l of pair p is bit 2p (2p+1) of qh[l]
      const q5 = type === GGML_TYPES.Q5_K;
      const size = q5 ? 176 : 144;
      for (let b = 0; b < n / 256; b++) {
        const o = b * size;
        const d = h(o);
        const dmin = h(o + 2);
        const qh = o + 16;
        let qs = o + (q5 ? 48 : 16);
        for (let p = 0; p < 4; p++, qs += 32) {
          const [sc1, m1] = scaleMinK4(buf, o + 4, 2 * p);
          const [sc2, m2] = scaleMinK4(buf, o + 4, 2 * p + 1);
          for (let l = 0; l < 32; l++) {
            const hi1 = q5 && buf[qh + l]! & (1 << (2 * p)) ? 16 : 0;
            const hi2 = q5 && buf[qh + l]! & (2 << (2 * p)) ? 16 : 0;
            out[b * 256 + 64 * p + l] = d * sc1 * ((buf[qs + l]! & 15) + hi1) - dmin * m1;
            out[b * 256 + 64 * p + 32 + l] = d * sc2 * ((buf[qs + l]! >> 4) + hi2) - dmin * m2;
          }
        }
      }
      return out;
    }
    case GGML_TYPES.Q6_K: {
      // ql[128], qh[64], int8 scales[16], f16 d; two halves of 128: 6-bit q = 4 low bits from ql, 2 from qh, minus 32
      for (let b = 0; b < n / 256; b++) {
        const o = b * 210;
        const d = h(o + 208);
        for (let half = 0; half < 2; half++) {
          const ql = o + 64 * half;
          const qh = o + 128 + 32 * half;
          const sc = o + 192 + 8 * half;
          const y = b * 256 + 128 * half;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const hb = buf[qh + l]!;
            const q1 = ((buf[ql + l]! & 15) | ((hb & 3) << 4)) - 32;
            const q2 = ((buf[ql + l + 32]! & 15) | (((hb >> 2) & 3) << 4)) - 32;
            const q3 = ((buf[ql + l]! >> 4) | (((hb >> 4) & 3) << 4)) - 32;
            const q4 = ((buf[ql + l + 32]! >> 4) | (((hb >> 6) & 3) << 4)) - 32;
            out[y + l] = d * buf.readInt8(sc + is) * q1;
            out[y + l + 32] = d * buf.readInt8(sc + is + 2) * q2;
            out[y + l + 64] = d * buf.readInt8(sc + is + 4) * q3;
            out[y + l + 96] = d * buf.readInt8(sc + is + 6) * q4;
          }
        }
      }
      return out;
    }
    default:
      throw new Error(`dequantize: ${ggmlTypeName(type)} is not readable`);
  }
}

/** Encode float32 values as ggml type F32, F16, BF16 or Q8_0 (llama.cpp's reference quantizer: d = max|x| / 127). */
export function quantize(x: Float32Array, type: number): Buffer {
  switch (type) {
    case GGML_TYPES.F32:
      return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    case GGML_TYPES.F16:
    case GGML_TYPES.BF16: {
      const bits = type === GGML_TYPES.F16 ? encodeF16(x) : encodeBf16(x);
      return Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength);
    }
    case GGML_TYPES.Q8_0: {
      if (x.length % 32 !== 0) throw new Error(`quantize: Q8_0 needs a multiple of 32 values, got ${x.length}`);
      const out = Buffer.alloc((x.length / 32) * 34);
      for (let b = 0; b < x.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
        const d = amax / 127;
        const id = d ? 1 / d : 0;
        out.writeUInt16LE(f32ToF16Bits(d), b * 34);
        for (let j = 0; j < 32; j++) out.writeInt8(Math.round(x[b * 32 + j]! * id), b * 34 + 2 + j);
      }
      return out;
    }
    default:
      throw new Error(`quantize: cannot write ${ggmlTypeName(type)}`);
  }
}

export interface GgufTensorToWrite {
  /** Row-major shape, slowest axis first ([out, in]); written as ne reversed. */
  shape: number[];
  type: number;
  data: Float32Array;
}

/** GGUF's value types by name, for metadata that must have an exact type (llama.cpp checks them). */
export type GgufType = 'U8' | 'I8' | 'U16' | 'I16' | 'U32' | 'I32' | 'F32' | 'BOOL' | 'STRING' | 'U64' | 'I64' | 'F64';
const TYPE_CODES: Record<GgufType, number> = { U8: VT.U8, I8: VT.I8, U16: VT.U16, I16: VT.I16, U32: VT.U32, I32: VT.I32, F32: VT.F32, BOOL: VT.BOOL, STRING: VT.STRING, U64: VT.U64, I64: VT.I64, F64: VT.F64 };
/** A metadata value with its type spelled out; for an array, `type` is its elements' type. */
export interface GgufTyped {
  type: GgufType;
  value: GgufValue;
}
export const typed = (type: GgufType, value: GgufValue): GgufTyped => ({ type, value });

/**
 * Write a GGUF v3 file (atomically). Untyped numbers are written as U32 (integers >= 0), I32 or
 * F32, an untyped array takes the kind of its elements; give a `typed` value where the reader
 * expects a particular type.
 */
export function writeGguf(file: string, metadata: Map<string, GgufValue | GgufTyped>, tensors: Map<string, GgufTensorToWrite>, alignment = 32): void {
  const parts: Buffer[] = [];
  const put = (bytes: number, write: (b: Buffer) => void): void => {
    const b = Buffer.alloc(bytes);
    write(b);
    parts.push(b);
  };
  const u32 = (v: number): void => put(4, (b) => b.writeUInt32LE(v));
  const u64 = (v: number): void => put(8, (b) => b.writeBigUInt64LE(BigInt(v)));
  const str = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    u64(b.length);
    parts.push(b);
  };
  const big = (v: GgufValue): bigint => (typeof v === 'bigint' ? v : BigInt(v as number));
  const scalar: Record<number, (v: GgufValue) => void> = {
    [VT.U8]: (v) => put(1, (b) => b.writeUInt8(v as number)),
    [VT.I8]: (v) => put(1, (b) => b.writeInt8(v as number)),
    [VT.U16]: (v) => put(2, (b) => b.writeUInt16LE(v as number)),
    [VT.I16]: (v) => put(2, (b) => b.writeInt16LE(v as number)),
    [VT.U32]: (v) => u32(v as number),
    [VT.I32]: (v) => put(4, (b) => b.writeInt32LE(v as number)),
    [VT.F32]: (v) => put(4, (b) => b.writeFloatLE(v as number)),
    [VT.BOOL]: (v) => put(1, (b) => b.writeUInt8(v ? 1 : 0)),
    [VT.STRING]: (v) => str(v as string),
    [VT.U64]: (v) => put(8, (b) => b.writeBigUInt64LE(big(v))),
    [VT.I64]: (v) => put(8, (b) => b.writeBigInt64LE(big(v))),
    [VT.F64]: (v) => put(8, (b) => b.writeDoubleLE(v as number)),
  };
  const guess = (v: GgufValue): number =>
    typeof v === 'string' ? VT.STRING : typeof v === 'boolean' ? VT.BOOL : typeof v === 'bigint' ? VT.I64 : Number.isInteger(v) ? ((v as number) >= 0 ? VT.U32 : VT.I32) : VT.F32;
  const entry = (key: string, v: GgufValue | GgufTyped): void => {
    str(key);
    const given = typeof v === 'object' && v !== null && !Array.isArray(v) ? TYPE_CODES[v.type] : undefined;
    const val = typeof v === 'object' && v !== null && !Array.isArray(v) ? v.value : v;
    if (Array.isArray(val)) {
      // one element type: the given one, else F32 if any is fractional, I32 if any is negative
      const et = given ?? (val.length === 0 ? VT.U32 : val.some((e) => typeof e === 'number' && !Number.isInteger(e)) ? VT.F32 : val.some((e) => typeof e === 'number' && e < 0) ? VT.I32 : guess(val[0]!));
      u32(VT.ARRAY);
      u32(et);
      u64(val.length);
      for (const e of val) scalar[et]!(e);
    } else {
      const t = given ?? guess(val);
      u32(t);
      scalar[t]!(val);
    }
  };
  parts.push(Buffer.from('GGUF', 'latin1'));
  u32(3);
  u64(tensors.size);
  u64(metadata.size + (alignment !== 32 ? 1 : 0));
  for (const [k, v] of metadata) entry(k, v);
  if (alignment !== 32) entry('general.alignment', typed('U32', alignment));
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const blob = quantize(t.data, t.type);
    str(name);
    u32(t.shape.length);
    for (const d of [...t.shape].reverse()) u64(d);
    u32(t.type);
    u64(offset);
    const padded = Math.ceil(blob.length / alignment) * alignment;
    blobs.push(blob, Buffer.alloc(padded - blob.length));
    offset += padded;
  }
  const head = parts.reduce((s, b) => s + b.length, 0);
  parts.push(Buffer.alloc(Math.ceil(head / alignment) * alignment - head));
  writeChunksAtomic(file, [...parts, ...blobs]);
}
