/**
 * glibc malloc settings for training runs, applied by relaunching the process once.
 *
 * A full fine-tuning step of SmolLM2-135M (4 x 128) page-faults fresh memory every run: large
 * blocks that ONNX Runtime allocates and frees inside each run go back to the kernel (glibc serves
 * blocks above its mmap threshold with mmap and unmaps them on free), and the next run faults
 * them in again. With mmap off and no trimming, freed blocks stay in the heap and are reused:
 * `bench/sft-step.ts 4 128 full` 909k -> 682k page faults and 1.73-1.78 -> 1.40-1.50 s per run,
 * `bench/methods.ts --method full` 1.97-2.03 -> 1.61-1.70 s per step (BENCHMARKS.md finding 16);
 * PEFT methods unchanged, peak memory +0.1 GB. Preallocated output buffers do not help (the
 * faults are in ORT's own allocations), and glibc reads these settings
 * only at process start, hence the relaunch: the parent waits, passes its exit code on, forwards
 * SIGTERM/SIGHUP (Ctrl-C reaches the child directly: same process group), and the child exits
 * when the parent dies (its IPC channel closes), so no orphan is left training.
 *
 * Off when PLUM_ALLOCATOR=system, when the user set MALLOC_MMAP_MAX_ or GLIBC_TUNABLES, and
 * where the C library is not glibc.
 */
import { spawn } from 'node:child_process';

const TUNED_MALLOC_ENV = { MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '1099511627776' };
const MARK = 'PLUM_ALLOCATOR';

function glibc() {
  if (process.platform !== 'linux') return false;
  const header = /** @type {{ glibcVersionRuntime?: string }} */ (process.report?.getReport().header ?? {});
  return typeof header.glibcVersionRuntime === 'string';
}

/**
 * Relaunches this process (same node flags and arguments) with TUNED_MALLOC_ENV and resolves true
 * once the child has exited and its exit code is set on this process: the caller then does nothing
 * more (also after a one-line error for an unknown PLUM_ALLOCATOR value, exit code 1). Resolves
 * false where the process should run the work itself (already the child, opted out, or not glibc).
 */
export async function relaunchWithTunedMalloc() {
  const env = process.env;
  if (env[MARK] === 'child') {
    if (process.channel) {
      process.channel.unref();
      process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
    }
    return false;
  }
  if (env[MARK] !== undefined && env[MARK] !== 'system') {
    process.stderr.write(`plum: PLUM_ALLOCATOR="${env[MARK]}" is not understood: unset it, or set it to "system" to keep glibc's default malloc settings\n`);
    process.exitCode = 1;
    return true;
  }
  if (env[MARK] === 'system' || 'MALLOC_MMAP_MAX_' in env || 'GLIBC_TUNABLES' in env || !glibc()) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...env, ...TUNED_MALLOC_ENV, [MARK]: 'child' },
  });
  const forward = (/** @type {NodeJS.Signals} */ sig) => () => child.kill(sig);
  const handlers = { SIGTERM: forward('SIGTERM'), SIGHUP: forward('SIGHUP'), SIGINT: () => {} };
  for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);
  const result = await new Promise((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
  if (result === null) return false; // could not start: run here, untuned
  const { code, signal } = /** @type {{ code: number | null, signal: NodeJS.Signals | null }} */ (result);
  if (signal) process.kill(process.pid, signal);
  process.exitCode = code ?? 1;
  return true;
}
