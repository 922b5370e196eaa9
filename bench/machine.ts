/** What a benchmark ran on, and where its results go (bench/results/<name>.json). */
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export function machineInfo(threads = availableParallelism()) {
  let cpu = 'unknown';
  try {
    const l = execSync('lscpu', { encoding: 'utf8' });
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(l)?.[1]?.trim() ?? '?';
    cpu = `${field('Model name')} (family ${field('CPU family')}, model ${field('Model')})`;
  } catch {
    // not Linux: leave unknown
  }
  return { cpu, cores: availableParallelism(), threads, node: process.version, ort: ort.env.versions.node ?? 'unknown' };
}

/** Writes bench/results/<prefix><date>.json and returns its path. */
export function writeResult(prefix: string, date: string, result: unknown): string {
  const outDir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${prefix}${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}
