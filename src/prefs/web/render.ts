/**
 * Server-rendered HTML of the vote page. `html` escapes every interpolated value; the stage
 * (`#stage`: progress, prompt, candidate cards, actions) is what htmx swaps after each action.
 */
import { html } from 'hono/html';
import type { CandidateSet } from '../candidates.js';
import type { Vote, VoteProgress } from '../store.js';

type Html = ReturnType<typeof html>;

export interface Flash {
  tone: 'ok' | 'error';
  text: string;
}

export interface StageView {
  set: CandidateSet | null;
  /** 1-based position of `set` in the file. */
  position: number;
  progress: VoteProgress;
  /** This voter's active votes on `set`, oldest first. */
  mine: Vote[];
  flash?: Flash;
}

/** The whole page around a body (the voter form or the stage). */
export function page(voter: string | null, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Plum · votes</title>
<link rel="stylesheet" href="/assets/vote.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/vote.js" defer></script>
</head>
<body>
<header class="top">
  <div class="brand"><span class="dot"></span>Plum <span class="sub">preference votes</span></div>
  ${voter === null ? '' : html`<form class="who" method="post" action="/voter/clear">
    <span>Voting as <strong data-voter>${voter}</strong></span>
    <button class="link" type="submit">switch voter</button>
  </form>`}
</header>
${body}
${helpDialog()}
</body>
</html>`;
}

export function voterForm(known: string[], error?: string): Html {
  return html`<main class="narrow">
  <form class="panel" method="post" action="/voter">
    <h1>Who is voting?</h1>
    <p class="muted">Your name is kept in a cookie on this browser and stored with each vote.</p>
    <label for="name">Name</label>
    <div class="row">
      <input id="name" name="name" autocomplete="username" maxlength="64" required autofocus>
      <button class="btn primary" type="submit">Start voting</button>
    </div>
    ${error ? html`<p class="flash error">${error}</p>` : ''}
    ${known.length ? html`<p class="muted">Continue as: ${known.map((v) => html`<button class="chip" name="pick" value="${v}" formnovalidate>${v}</button> `)}</p>` : ''}
  </form>
</main>`;
}

/** Latest best, worst, ranking and all-bad among a voter's votes on one prompt. */
function marks(mine: Vote[]): { best?: string; worst?: string; ranking?: string[]; allBad: boolean } {
  const m: { best?: string; worst?: string; ranking?: string[]; allBad: boolean } = { allBad: false };
  for (const v of mine) {
    if (v.kind === 'best') m.best = v.candidateId!;
    else if (v.kind === 'worst') m.worst = v.candidateId!;
    else if (v.kind === 'rank') m.ranking = v.ranking!;
    else if (v.kind === 'all-bad') m.allBad = true;
  }
  return m;
}

function progressBar(p: VoteProgress): Html {
  const pct = p.total ? Math.round((100 * p.voted) / p.total) : 0;
  const o = p.overall;
  return html`<div class="progress" data-voted="${p.voted}" data-total="${p.total}">
    <div class="meter" role="progressbar" aria-valuemin="0" aria-valuemax="${p.total}" aria-valuenow="${p.voted}"><span style="width:${pct}%"></span></div>
    <p><strong>${p.voted}</strong> of ${p.total} prompts voted by you
      <span class="muted">· ${o.votes} vote${o.votes === 1 ? '' : 's'} from ${o.voters} voter${o.voters === 1 ? '' : 's'} on ${o.prompts} prompt${o.prompts === 1 ? '' : 's'} overall</span></p>
  </div>`;
}

function card(set: CandidateSet, i: number, m: ReturnType<typeof marks>): Html {
  const c = set.candidates[i]!;
  const n = i + 1;
  const key = n <= 9 ? String(n) : null;
  const rank = m.ranking ? m.ranking.indexOf(c.id) + 1 : 0;
  const state = [c.id === m.best ? 'is-best' : '', c.id === m.worst ? 'is-worst' : '', m.allBad ? 'is-bad' : ''].filter(Boolean).join(' ');
  return html`<li class="card ${state}" data-id="${c.id}" data-n="${n}">
    <div class="card-head">
      <span class="num">${n}</span>
      ${c.id === m.best ? html`<span class="tag best">Best</span>` : ''}
      ${c.id === m.worst ? html`<span class="tag worst">Worst</span>` : ''}
      ${rank > 0 ? html`<span class="tag rank">Ranked #${rank}</span>` : ''}
      <span class="rank-badge" aria-hidden="true"></span>
    </div>
    <div class="text">${c.text}</div>
    <div class="card-actions">
      <button class="btn best" name="action" value="best|${c.id}" ${key ? html`data-key="${key}"` : ''}>Best${key ? html` <kbd>${key}</kbd>` : ''}</button>
      <button class="btn worst" name="action" value="worst|${c.id}" ${key ? html`data-key="shift-${key}"` : ''}>Worst${key ? html` <kbd>⇧${key}</kbd>` : ''}</button>
    </div>
  </li>`;
}

function conversation(set: CandidateSet): Html | string {
  const earlier = (set.messages ?? []).slice(0, -1);
  if (!earlier.length) return '';
  return html`<details class="context"><summary>Conversation before this prompt (${earlier.length} message${earlier.length === 1 ? '' : 's'})</summary>
    ${earlier.map((msg) => html`<div class="msg"><span class="role">${msg.role}</span><div class="text">${msg.content}</div></div>`)}
  </details>`;
}

export function stage(v: StageView): Html {
  const flash = v.flash ? html`<p class="flash ${v.flash.tone}" role="status">${v.flash.text}</p>` : '';
  const undo = html`<button class="btn" name="action" value="undo|" data-key="u">Undo my last vote <kbd>u</kbd></button>`;
  if (v.set === null) {
    return html`<main id="stage" hx-target="#stage" hx-swap="outerHTML">
  ${progressBar(v.progress)}
  ${flash}
  <form class="ballot done" method="post" action="/ballot" hx-post="/ballot" hx-sync="this:drop">
    <input type="hidden" name="promptId" value="">
    <div class="panel"><h1>All ${v.progress.total} prompts voted — thank you!</h1>
    <p class="muted">Votes are saved as you go; you can close this tab.</p>${undo}</div>
  </form>
</main>`;
  }
  const set = v.set;
  const m = marks(v.mine);
  return html`<main id="stage" hx-target="#stage" hx-swap="outerHTML" data-prompt="${set.promptId}" data-k="${set.candidates.length}">
  ${progressBar(v.progress)}
  ${flash}
  <form class="ballot" method="post" action="/ballot" hx-post="/ballot" hx-sync="this:drop">
    <input type="hidden" name="promptId" value="${set.promptId}">
    <input type="hidden" name="ranking" value="">
    <section class="prompt">
      <div class="label">Prompt ${v.position} of ${v.progress.total} <code>${set.promptId}</code>
        ${m.allBad ? html`<span class="tag bad">You marked all bad</span>` : ''}</div>
      ${conversation(set)}
      <div class="text">${set.prompt}</div>
    </section>
    <p class="rank-hint">Ranking: click the candidates from best to worst (or press their numbers). <kbd>Esc</kbd> cancels.</p>
    <ol class="cards">${set.candidates.map((_, i) => card(set, i, m))}</ol>
    <div class="toolbar">
      <button class="btn" type="button" data-key="r" data-rank-toggle>Rank all <kbd>r</kbd></button>
      <button class="btn bad" name="action" value="all-bad|" data-key="x">All bad <kbd>x</kbd></button>
      <button class="btn" name="action" value="skip|" data-key="s">Skip <kbd>s</kbd></button>
      ${undo}
      <button name="action" value="rank|" data-rank-submit hidden>Submit ranking</button>
      <span class="spacer"></span>
      <button class="link" type="button" data-help>Shortcuts <kbd>?</kbd></button>
    </div>
  </form>
</main>`;
}

function helpDialog(): Html {
  const rows: Array<[string, string]> = [
    ['1 … 9', 'this candidate is the best (saves, then the next prompt)'],
    ['⇧1 … ⇧9', 'this candidate is the worst (saves; pick the best after it)'],
    ['r', 'rank all: then press or click candidates from best to worst'],
    ['x', 'all candidates are bad'],
    ['s', 'skip this prompt for now'],
    ['u', 'undo my last vote'],
    ['?', 'show or hide this help'],
  ];
  return html`<dialog id="help">
  <h2>Keyboard shortcuts</h2>
  <table>${rows.map(([k, what]) => html`<tr><td><kbd>${k}</kbd></td><td>${what}</td></tr>`)}</table>
  <form method="dialog"><button class="btn">Close <kbd>Esc</kbd></button></form>
</dialog>`;
}
