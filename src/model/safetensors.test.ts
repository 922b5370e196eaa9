import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlumError } from '../util/errors.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors, type NamedTensor } from './safetensors.js';

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-st-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Build a safetensors file by hand: `header` is the raw header JSON text, `data` the data section. */
function rawFile(header: string, data: Uint8Array, headerLen = Buffer.byteLength(header)): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLen));
  return Buffer.concat([len, Buffer.from(header), data]);
}

const t = (dtype: NamedTensor['dtype'], shape: number[], values: number[]): NamedTensor => ({ dtype, shape, data: Float32Array.from(values) });

test('F32 / F16 / BF16 / integer tensors round-trip with exact values', () => {
  withTmp((dir) => {
    const f = join(dir, 'a.safetensors');
    const exactHalf = [1, -2, 0.5, 65504, 2 ** -24, -0.25, Infinity, -Infinity, 0];
    writeSafetensors(f, {
      'w.f32': t('F32', [2, 3], [1.5, -2.25, 3.1415927, 1e-30, 1e30, -0]),
      'w.f16': t('F16', [9], exactHalf),
      'w.bf16': t('BF16', [3, 3], [1, -2, 0.5, 3.140625, 1e38, -1e-38, Infinity, 256, 0]),
      'i.i64': t('I64', [3], [-5, 0, 2 ** 40]),
      'i.i32': t('I32', [2], [-7, 2 ** 30]),
      'b.u8': t('U8', [2], [0, 255]),
      'b.bool': t('BOOL', [2], [1, 0]),
    });
    const { tensors, metadata } = readSafetensors(f);
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual([...tensors.keys()], ['b.bool', 'b.u8', 'i.i32', 'i.i64', 'w.bf16', 'w.f16', 'w.f32']); // sorted by name
    assert.deepEqual([...tensors.get('w.f32')!.data], [...Float32Array.from([1.5, -2.25, 3.1415927, 1e-30, 1e30, -0])]);
    assert.deepEqual(tensors.get('w.f32')!.shape, [2, 3]);
    assert.deepEqual([...tensors.get('w.f16')!.data], exactHalf);
    assert.equal(tensors.get('w.f16')!.dtype, 'F16');
    const bf = [...tensors.get('w.bf16')!.data];
    assert.deepEqual(bf.slice(0, 4), [1, -2, 0.5, 3.140625]);
    assert.equal(bf[6], Infinity);
    assert.equal(bf[7], 256);
    assert.ok(Math.abs(bf[4]! - 1e38) / 1e38 < 2 ** -8); // rounded to 8 mantissa bits
    assert.deepEqual([...tensors.get('i.i64')!.data], [-5, 0, 2 ** 40]);
    assert.deepEqual([...tensors.get('i.i32')!.data], [-7, 2 ** 30]);
    assert.deepEqual([...tensors.get('b.u8')!.data], [0, 255]);
    assert.deepEqual([...tensors.get('b.bool')!.data], [1, 0]);
  });
});

test('F16 and BF16 values are rounded to nearest even on write', () => {
  withTmp((dir) => {
    const f = join(dir, 'r.safetensors');
    writeSafetensors(f, { h: t('F16', [3], [1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1]), b: t('BF16', [2], [1 + 2 ** -8, 1 + 3 * 2 ** -8]) });
    const { tensors } = readSafetensors(f);
    assert.deepEqual([...tensors.get('h')!.data], [1, 1 + 2 ** -9, 0.0999755859375]);
    assert.deepEqual([...tensors.get('b')!.data], [1, 1 + 2 ** -6]);
  });
});

test('on-disk layout follows the spec: u64 LE length, space-padded header to 8 bytes, LE data', () => {
  withTmp((dir) => {
    const f = join(dir, 'layout.safetensors');
    writeSafetensors(f, { one16: t('F16', [1], [1]), one_bf: t('BF16', [1], [1]), x: t('F32', [1], [1]) }, { note: 'hi' });
    const buf = readFileSync(f);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const text = buf.subarray(8, 8 + n).toString('utf8');
    assert.match(text, /^\{.*\} *$/);
    const header = JSON.parse(text);
    assert.deepEqual(header, {
      __metadata__: { note: 'hi' },
      one16: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
      one_bf: { dtype: 'BF16', shape: [1], data_offsets: [2, 4] },
      x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    });
    assert.deepEqual([...buf.subarray(8 + n)], [0x00, 0x3c, 0x80, 0x3f, 0x00, 0x00, 0x80, 0x3f]); // 1.0 as f16, bf16, f32
    assert.equal(buf.length, 8 + n + 8);
  });
});

