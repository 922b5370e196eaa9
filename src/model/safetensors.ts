/**
 * The safetensors format: reader and writer.
 *
 * Layout: u64 little-endian header length N | N bytes of JSON header (padded with spaces so the
 * data starts at a multiple of 8) | raw little-endian tensor data. The header maps each tensor
 * name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data start) and may
 * hold "__metadata__": {string: string}.
 *
 * In memory every tensor is a Float32Array; `dtype` records the on-disk type (F16/BF16 are
 * widened exactly on read and rounded to nearest even on write; integer types are converted).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { z } from 'zod';
import { fail } from '../util/errors.js';
import { writeChunksAtomic } from '../util/atomic.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './float16.js';

export { f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32, encodeF16, decodeF16, encodeBf16, decodeBf16 } from './float16.js';

export type STDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'BOOL';

/** Bytes per element of each dtype. */
export const dtypeBytes: Record<STDType, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 };
const dtypeNames = Object.keys(dtypeBytes) as STDType[];

export interface NamedTensor {
  /** On-disk dtype (what was read, or what to write). */
  dtype: STDType;
  shape: number[];
  /** Row-major values, always float32 in memory. */
  data: Float32Array;
}

/** One header entry; `begin`/`end` are byte offsets relative to the start of the data section. */
export interface TensorEntry {
  dtype: STDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Tensors in header order. */
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data section (8 + header length). */
  dataStart: number;
}

/** The safetensors reference implementation refuses headers above this size. */
const MAX_HEADER_BYTES = 100_000_000;
/** Largest slice handed to one readSync call (Node caps single I/O calls near 2 GiB). */
const MAX_IO = 1 << 30;

const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});
const metadataSchema = z.record(z.string(), z.string());

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function readFully(fd: number, file: string, bytes: Uint8Array, position: number): void {
  let off = 0;
  while (off < bytes.byteLength) {
    const n = readSync(fd, bytes, off, Math.min(MAX_IO, bytes.byteLength - off), position + off);
    if (n === 0) fail(`${file}: unexpected end of file at byte ${position + off}; the file was truncated while being read`);
    off += n;
  }
}

function parseHeader(file: string, fd: number, fileSize: number): SafetensorsHeader {
  if (fileSize < 8) fail(`${file}: only ${fileSize} bytes, too short to be a safetensors file (needs an 8-byte header length); the file is empty or truncated`);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, file, lenBuf, 0);
  const headerLen = lenBuf.readBigUInt64LE(0);
  if (headerLen > BigInt(fileSize - 8)) {
    fail(`${file}: header length ${headerLen} exceeds the ${fileSize - 8} bytes after the length field; the file is truncated or not a safetensors file`);
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`${file}: header length ${headerLen} is over the 100 MB limit; the file is corrupt or not a safetensors file`);
  const n = Number(headerLen);
  const headerBuf = Buffer.alloc(n);
  readFully(fd, file, headerBuf, 8);
  let json: unknown;
  try {
    json = JSON.parse(headerBuf.toString('utf8'));
  } catch (e) {
    fail(`${file}: header is not valid JSON (${(e as Error).message}); the file is corrupt or not a safetensors file`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(`${file}: header is not a JSON object; the file is corrupt or not a safetensors file`);
  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const entries = new Map<string, TensorEntry>();
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      const m = metadataSchema.safeParse(value);
      if (!m.success) fail(`${file}: "__metadata__" must map strings to strings; the header is corrupt`);
      metadata = m.data;
      continue;
    }
    const p = entrySchema.safeParse(value);
    if (!p.success) {
      const issue = p.error.issues[0]!;
      fail(`${file}: header entry for tensor ${name} is malformed (field "${issue.path.join('.')}": ${issue.message}); the header is corrupt`);
    }
    const { dtype, shape, data_offsets: [begin, end] } = p.data;
    if (!(dtype in dtypeBytes)) fail(`${file}: tensor ${name} has dtype "${dtype}", which Plum cannot read (supported: ${dtypeNames.join(', ')}); convert the checkpoint to F32, F16 or BF16`);
    const dt = dtype as STDType;
    if (end < begin) fail(`${file}: tensor ${name} has data_offsets [${begin}, ${end}] with end before begin; the header is corrupt`);
    const need = numElements(shape) * dtypeBytes[dt];
    if (end - begin !== need) {
      fail(`${file}: tensor ${name} has data_offsets [${begin}, ${end}] (${end - begin} bytes) but shape [${shape.join(',')}] of ${dt} needs ${need} bytes; the header is corrupt`);
    }
    entries.set(name, { dtype: dt, shape, begin, end });
  }
  checkRanges(file, entries, dataLen);
  return { entries, metadata, dataStart };
}

