import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { VoteStore } from '../store.js';
import { startVoteServer, type VoteServer } from './server.js';
import { SAMPLE_SETS, scratch, type Scratch } from './testing.js';

let tmp: Scratch;
let store: VoteStore;
let server: VoteServer;

before(async () => {
  tmp = scratch();
  store = VoteStore.open(tmp.store);
  server = await startVoteServer({ sets: SAMPLE_SETS, store, port: 0 });
});
after(async () => {
  await server.close();
  store.close();
  tmp.cleanup();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; res: Response }> {
  const res = await fetch(new URL(path, server.url), {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, res };
}

test('serves on a random free localhost port', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.notEqual(server.port, 0);
});

test('POST /api/votes casts (201 with the vote), POST /api/undo undoes, GET /api/progress counts', async () => {
  const a = await call('POST', '/api/votes', { voter: 'ann', promptId: 'p-1', kind: 'best', candidateId: 'p-1-2' });
  assert.equal(a.status, 201);
  assert.deepEqual({ ...a.json, id: 0, createdAt: '' }, { id: 0, voter: 'ann', promptId: 'p-1', kind: 'best', candidateId: 'p-1-2', ranking: null, createdAt: '' });
  const r = await call('POST', '/api/votes', { voter: 'ann', promptId: 'p-2', kind: 'rank', ranking: ['p-2-1', 'p-2-0', 'p-2-2'] });
  assert.equal(r.status, 201);
  assert.deepEqual(r.json.ranking, ['p-2-1', 'p-2-0', 'p-2-2']);
  assert.equal((await call('POST', '/api/votes', { voter: 'bob', promptId: 'p-1', kind: 'all-bad', candidateId: null })).status, 201);
  assert.deepEqual((await call('GET', '/api/progress?voter=ann')).json, { voter: 'ann', voted: 2, total: 3, overall: { votes: 3, voters: 2, prompts: 2 } });

  const u = await call('POST', '/api/undo', { voter: 'ann' });
  assert.equal(u.status, 200);
  assert.equal(u.json.undone.id, r.json.id);
  assert.deepEqual(store.votes({ voter: 'ann' }).map((v) => v.id), [a.json.id]);
  assert.equal((await call('GET', '/api/progress?voter=ann')).json.voted, 1);
  assert.equal((await call('POST', '/api/undo', { voter: 'ann' })).json.undone.id, a.json.id);
  assert.deepEqual((await call('POST', '/api/undo', { voter: 'ann' })).json, { undone: null });
  assert.deepEqual((await call('GET', '/api/progress')).json, { voter: null, voted: 0, total: 3, overall: { votes: 1, voters: 1, prompts: 1 } });
});

test('every bad request is a 4xx with {"error": {message, field}} and the server keeps serving', async () => {
  const before = store.votes().length;
  const cases: Array<[string, string, unknown, number, string | null, RegExp]> = [
    ['POST', '/api/votes', '{"voter": "ann", ', 400, null, /^body is not valid JSON \(.*\); send a JSON object$/],
    ['POST', '/api/votes', '', 400, null, /^body is not valid JSON/],
    ['POST', '/api/votes', [1, 2], 400, null, /^body must be a JSON object$/],
    ['POST', '/api/votes', { promptId: 'p-1', kind: 'best', candidateId: 'p-1-0' }, 400, 'voter', /^voter: is required \(the voter's name\)$/],
    ['POST', '/api/votes', { voter: '  ', promptId: 'p-1', kind: 'best', candidateId: 'p-1-0' }, 400, 'voter', /^voter: is empty/],
    ['POST', '/api/votes', { voter: 'ann', promptId: 'p-1', kind: 'best', candidateId: 'p-2-0' }, 400, 'candidateId', /^candidate "p-2-0" is not a candidate of prompt "p-1" \(one of p-1-0, p-1-1, p-1-2\)$/],
    ['POST', '/api/votes', { voter: 'ann', promptId: 'p-1', kind: 'best' }, 400, 'candidateId', /needs candidateId/],
    ['POST', '/api/votes', { voter: 'ann', promptId: 'nope', kind: 'best', candidateId: 'p-1-0' }, 404, 'promptId', /^prompt "nope" is not in the candidates file$/],
    ['POST', '/api/votes', { voter: 'ann', kind: 'all-bad' }, 400, 'promptId', /^promptId: is required/],
    ['POST', '/api/votes', { voter: 'ann', promptId: 'p-1', kind: 'meh' }, 400, 'kind', /^kind: must be one of best, worst, rank, all-bad, up, down$/],
    ['POST', '/api/votes', { voter: 'ann', promptId: 'p-1', kind: 'rank', ranking: ['p-1-0', 'p-1-1'] }, 400, 'ranking', /each candidate of prompt "p-1" once/],
    ['POST', '/api/votes', { voter: 'ann', promptId: 'p-1', kind: 'rank', ranking: 'p-1-0' }, 400, 'ranking', /^ranking: must be an array/],
    ['POST', '/api/undo', {}, 400, 'voter', /^voter: is required/],
    ['POST', '/api/undo', 'nonsense', 400, null, /^body is not valid JSON/],
    ['GET', '/api/progress?voter=', undefined, 400, 'voter', /^voter: is empty/],
    ['GET', '/api/nope', undefined, 404, null, /^no such API route: GET \/api\/nope$/],
  ];
  for (const [method, path, body, status, field, message] of cases) {
    const what = `${method} ${path} ${JSON.stringify(body)}`;
    const r = await call(method, path, body);
    assert.equal(r.status, status, what);
    assert.match(r.res.headers.get('content-type') ?? '', /^application\/json/, what);
    assert.deepEqual(Object.keys(r.json), ['error'], what);
    assert.equal(r.json.error.field, field, what);
    assert.match(r.json.error.message, message, what);
    assert.equal((await call('GET', '/api/progress')).status, 200, `still serving after ${what}`);
  }
  assert.equal(store.votes().length, before, 'no bad request stored anything');
});

test('the page: name form without a cookie, the voter cookie, ballot actions through htmx and without', async () => {
  const home = await call('GET', '/');
  assert.equal(home.status, 200);
  assert.match(home.json, /Who is voting\?/);
  const bad = await call('POST', '/voter', 'name=', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(bad.status, 400);
  assert.match(bad.json, /Name is empty/);
  const login = await call('POST', '/voter', 'name=Cleo+V', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(login.status, 303);
  const cookie = login.res.headers.get('set-cookie')!.split(';')[0]!;
  assert.equal(cookie, 'plum_voter=Cleo%20V');
  const form = { 'content-type': 'application/x-www-form-urlencoded', cookie };

  const page = await call('GET', '/', undefined, form);
  assert.match(page.json, /Voting as <strong data-voter>Cleo V<\/strong>/);
  assert.match(page.json, /<main id="stage"[^>]* data-prompt="p-1"/);
  assert.match(page.json, /gulls stitch sky to shore/);

  const htmx = await call('POST', '/ballot', 'promptId=p-1&action=best%7Cp-1-1', { ...form, 'HX-Request': 'true' });
  assert.equal(htmx.status, 200);
  assert.equal(htmx.res.headers.get('HX-Push-Url'), '/?p=p-2');
  assert.match(htmx.json, /^<main id="stage"[^>]* data-prompt="p-2"/);
  assert.match(htmx.json, /Saved best = candidate 2 on prompt 1/);
  assert.match(htmx.json, /<strong>1<\/strong> of 3 prompts voted by you/);

  const worst = await call('POST', '/ballot', 'promptId=p-2&action=worst%7Cp-2-2', { ...form, 'HX-Request': 'true' });
  assert.match(worst.json, /data-prompt="p-2"/, 'a worst pick stays on the prompt');
  assert.match(worst.json, /<li class="card is-worst" data-id="p-2-2"/);
  const wrong = await call('POST', '/ballot', 'promptId=p-2&action=best%7Cp-1-0', { ...form, 'HX-Request': 'true' });
  assert.match(wrong.json, /Not saved: candidate &quot;p-1-0&quot; is not a candidate of prompt &quot;p-2&quot;/);

  const plain = await call('POST', '/ballot', 'promptId=p-2&action=all-bad%7C', form);
  assert.equal(plain.status, 303);
  assert.equal(plain.res.headers.get('location'), '/?p=p-3');
  const undo = await call('POST', '/ballot', 'promptId=p-3&action=undo%7C', { ...form, 'HX-Request': 'true' });
  assert.match(undo.json, /data-prompt="p-2"/);
  assert.match(undo.json, /Undone: all bad on prompt 2/);
  const skip = await call('POST', '/ballot', 'promptId=p-2&action=skip%7C', { ...form, 'HX-Request': 'true' });
  assert.match(skip.json, /data-prompt="p-3"/);
  assert.deepEqual(
    store.votes({ voter: 'Cleo V' }).map((v) => [v.kind, v.promptId, v.candidateId]),
    [['best', 'p-1', 'p-1-1'], ['worst', 'p-2', 'p-2-2']],
  );
  const anon = await call('POST', '/ballot', 'promptId=p-3&action=best%7Cp-3-0', { 'content-type': 'application/x-www-form-urlencoded', 'HX-Request': 'true' });
  assert.equal(anon.res.headers.get('HX-Redirect'), '/', 'no voter cookie: back to the name form');
});

test('assets: htmx from node_modules, the page script and CSS', async () => {
  const htmx = await fetch(new URL('/assets/htmx.min.js', server.url));
  assert.equal(htmx.status, 200);
  assert.match(htmx.headers.get('content-type')!, /javascript/);
  assert.match(await htmx.text(), /htmx/);
  assert.equal((await fetch(new URL('/assets/vote.css', server.url))).headers.get('content-type'), 'text/css; charset=utf-8');
  assert.equal((await fetch(new URL('/assets/vote.js', server.url))).status, 200);
  assert.equal((await fetch(new URL('/assets/../../package.json', server.url))).status, 404);
});
