/** `plum serve` as a process: options, startup errors as one `plum:` line, serving, clean exit on SIGTERM. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { REPO_ROOT } from '../testing/shared.js';
import { makeFixture } from './testing.js';

const fx = await makeFixture();
const plum = join(REPO_ROOT, 'bin', 'plum.js');

test('plum serve --adapter NAME=DIR serves the base and the adapter, and exits 0 on SIGTERM', async () => {
  const child = spawn(process.execPath, [plum, 'serve', '--model', fx.modelDir, '--model-id', 'base', '--adapter', `tuned=${fx.adapterDirs.soft}`, '--port', '0'], { cwd: REPO_ROOT });
  let err = '';
  child.stderr.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: string) => {
      err += d;
      const m = /plum serve: (http:\/\/\S+)\/v1 \(models: base, tuned\)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(`exited early: ${err}`)));
  });
  try {
    const models = await (await fetch(`${url}/v1/models`)).json();
    assert.deepEqual(models.data.map((m: { id: string }) => m.id), ['base', 'tuned']);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'tuned', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
    });
    assert.equal((await res.json()).usage.completion_tokens <= 3, true);
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

test('startup mistakes are one plum: line and exit 1', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [plum, 'serve', '--model', fx.modelDir, '--port', '0', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  const cases: Array<[string[], RegExp]> = [
    [['--adapter', fx.adapterDirs.lora], /^plum: serve: --adapter: must be NAME=DIR/],
    [['--adapter', `x=${join(fx.root, 'missing')}`], /^plum: .*missing: adapter folder not found/],
    [['--adapter', `a=${fx.adapterDirs.lora}`, '--adapter', `a=${fx.adapterDirs.soft}`], /^plum: serve: --adapter: the name "a" is given twice/],
    [['--adapter', `tiny=${fx.adapterDirs.lora}`], /^plum: adapter name "tiny" is the base model's id/],
    [['--max-batch', '0'], /^plum: serve: --max-batch: /],
  ];
  for (const [args, want] of cases) {
    const r = run(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