test('a hand-built file from the spec (unpadded header, no metadata) is readable; names filter', () => {
  withTmp((dir) => {
    const f = join(dir, 'hand.safetensors');
    const data = Buffer.alloc(12);
    data.writeFloatLE(2.5, 0);
    data.writeFloatLE(-1, 4);
    data.writeUInt16LE(0x4000, 8); // f16 2.0
    data.writeUInt16LE(0x4040, 10); // bf16 3.0
    writeFileSync(f, rawFile('{"b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"c":{"dtype":"BF16","shape":[],"data_offsets":[10,12]}}', data));
    const all = readSafetensors(f);
    assert.deepEqual(all.metadata, {});
    assert.deepEqual([...all.tensors.get('a')!.data], [2.5, -1]);
    assert.deepEqual([...all.tensors.get('b')!.data], [2]);
    assert.deepEqual(all.tensors.get('c')!.shape, []);
    assert.deepEqual([...all.tensors.get('c')!.data], [3]);
    const some = readSafetensors(f, { names: new Set(['b', 'zzz']) });
    assert.deepEqual([...some.tensors.keys()], ['b']);
    assert.deepEqual(readSafetensorsHeader(f).entries.get('a'), { dtype: 'F32', shape: [2], begin: 0, end: 8 });
  });
});

/** Assert that reading `bytes` fails with a PlumError whose one-line message matches `re`. */
function assertReadFails(bytes: Buffer, re: RegExp): void {
  withTmp((dir) => {
    const f = join(dir, 'model.safetensors');
    writeFileSync(f, bytes);
    assert.throws(() => readSafetensors(f), (e: unknown) => {
      assert.ok(e instanceof PlumError);
      assert.ok(!e.message.includes('\n'));
      assert.ok(e.message.startsWith(f + ': '), e.message);
      assert.match(e.message, re);
      return true;
    });
  });
}

test('malformed files fail with one-line messages naming the file and the problem', () => {
  assertReadFails(Buffer.from([1, 2, 3]), /only 3 bytes, too short to be a safetensors file/);
  assertReadFails(rawFile('{}', new Uint8Array(0), 999), /header length 999 exceeds the 2 bytes after the length field; the file is truncated/);
  assertReadFails(rawFile('{"a": [', new Uint8Array(0)), /header is not valid JSON .*; the file is corrupt/);
  assertReadFails(rawFile('[1,2]', new Uint8Array(0)), /header is not a JSON object/);
  assertReadFails(rawFile('{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), /tensor a has dtype "F8_E4M3", which Plum cannot read \(supported: F32, F16, BF16, I64, I32, U8, BOOL\)/);
  assertReadFails(rawFile('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)), /tensor a has data_offsets \[0, 8\] \(8 bytes\) but shape \[3\] of F32 needs 12 bytes; the header is corrupt/);
  assertReadFails(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', new Uint8Array(8)), /data_offsets \[4, 0\] with end before begin/);
  assertReadFails(rawFile('{"a":{"dtype":"F32","shape":"x","data_offsets":[0,4]}}', new Uint8Array(4)), /header entry for tensor a is malformed \(field "shape"/);
  assertReadFails(
    rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', new Uint8Array(12)),
    /tensors a \[0, 8\] and b \[4, 12\] overlap in data_offsets/,
  );
  assertReadFails(rawFile('{"__metadata__":{"a":1}}', new Uint8Array(0)), /"__metadata__" must map strings to strings/);
});

test('a truncated file names the tensor, the expected end and the bytes present', () => {
  withTmp((dir) => {
    const f = join(dir, 'model.safetensors');
    writeSafetensors(f, { 'model.embed_tokens.weight': t('F32', [500], new Array(500).fill(1)), 'model.norm.weight': t('F32', [524], new Array(524).fill(1)) });
    const full = readFileSync(f);
    const n = Number(full.readBigUInt64LE(0));
    writeFileSync(f, full.subarray(0, 8 + n + 2000));
    assert.throws(() => readSafetensors(f), {
      name: 'PlumError',
      message: `${f}: truncated: header says tensor model.norm.weight ends at byte 4096 but the file has 2000 bytes of data; the download or copy is incomplete`,
    });
    assert.throws(() => readSafetensors(join(dir, 'absent.safetensors')), { name: 'PlumError', message: `${join(dir, 'absent.safetensors')}: not found` });
  });
});

test('writeSafetensors rejects shape/data mismatches and unrepresentable integers', () => {
  withTmp((dir) => {
    const f = join(dir, 'bad.safetensors');
    assert.throws(() => writeSafetensors(f, { w: t('F32', [2, 2], [1, 2, 3]) }), { message: `${f}: tensor w has shape [2,2] (4 elements) but 3 values` });
    assert.throws(() => writeSafetensors(f, { w: t('U8', [1], [300]) }), { message: `${f}: tensor w holds 300, which is not representable as U8; write it as F32` });
  });
});
