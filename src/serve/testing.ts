/**
 * Test fixtures for the server: a tiny random model with a LoRA, a soft-prompt and a prefix-tuning adapter saved
 * beside it, and an in-process server on a free localhost port.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel } from '../model/init.js';
import { type LoadedModel, loadModel } from '../model/load.js';
import { baseModelOf } from '../peft/base.js';
import { loadAdapter, saveAdapter } from '../peft/io.js';
import { createAdapter } from '../peft/registry.js';
import type { MethodConfig, PeftAdapter } from '../peft/types.js';
import { type ServeOptions, type Serving, createApp } from './app.js';
import { type RunningServer, listen } from './server.js';

export type AdapterName = 'lora' | 'soft' | 'prefix';

export interface Fixture {
  root: string;
  modelDir: string;
  model: LoadedModel;
  /** Saved adapter folders and the adapters loaded back from them. */
  adapterDirs: Record<AdapterName, string>;
  adapters: Record<AdapterName, PeftAdapter>;
}

const configs: Record<AdapterName, MethodConfig> = {
  lora: { kind: 'lora', r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'], rslora: false },
  soft: { kind: 'soft-prompt', virtualTokens: 5, init: 'vocab' },
  prefix: { kind: 'prefix', virtualTokens: 3, init: 'random' },
};

const WEIGHT_SCALE = 12;

export async function makeFixture(seed = 11): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'plum-serve-'));
  const modelDir = join(root, 'tiny');
  initModel({ preset: 'tiny', arch: 'llama', seed, out: modelDir });
  const model = loadModel(modelDir);
  // initModel's weights (std 0.02) give near-uniform logits and one repeated token; larger
  // weights make greedy outputs varied, so that comparisons between requests mean something.
  for (const [name, w] of model.lm.weights) if (!name.endsWith('norm.weight')) for (let i = 0; i < w.length; i++) w[i]! *= WEIGHT_SCALE;
  const base = baseModelOf(model);
  const adapterDirs = { lora: join(root, 'lora'), soft: join(root, 'soft'), prefix: join(root, 'prefix') };
  const adapters = {} as Record<AdapterName, PeftAdapter>;
  for (const name of ['lora', 'soft', 'prefix'] as const) {
    const a = await createAdapter(configs[name], base, seed + 1);
    // LoRA B starts at zero (the identity): perturb every tensor so the adapter changes outputs.
    let k = 0;
    for (const p of a.params) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.5 * Math.sin(++k);
    saveAdapter(adapterDirs[name], a, base, modelDir);
    adapters[name] = loadAdapter(adapterDirs[name], base);
  }
  return { root, modelDir, model, adapterDirs, adapters };
}

export interface TestServer extends RunningServer, Serving {}

/** createApp + listen on 127.0.0.1 at a free port; `close()` after the test. */
export async function startTestServer(opts: ServeOptions): Promise<TestServer> {
  const serving = createApp(opts);
  const server = await listen(serving.app, { port: 0, host: '127.0.0.1' });
  return { ...serving, ...server };
}

/** POST JSON and return status and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

/** Read an SSE response into its `data:` payloads, chunk by chunk as they arrive. */
export async function readSse(res: Response, onData?: (data: string) => void): Promise<string[]> {
  const out: string[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trimStart();
        out.push(data);
        onData?.(data);
      }
    }
  }
  return out;
}
