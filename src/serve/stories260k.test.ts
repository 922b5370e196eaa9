/** A real model through the server: stories260K's greedy story equals llama2.c's, byte for byte, for concurrent requests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c } from '../model/llama2c.js';
import { loadModel } from '../model/load.js';
import { SKIP_NO_SHARED, sharedPath } from '../testing/shared.js';
import { postJson, readSse, startTestServer } from './testing.js';

const modelBin = sharedPath('models/stories260K/stories260K.bin');
const tokBin = sharedPath('models/stories260K/tok512.bin');
const greedyTxt = sharedPath('reference/stories260K/greedy_t0_n200_llama2c_test_all.txt');
const skip = !(modelBin && tokBin && greedyTxt) ? SKIP_NO_SHARED : false;

test('4 concurrent greedy completions from BOS (2 streamed) all equal llama2.c\'s output', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plum-s260-serve-'));
  convertLlama2c({ model: modelBin!, tokenizer: tokBin!, out: dir });
  const srv = await startTestServer({ model: loadModel(dir), modelId: 'stories' });
  try {
    const body = { model: 'stories', prompt: '', temperature: 0, max_tokens: 200 };
    const texts = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        if (i % 2) return (await postJson(`${srv.url}/v1/completions`, body)).json.choices[0].text as string;
        const res = await fetch(`${srv.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }) });
        return (await readSse(res)).slice(0, -1).map((d) => JSON.parse(d).choices[0].text).join('');
      }),
    );
    const want = readFileSync(greedyTxt!, 'utf8');
    for (const t of texts) assert.equal(t, want);
  } finally {
    await srv.close();
  }
});
