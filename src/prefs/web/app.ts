/**
 * The vote web app: HTML pages (`/`), the JSON API (`/api`) and static assets (`/assets`: the
 * page's CSS and script, and htmx served from node_modules — no CDN, no build step).
 *
 * @example
 * const app = createVoteApp({ sets: readCandidates('candidates.jsonl'), store: VoteStore.open('votes.sqlite') });
 * const res = await app.request('/api/progress'); // in-process, or serve it with startVoteServer
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Hono } from 'hono';
import type { CandidateSet } from '../candidates.js';
import type { VoteStore } from '../store.js';
import { apiError, apiRoutes } from './api.js';
import { voteContext } from './context.js';
import { pageRoutes } from './pages.js';

export interface VoteAppOptions {
  sets: readonly CandidateSet[];
  store: VoteStore;
}

interface Asset {
  body: string;
  type: string;
}

function loadAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const local = (name: string) => readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8');
  return new Map<string, Asset>([
    ['htmx.min.js', { body: readFileSync(require.resolve('htmx.org/dist/htmx.min.js'), 'utf8'), type: 'text/javascript; charset=utf-8' }],
    ['vote.js', { body: local('vote.js'), type: 'text/javascript; charset=utf-8' }],
    ['vote.css', { body: local('vote.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

export function createVoteApp(opts: VoteAppOptions): Hono {
  const ctx = voteContext(opts.sets, opts.store);
  const assets = loadAssets();
  const app = new Hono();

  app.get('/assets/:name', (c) => {
    const a = assets.get(c.req.param('name'));
    if (!a) return c.text('not found', 404);
    return c.body(a.body, 200, { 'Content-Type': a.type, 'Cache-Control': 'no-cache' });
  });
  app.route('/api', apiRoutes(ctx));
  app.route('/', pageRoutes(ctx));

  app.notFound((c) => (c.req.path.startsWith('/api/') ? apiError(c, 404, `no such API route: ${c.req.method} ${c.req.path}`) : c.text('not found', 404)));
  app.onError((err, c) => {
    // A bug or a store failure: report it, keep serving.
    process.stderr.write(`plum vote: ${c.req.method} ${c.req.path}: ${err.stack ?? err.message}\n`);
    if (c.req.path.startsWith('/api/')) return apiError(c, 500, `internal error: ${err.message}`);
    return c.text(`internal error: ${err.message}`, 500);
  });
  return app;
}
