/**
 * The OpenAI-compatible HTTP API as a Hono app: POST /v1/chat/completions, POST /v1/completions,
 * GET /v1/models, GET /health, GET /metrics. Requests become rows of the scheduler; streamed
 * responses are Server-Sent Events in OpenAI's chunk format, ending with `data: [DONE]`.
 *
 * @example
 * const { app } = createApp({ model: loadModel('models/tiny'), adapters: { tuned: adapter } });
 * await app.request('/v1/models'); // {"object":"list","data":[{"id":"tiny",...},{"id":"tuned",...}]}
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import type { z } from 'zod';
import { type LoadedModel, loadGenerationDefaults } from '../model/load.js';
import type { PeftAdapter } from '../peft/types.js';
import { PlumError } from '../util/errors.js';
import { ApiError, fromZod, unknownModel } from './errors.js';
import { type Shape, type Usage, chatShape, chunk, completion, modelObject, newEnvelope, textShape, toolCallChoice, toolCallDelta, toolCallEnd } from './openai.js';
import { type PromptSpec, chatPrompt, completionBudget, completionPrompts } from './prompts.js';
import { ToolCallStream, parseToolCalls } from './tools.js';
import { type ChatRequest, type CompletionRequest, chatRequest, completionRequest } from './schemas.js';
import { type GenerationResult, Scheduler } from './scheduler.js';

export interface ServeOptions {
  model: LoadedModel;
  /** Id of the base model in requests and /v1/models (default: the model folder's name). */
  modelId?: string;
  /** Adapters by served model id; they share the base model's weights. */
  adapters?: Record<string, PeftAdapter>;
  /** Require `Authorization: Bearer <apiKey>` on /v1/*. */
  apiKey?: string;
  /** Rows decoded together per model (default 8). */
  maxBatch?: number;
  /** Prefix-cache budget in cached token positions (default 8192; 0 = off). */
  prefixCacheTokens?: number;
}

export interface ServedModel {
  id: string;
  adapter: PeftAdapter | null;
}

export interface Serving {
  app: Hono;
  scheduler: Scheduler;
  models: ServedModel[];
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `We could not parse the JSON body of your request (${(e as Error).message}). Send a JSON object.`);
  }
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw fromZod(r.error);
  return r.data;
}

