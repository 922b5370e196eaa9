import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const glibc = typeof (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime === 'string';
const allocator = pathToFileURL(resolve('bin/allocator.js')).href;

/** A script that relaunches through bin/allocator.js, then in the child runs BODY. */
function fixture(dir: string, body: string): string {
  const file = join(dir, 'main.mjs');
  writeFileSync(file, `import { relaunchWithTunedMalloc } from ${JSON.stringify(allocator)};\nif (!(await relaunchWithTunedMalloc())) {\n${body}\n}\n`);
  return file;
}
const cleanEnv = (extra: Record<string, string> = {}) => {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...extra };
  for (const k of ['PLUM_ALLOCATOR', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'GLIBC_TUNABLES']) if (!(k in extra)) delete env[k];
  return env;
};

test('relaunch: the child has the malloc settings and the parent exits with its code; opt-outs run in place', { skip: glibc ? false : 'not glibc: no relaunch here' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-alloc-'));
  try {
    const main = fixture(dir, `process.stdout.write(['PLUM_ALLOCATOR', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_'].map((k) => process.env[k] ?? '-').join(' ')); process.exitCode = 7;`);
    const run = (extra: Record<string, string> = {}) => spawnSync(process.execPath, [main], { encoding: 'utf8', env: cleanEnv(extra) });
    const r = run();
    assert.equal(r.status, 7);
    assert.equal(r.stdout, 'child 0 1099511627776');
    assert.equal(r.stderr, '');
    const cases: Array<[Record<string, string>, string]> = [
      [{ PLUM_ALLOCATOR: 'system' }, 'system - -'],
      [{ MALLOC_MMAP_MAX_: '5' }, '- 5 -'],
      [{ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' }, '- - -'],
    ];
    const bad = run({ PLUM_ALLOCATOR: 'jemalloc' });
    assert.equal(bad.status, 1);
    assert.equal(bad.stdout, '');
    assert.equal(bad.stderr, 'plum: PLUM_ALLOCATOR="jemalloc" is not understood: unset it, or set it to "system" to keep glibc\'s default malloc settings\n');
    for (const [extra, out] of cases) {
      const s = run(extra);
      assert.equal(s.status, 7, JSON.stringify(extra));
      assert.equal(s.stdout, out, JSON.stringify(extra));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('relaunch: a child killed by a signal kills the parent with it; a parent killed with SIGKILL takes the child with it', { skip: glibc ? false : 'not glibc: no relaunch here' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-alloc-'));
  try {
    const bySignal = spawnSync(process.execPath, [fixture(dir, `process.kill(process.pid, 'SIGTERM'); await new Promise((r) => setTimeout(r, 5000));`)], { env: cleanEnv() });
    assert.equal(bySignal.signal, 'SIGTERM');

    const pidFile = join(dir, 'child.pid');
    const main = fixture(dir, `(await import('node:fs')).writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);`);
    const parent = spawn(process.execPath, [main], { env: cleanEnv(), stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!existsSync(pidFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const childPid = Number(readFileSync(pidFile, 'utf8'));
    assert.notEqual(childPid, parent.pid);
    parent.kill('SIGKILL');
    const alive = () => { try { process.kill(childPid, 0); return true; } catch { return false; } };
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(), false, 'the child outlived its parent');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
