/**
 * The HTML side of the vote server: the voter's name lives in a cookie; `GET /` shows the
 * voter's next unvoted prompt (or `?p=ID`); every button of the ballot form posts to `/ballot`
 * as `action=KIND|CANDIDATE` (htmx swaps `#stage`; without JavaScript the form posts and redirects).
 */
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { VoteError, nextPrompt, type NewVote, type Vote } from '../store.js';
import { voterName, type VoteContext } from './context.js';
import { page, stage, voterForm, type Flash } from './render.js';

const COOKIE = 'plum_voter';

function cookieVoter(c: Context): string | null {
  const r = voterName.safeParse(getCookie(c, COOKIE));
  return r.success ? r.data : null;
}

function describe(ctx: VoteContext, v: Vote): string {
  const set = ctx.byId.get(v.promptId);
  const n = (id: string | null) => (set ? set.candidates.findIndex((c) => c.id === id) + 1 : 0) || id;
  const where = set ? `prompt ${ctx.sets.indexOf(set) + 1}` : `prompt ${v.promptId}`;
  switch (v.kind) {
    case 'rank':
      return `ranking ${v.ranking!.map(n).join(' > ')} on ${where}`;
    case 'all-bad':
      return `all bad on ${where}`;
    default:
      return `${v.kind} = candidate ${n(v.candidateId)} on ${where}`;
  }
}

interface Outcome {
  /** The prompt to show next (null: the voter's next unvoted one). */
  show: string | null;
  flash?: Flash;
}

/** Carry out one ballot action for `voter`. */
function act(ctx: VoteContext, voter: string, form: Record<string, string | File>): Outcome {
  const promptId = typeof form.promptId === 'string' ? form.promptId : '';
  const action = typeof form.action === 'string' ? form.action : '';
  const bar = action.indexOf('|');
  const kind = bar < 0 ? action : action.slice(0, bar);
  const arg = bar < 0 ? '' : action.slice(bar + 1);
  if (kind === 'undo') {
    const undone = ctx.store.undoLast(voter);
    if (!undone) return { show: promptId || null, flash: { tone: 'error', text: 'Nothing to undo: you have no votes left.' } };
    return { show: ctx.byId.has(undone.promptId) ? undone.promptId : null, flash: { tone: 'ok', text: `Undone: ${describe(ctx, undone)}.` } };
  }
  if (kind === 'skip') {
    const next = nextPrompt(ctx.sets, ctx.store.votedPrompts(voter), promptId);
    return { show: next?.promptId ?? null };
  }
  const v: NewVote = { voter, promptId, kind: kind as NewVote['kind'] };
  if (kind === 'best' || kind === 'worst') v.candidateId = arg;
  else if (kind === 'rank') v.ranking = parseRanking(form.ranking);
  else if (kind !== 'all-bad') return { show: promptId || null, flash: { tone: 'error', text: `Unknown action "${action}".` } };
  try {
    const vote = ctx.cast(v);
    const flash: Flash = { tone: 'ok', text: `Saved ${describe(ctx, vote)}. Press u to undo.` };
    // A worst pick keeps the prompt on screen so the best can be picked too.
    if (kind === 'worst') return { show: promptId, flash };
    return { show: nextPrompt(ctx.sets, ctx.store.votedPrompts(voter), promptId)?.promptId ?? null, flash };
  } catch (e) {
    if (!(e instanceof VoteError)) throw e;
    return { show: ctx.byId.has(promptId) ? promptId : null, flash: { tone: 'error', text: `Not saved: ${e.message}.` } };
  }
}

function parseRanking(raw: unknown): string[] | null {
  try {
    const r: unknown = JSON.parse(String(raw));
    return Array.isArray(r) && r.every((x) => typeof x === 'string') ? r : null;
  } catch {
    return null;
  }
}

function renderStage(ctx: VoteContext, voter: string, show: string | null, flash?: Flash) {
  const set = (show !== null ? ctx.byId.get(show) : undefined) ?? nextPrompt(ctx.sets, ctx.store.votedPrompts(voter));
  return stage({
    set,
    position: set ? ctx.sets.indexOf(set) + 1 : 0,
    progress: ctx.progress(voter),
    mine: set ? ctx.store.votes({ voter, promptId: set.promptId }) : [],
    flash,
  });
}

export function pageRoutes(ctx: VoteContext): Hono {
  const app = new Hono();

  app.get('/', (c) => {
    const voter = cookieVoter(c);
    if (voter === null) return c.html(page(null, voterForm(ctx.store.voters())));
    return c.html(page(voter, renderStage(ctx, voter, c.req.query('p') ?? null)));
  });

  app.post('/voter', async (c) => {
    const form = await c.req.parseBody();
    // A "continue as" chip sends `pick`; the text field sends `name`.
    const r = voterName.safeParse(form.pick ?? form.name);
    if (!r.success) return c.html(page(null, voterForm(ctx.store.voters(), `Name ${r.error.issues[0]!.message}.`)), 400);
    setCookie(c, COOKIE, r.data, { path: '/', httpOnly: true, sameSite: 'Lax', maxAge: 365 * 24 * 3600 });
    return c.redirect('/', 303);
  });

  app.post('/voter/clear', (c) => {
    deleteCookie(c, COOKIE, { path: '/' });
    return c.redirect('/', 303);
  });

  app.post('/ballot', async (c) => {
    const voter = cookieVoter(c);
    const htmx = c.req.header('HX-Request') === 'true';
    if (voter === null) {
      if (htmx) return c.body(null, 200, { 'HX-Redirect': '/' });
      return c.redirect('/', 303);
    }
    const { show, flash } = act(ctx, voter, await c.req.parseBody());
    const url = show ? `/?p=${encodeURIComponent(show)}` : '/';
    if (!htmx) return c.redirect(url, 303);
    c.header('HX-Push-Url', url);
    return c.html(renderStage(ctx, voter, show, flash));
  });

  return app;
}
