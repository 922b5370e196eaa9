// Runs the type check, then every *.test.ts under src/ with node:test + tsx (Node 20 does not expand globs for --test).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filter = process.argv.slice(2);
// The whole suite starts with the type check (tsx runs the tests without one): a test file or
// bench that no longer type-checks fails `npm test`. A filtered run skips it.
if (!filter.length) {
  const tsc = spawnSync(process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', '.'], { stdio: 'inherit' });
  if (tsc.status !== 0) {
    console.error('npm test: the type check failed (npx tsc --noEmit -p . shows the errors); no tests were run');
    process.exit(tsc.status ?? 1);
  }
}
let files = walk('src', []).sort();
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