/** Every tensor must lie inside the data section, and no two may overlap. */
function checkRanges(file: string, entries: Map<string, TensorEntry>, dataLen: number): void {
  const sorted = [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  const last = sorted.reduce<[string, TensorEntry] | undefined>((m, e) => (!m || e[1].end > m[1].end ? e : m), undefined);
  if (last && last[1].end > dataLen) {
    fail(`${file}: truncated: header says tensor ${last[0]} ends at byte ${last[1].end} but the file has ${dataLen} bytes of data; the download or copy is incomplete`);
  }
  let prev: [string, TensorEntry] | undefined; // the non-empty tensor reaching furthest so far
  for (const cur of sorted) {
    const [cn, c] = cur;
    if (c.end === c.begin) continue; // empty tensors occupy no bytes
    if (prev && c.begin < prev[1].end) {
      const [pn, p] = prev;
      fail(`${file}: tensors ${pn} [${p.begin}, ${p.end}] and ${cn} [${c.begin}, ${c.end}] overlap in data_offsets; the header is corrupt`);
    }
    if (!prev || c.end > prev[1].end) prev = cur;
  }
}

/** Read and validate only the header of a safetensors file (no tensor data is read). */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = openFile(file);
  try {
    return parseHeader(file, fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function openFile(file: string): number {
  try {
    return openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(`${file}: not found`);
    throw e;
  }
}

function readTensor(fd: number, file: string, dataStart: number, e: TensorEntry): Float32Array {
  const count = numElements(e.shape);
  const pos = dataStart + e.begin;
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (e.dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      readFully(fd, file, bytes(out), pos);
      return out;
    }
    case 'F16':
    case 'BF16': {
      const raw = new Uint16Array(count);
      readFully(fd, file, bytes(raw), pos);
      return e.dtype === 'F16' ? decodeF16(raw) : decodeBf16(raw);
    }
    case 'I64': {
      const raw = new BigInt64Array(count);
      readFully(fd, file, bytes(raw), pos);
      return Float32Array.from(raw, (x) => Number(x));
    }
    case 'I32': {
      const raw = new Int32Array(count);
      readFully(fd, file, bytes(raw), pos);
      return Float32Array.from(raw);
    }
    case 'U8':
    case 'BOOL': {
      const raw = new Uint8Array(count);
      readFully(fd, file, raw, pos);
      return Float32Array.from(raw);
    }
  }
}

/**
 * Read a safetensors file. `names` restricts which tensors are read (others are skipped, and
 * requested names absent from the file are simply not returned). Throws PlumError on any
 * malformed or truncated file.
 */
export function readSafetensors(file: string, opts: { names?: Set<string> } = {}): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const fd = openFile(file);
  try {
    const header = parseHeader(file, fd, fstatSync(fd).size);
    const tensors = new Map<string, NamedTensor>();
    for (const [name, e] of header.entries) {
      if (opts.names && !opts.names.has(name)) continue;
      tensors.set(name, { dtype: e.dtype, shape: [...e.shape], data: readTensor(fd, file, header.dataStart, e) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

const INT_RANGE: Partial<Record<STDType, [number, number]>> = {
  I64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  I32: [-(2 ** 31), 2 ** 31 - 1],
  U8: [0, 255],
  BOOL: [0, 1],
};

/** Encode a slice of values as `dtype` little-endian bytes. */
function encode(file: string, name: string, dtype: STDType, part: Float32Array): Uint8Array {
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (dtype === 'F32') return bytes(part);
  if (dtype === 'F16') return bytes(encodeF16(part));
  if (dtype === 'BF16') return bytes(encodeBf16(part));
  const [lo, hi] = INT_RANGE[dtype]!;
  for (const x of part) {
    if (!Number.isInteger(x) || x < lo || x > hi) fail(`${file}: tensor ${name} holds ${x}, which is not representable as ${dtype}; write it as F32`);
  }
  if (dtype === 'I64') return bytes(BigInt64Array.from(part, (x) => BigInt(x)));
  if (dtype === 'I32') return bytes(Int32Array.from(part));
  return Uint8Array.from(part);
}

/** Elements encoded per chunk, so F16/BF16 conversion of a large tensor never needs a second full copy. */
const CHUNK = 1 << 20;

function* fileChunks(file: string, header: Uint8Array, sorted: [string, NamedTensor][]): Generator<Uint8Array> {
  yield header;
  for (const [name, t] of sorted) {
    for (let i = 0; i < t.data.length; i += CHUNK) yield encode(file, name, t.dtype, t.data.subarray(i, i + CHUNK));
  }
}

/**
 * Write tensors to a safetensors file atomically, sorted by name. `metadata` defaults to
 * {format: "pt"}, which transformers requires of files that carry metadata; pass {} for none.
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, NamedTensor> | Record<string, NamedTensor>,
  metadata: Record<string, string> = { format: 'pt' },
): void {
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') fail(`${file}: "__metadata__" cannot be used as a tensor name`);
    if (!(t.dtype in dtypeBytes)) fail(`${file}: tensor ${name} has dtype "${t.dtype}" (supported: ${dtypeNames.join(', ')})`);
    if (numElements(t.shape) !== t.data.length) {
      fail(`${file}: tensor ${name} has shape [${t.shape.join(',')}] (${numElements(t.shape)} elements) but ${t.data.length} values`);
    }
    const size = t.data.length * dtypeBytes[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8; // data section starts 8-byte aligned
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  writeChunksAtomic(file, fileChunks(file, head, list));
}
