/**
 * Crash-safe file writes: everything Plum writes goes through here.
 *
 * A write goes to a temporary file in the destination's folder, is fsynced, then renamed over
 * the destination (rename is atomic within one file system), so a reader sees either the old
 * file or the complete new one, never a half-written file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Largest slice handed to one writeSync call (Node caps single I/O calls near 2 GiB). */
const MAX_IO = 1 << 30;

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.byteLength) {
    const n = Math.min(MAX_IO, chunk.byteLength - off);
    off += writeSync(fd, chunk, off, n);
  }
}

/** Best-effort fsync of a folder so the rename itself survives a power cut (not possible on Windows). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot open or fsync folders; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Write `chunks` one after another to `path` atomically. The chunks may be produced lazily
 * (a generator), so a large file never needs to exist in memory at once.
 * Creates the parent folder if needed.
 */
export function writeChunksAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    for (const chunk of chunks) writeAll(fd, chunk);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** Write `data` (bytes, or a string as UTF-8) to `path` atomically. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  writeChunksAtomic(path, [typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
}

/** Write `obj` as 2-space-indented JSON with a trailing newline, atomically. */
export function writeJsonAtomic(path: string, obj: unknown): void {
  writeFileAtomic(path, JSON.stringify(obj, null, 2) + '\n');
}
