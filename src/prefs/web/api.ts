/**
 * The JSON API of the vote server. Bodies are validated with zod; every mistake is a 4xx with
 * `{"error": {"message": "...", "field": "..." | null}}`, and the server keeps serving.
 *
 * @example
 * POST /api/votes {"voter":"ann","promptId":"p-1","kind":"best","candidateId":"p-1-0"}  -> 201 {vote}
 * POST /api/undo  {"voter":"ann"}                                                   -> 200 {"undone": {vote} | null}
 * GET  /api/progress?voter=ann  -> {"voter":"ann","voted":1,"total":40,"overall":{"votes":7,"voters":2,"prompts":5}}
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { VOTE_KINDS, VoteError } from '../store.js';
import { voterName, type VoteContext } from './context.js';

export function apiError(c: Context, status: ContentfulStatusCode, message: string, field: string | null = null): Response {
  return c.json({ error: { message, field } }, status);
}

const voteBody = z.object({
  voter: voterName,
  promptId: z.string({ error: 'is required (a prompt id from the candidates file)' }).min(1, 'is empty; give a prompt id'),
  kind: z.enum(VOTE_KINDS, { error: `must be one of ${VOTE_KINDS.join(', ')}` }),
  candidateId: z.string({ error: 'must be a string (a candidate id) or null' }).nullish(),
  ranking: z.array(z.string(), { error: 'must be an array of candidate ids, best first' }).nullish(),
});

const undoBody = z.object({ voter: voterName });

type Parsed<T> = { ok: true; data: T } | { ok: false; response: Response };

/** Read a JSON body and validate it; a malformed body or a bad field becomes a 400 response. */
async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<Parsed<z.infer<S>>> {
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch (e) {
    return { ok: false, response: apiError(c, 400, `body is not valid JSON (${(e as Error).message}); send a JSON object`) };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, response: apiError(c, 400, 'body must be a JSON object') };
  }
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.map(String).join('.') || null;
    return { ok: false, response: apiError(c, 400, `${field ?? 'body'}: ${issue.message}`, field) };
  }
  return { ok: true, data: r.data };
}

export function apiRoutes(ctx: VoteContext): Hono {
  const api = new Hono();

  api.post('/votes', async (c) => {
    const p = await parseBody(c, voteBody);
    if (!p.ok) return p.response;
    try {
      return c.json(ctx.cast(p.data), 201);
    } catch (e) {
      if (e instanceof VoteError) return apiError(c, e.field === 'promptId' ? 404 : 400, e.message, e.field);
      throw e;
    }
  });

  api.post('/undo', async (c) => {
    const p = await parseBody(c, undoBody);
    if (!p.ok) return p.response;
    return c.json({ undone: ctx.store.undoLast(p.data.voter) });
  });

  api.get('/progress', (c) => {
    const raw = c.req.query('voter');
    if (raw === undefined) return c.json(ctx.progress(null));
    const r = voterName.safeParse(raw);
    if (!r.success) return apiError(c, 400, `voter: ${r.error.issues[0]!.message}`, 'voter');
    return c.json(ctx.progress(r.data));
  });

  api.notFound((c) => apiError(c, 404, `no such API route: ${c.req.method} ${c.req.path}`));
  return api;
}
