/** Timing helpers: medians, a backend that times graph runs, quiet samples on shared machines. */
import { readFileSync } from 'node:fs';
import type { Value } from '../src/graph/ir.js';
import type { Backend, CompiledGraph, HostArray } from '../src/runtime/backend.js';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median milliseconds of `n` calls of `f` (each awaited). */
export async function medianMs(f: () => unknown, n: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) ts.push((await seconds(f)) * 1e3);
  return median(ts);
}

export async function seconds(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1e3;
}

/**
 * Wraps a backend and records how long the latest `run` of any compiled graph took (feeds in,
 * outputs copied out). Lets a benchmark split an API call into graph time and host time without
 * touching src/.
 */
export class TimedBackend implements Backend {
  lastRunSeconds = 0;
  constructor(private readonly inner: Backend) {}

  async compile(outputs: Record<string, Value>, opts?: { name?: string }): Promise<CompiledGraph> {
    const c = await this.inner.compile(outputs, opts);
    return {
      inputNames: c.inputNames,
      outputNames: c.outputNames,
      run: async (feeds: Record<string, HostArray>) => {
        const t = performance.now();
        const out = await c.run(feeds);
        this.lastRunSeconds = (performance.now() - t) / 1e3;
        return out;
      },
    };
  }
}

/** Busy CPU seconds of the whole machine (all cores, from /proc/stat); null off Linux. */
function machineBusySeconds(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
    return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ
  } catch {
    return null;
  }
}

/** CPU seconds used by other processes since `since` (a snapshot from foreignSnapshot). */
function foreignSnapshot() {
  return { busy: machineBusySeconds(), self: process.cpuUsage() };
}
function foreignSince(since: ReturnType<typeof foreignSnapshot>): number {
  const busy = machineBusySeconds();
  if (busy === null || since.busy === null) return 0;
  const self = process.cpuUsage(since.self);
  return busy - since.busy - (self.user + self.system) / 1e6;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Busy-wait 10 ms before switching to another ORT session: a session's idle intra-op threads
 * spin for a few ms after each run and would take the core the next session needs.
 */
export function settle(ms = 10): void {
  const t0 = performance.now();
  while (performance.now() - t0 < ms);
}

/** Wait (at most maxS) until other processes used under 5% of a core for `windowS` seconds. */
export async function waitQuiet(windowS = 0.5, maxS = 5): Promise<void> {
  const t0 = performance.now();
  while ((performance.now() - t0) / 1e3 < maxS) {
    const snap = foreignSnapshot();
    await sleep(windowS * 1e3);
    if (foreignSince(snap) <= 0.05 * windowS + 0.01) return;
  }
}

/**
 * Samples taken while the machine was otherwise quiet. The project's machines are shared (other
 * people's test runs land on the same 2 cores), and an ORT thread that loses its core stalls the
 * whole parallel region, so a busy neighbour can make one run 10x slower. A sample is quiet when
 * other processes used at most `tolerance` s + 5% of one core during it; after a noisy sample
 * the next one first waits (up to 5 s) for a quiet half second and runs once untimed.
 */
export class QuietSampler<T> {
  readonly quiet: T[] = [];
  readonly all: T[] = [];
  private lastNoisy = false;
  /** `budgetS`: after this many seconds, stop waiting and retrying (see `expired`). */
  constructor(
    readonly budgetS = 60,
    readonly tolerance = 0.02,
  ) {
    this.deadline = performance.now() + budgetS * 1e3;
  }
  private readonly deadline: number;

  /** Past the time budget: take what was collected (at least one sample). */
  get expired(): boolean {
    return performance.now() > this.deadline && this.all.length > 0;
  }

  async sample(f: () => Promise<T>): Promise<void> {
    if (this.lastNoisy && !this.expired) {
      await waitQuiet();
      await f(); // untimed: after sleeping, the VM's cores wake slowly
    }
    const snap = foreignSnapshot();
    const t0 = performance.now();
    const v = await f();
    const wall = (performance.now() - t0) / 1e3;
    this.lastNoisy = foreignSince(snap) > this.tolerance + 0.05 * wall;
    this.all.push(v);
    if (!this.lastNoisy) this.quiet.push(v);
  }

  /** Sample until n quiet samples, 4n tries, or the time budget is spent. */
  async collect(n: number, f: () => Promise<T>): Promise<T[]> {
    while (this.quiet.length < n && this.all.length < 4 * n && !this.expired) await this.sample(f);
    return this.values(n);
  }

  /** The quiet samples, or every sample when fewer than min(3, n) were quiet. */
  values(n: number): T[] {
    return this.quiet.length >= Math.min(3, n) ? this.quiet : this.all;
  }

  stats(n: number) {
    return { samples: this.values(n).length, rejectedNoisy: this.all.length - this.quiet.length, noisy: this.quiet.length < n ? 1 : 0 };
  }
}