interface Limits {
  param: string;
  requested: number | null;
  fallback: number | null;
  /** Read replies for tool calls (a chat request with tools: tools.ts). */
  toolCalls?: boolean;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function createApp(opts: ServeOptions): Serving {
  const m = opts.model;
  const baseId = opts.modelId ?? basename(resolve(m.dir));
  const models: ServedModel[] = [{ id: baseId, adapter: null }];
  for (const [id, adapter] of Object.entries(opts.adapters ?? {})) {
    if (id === baseId) throw new PlumError(`adapter name "${id}" is the base model's id; choose another name`);
    models.push({ id, adapter });
  }
  const byId = new Map(models.map((s) => [s.id, s]));
  const created = Math.floor(Date.now() / 1000);
  const defaults = loadGenerationDefaults(m.dir);
  const ctx = m.cfg.maxPositionEmbeddings;
  const scheduler = new Scheduler({
    lm: m.lm, tokenizer: m.tokenizer, eosIds: m.eosIds, maxBatch: opts.maxBatch ?? 8, prefixCacheSlots: opts.prefixCacheTokens ?? 8192,
  });
  const app = new Hono();

  app.onError((e, c) => {
    const err = e instanceof ApiError ? e : e instanceof PlumError ? new ApiError(400, e.message) : new ApiError(500, `internal error: ${e.message}`);
    if (err.status >= 500) console.error(e);
    return c.json(err.body(), err.status);
  });
  app.notFound((c) => c.json(new ApiError(404, `Unknown request URL: ${c.req.method} ${c.req.path}`, null, 'unknown_url').body(), 404));
  app.use('*', bodyLimit({ maxSize: 16 << 20, onError: (c) => c.json(new ApiError(413, 'request body larger than 16 MiB').body(), 413) }));

  if (opts.apiKey) {
    const want = digest(opts.apiKey);
    app.use('/v1/*', async (c, next) => {
      const m = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
      if (!m) throw new ApiError(401, "You didn't provide an API key: send it as `Authorization: Bearer <key>`.", null, 'invalid_api_key');
      if (!timingSafeEqual(digest(m[1]!.trim()), want)) throw new ApiError(401, 'Incorrect API key provided.', null, 'invalid_api_key');
      await next();
    });
  }

  const served = (id: string): ServedModel => byId.get(id) ?? (() => { throw unknownModel(id); })();

  app.get('/health', (c) => c.json({ status: 'ok', models: models.map((s) => s.id), ...scheduler.stats() }));
  app.get('/metrics', (c) => {
    const s = scheduler.stats();
    const lines = Object.entries({
      plum_requests_waiting: s.waiting, plum_rows_running: s.running, plum_steps_total: s.steps, plum_generated_tokens_total: s.generated_tokens,
      plum_prefix_cache_hits_total: s.prefix_cache.hits, plum_prefix_cache_misses_total: s.prefix_cache.misses,
      plum_prefix_cache_hit_tokens_total: s.prefix_cache.hit_tokens, plum_prefix_cache_entries: s.prefix_cache.entries,
      plum_prefix_cache_slots: s.prefix_cache.slots, plum_prefix_cache_evictions_total: s.prefix_cache.evictions,
    }).map(([k, v]) => `${k} ${v}`);
    return c.text(lines.join('\n') + '\n', 200, { 'content-type': 'text/plain; version=0.0.4' });
  });
  app.get('/v1/models', (c) => c.json({ object: 'list', data: models.map((s) => modelObject(s.id, created, s.adapter ? baseId : null)) }));
  app.get('/v1/models/:id{.+}', (c) => {
    const s = served(c.req.param('id'));
    return c.json(modelObject(s.id, created, s.adapter ? baseId : null));
  });

  app.post('/v1/chat/completions', async (c) => {
    const body = parse(chatRequest, await readJson(c));
    const s = served(body.model);
    const requested = body.max_completion_tokens ?? body.max_tokens ?? null;
    const prompt = chatPrompt(m.tokenizer, body);
    return respond(c, chatShape, s, [prompt], body, { param: 'messages', requested, fallback: null, toolCalls: prompt.toolCalls });
  });
  app.post('/v1/completions', async (c) => {
    const body = parse(completionRequest, await readJson(c));
    const s = served(body.model);
    const prompts = completionPrompts(m.tokenizer, body, m.cfg.vocabSize);
    return respond(c, textShape, s, prompts, body, { param: 'prompt', requested: body.max_tokens ?? null, fallback: 16 });
  });

  /**
   * Run n choices per prompt and answer as JSON or as an SSE stream. `requested` is the asked
   * completion budget, `fallback` the default one (null = the rest of the context).
   */
  function respond(c: Context, shape: Shape, s: ServedModel, prompts: PromptSpec[], body: ChatRequest | CompletionRequest, limits: Limits): Response | Promise<Response> {
    const extra = (s.adapter?.virtualTokens ?? 0) + (s.adapter?.prefixLength ?? 0);
    const budgets = prompts.map((p) => completionBudget(p.ids.length, extra, ctx, limits.requested, limits.fallback, limits.param));
    const n = body.n ?? 1;
    const temperature = body.temperature ?? defaults.temperature ?? 1;
    const topK = body.top_k != null ? Math.max(0, body.top_k) : temperature > 0 ? (defaults.topK ?? 0) : 0; // vLLM: -1 = all
    const sampling = {
      temperature,
      topP: body.top_p ?? defaults.topP ?? 1,
      topK,
      minP: body.min_p ?? defaults.minP ?? 0,
      repetitionPenalty: body.repetition_penalty ?? defaults.repetitionPenalty ?? 1,
    };
    const seed = body.seed ?? randomInt(2 ** 31);
    const promptTokens = prompts.reduce((a, p) => a + p.ids.length, 0);
    const usageOf = (res: GenerationResult[]): Usage => {
      const completionTokens = res.reduce((a, r) => a + r.completionTokens, 0);
      return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    };
    const start = (onText: (i: number, d: string) => void, onEnd: (i: number, r: GenerationResult) => void): { done: Promise<GenerationResult[]>; cancel: () => void } => {
      const jobs = Array.from({ length: prompts.length * n }, (_, i) => {
        const p = prompts[Math.floor(i / n)]!;
        const job = scheduler.submit({
          model: s.id, adapter: s.adapter, prompt: p.ids, cacheUpTo: p.cacheUpTo, sampling: { ...sampling, seed: seed + i * 7919 },
          maxTokens: budgets[Math.floor(i / n)]!, stop: body.stop, onText: (d) => onText(i, d),
        });
        return { cancel: job.cancel, done: job.done.then((r) => (onEnd(i, r), r)) };
      });
      return { done: Promise.all(jobs.map((j) => j.done)), cancel: () => jobs.forEach((j) => j.cancel()) };
    };
    const env = newEnvelope(shape, s.id);
    // node-server aborts the request's signal when the client goes away before the response ends.
    const signal = c.req.raw.signal;
    const onDisconnect = (cancel: () => void): void => (signal.aborted ? cancel() : signal.addEventListener('abort', cancel, { once: true }));

    if (!body.stream) {
      return (async () => {
        const job = start(() => {}, () => {});
        onDisconnect(job.cancel);
        const res = await job.done;
        const choice = (r: GenerationResult, i: number): Record<string, unknown> => {
          const reply = limits.toolCalls ? parseToolCalls(r.text) : null;
          return reply?.calls.length ? toolCallChoice(i, reply, r.finishReason) : shape.full(i, r.text, r.finishReason);
        };
        return c.json(completion(shape, env, res.map(choice), usageOf(res)));
      })();
    }
    const withUsage = body.stream_options?.include_usage === true;
    return streamSSE(c, async (stream) => {
      let chain = Promise.resolve();
      const send = (data: unknown): void => {
        const text = typeof data === 'string' ? data : JSON.stringify(data);
        chain = chain.then(() => (stream.aborted ? undefined : stream.writeSSE({ data: text }))).catch(() => {});
      };
      const emit = (choice: Record<string, unknown>): void => send(chunk(shape, env, [choice], withUsage ? null : undefined));
      for (let i = 0; i < prompts.length * n; i++) {
        const first = shape.start(i);
        if (first) emit(first);
      }
      // with tools, text that may be a call is held back until the reply ends (tools.ts)
      const calls = limits.toolCalls ? Array.from({ length: prompts.length * n }, () => new ToolCallStream()) : null;
      const onText = (i: number, d: string): void => {
        const text = calls ? calls[i]!.push(d) : d;
        if (text) emit(shape.delta(i, text));
      };
      const onEnd = (i: number, r: GenerationResult): void => {
        const held = calls?.[i]!.finish();
        if (held?.text) emit(shape.delta(i, held.text));
        if (held?.calls.length) {
          emit(toolCallDelta(i, held.calls));
          emit(toolCallEnd(i, r.finishReason));
        } else emit(shape.end(i, r.finishReason));
      };
      const job = start(onText, onEnd);
      stream.onAbort(job.cancel);
      onDisconnect(job.cancel);
      try {
        const res = await job.done;
        if (withUsage) send(chunk(shape, env, [], usageOf(res)));
      } catch (e) {
        console.error(e);
        send(new ApiError(500, `internal error: ${(e as Error).message}`).body());
      }
      send('[DONE]');
      await chain;
    });
  }

  return { app, scheduler, models };
}
