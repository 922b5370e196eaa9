import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendCandidates, type CandidateSet } from '../../prefs/candidates.js';
import { readPairs } from '../../prefs/pairs.js';
import { VoteStore } from '../../prefs/store.js';
import { SKIP_NO_SHARED, sharedPath } from '../../testing/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'plum-cli-prefs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const plum = (...args: string[]) => spawnSync(process.execPath, ['bin/plum.js', ...args], { encoding: 'utf8' });

const sets: CandidateSet[] = [
  { promptId: 'p', prompt: 'Write a poem', candidates: ['I cannot write poems.', 'Roses are red', 'Sky so blue'].map((text, k) => ({ id: `p-${k}`, text })) },
  { promptId: 'q', prompt: 'Say hi', messages: [{ role: 'user', content: 'Say hi' }], candidates: ['Hi!', "I won't."].map((text, k) => ({ id: `q-${k}`, text })) },
];

test('plum vote rules + plum prefs export: rule and human votes -> pairs, report, KTO thumbs', () => {
  const cands = join(dir, 'cands.jsonl');
  for (const s of sets) appendCandidates(cands, s);
  const store = join(dir, 'votes.sqlite');
  let r = plum('vote', 'rules', '--candidates', cands, '--store', store, '--rule', 'no-refusal', '--name', 'answers');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'rule:answers: 2 prompts: 1 ranked, 1 split into up/down (ties), 0 all tied (no vote); 4 votes cast; mean score 0.6\n');
  r = plum('vote', 'rules', '--candidates', cands, '--store', store, '--rule', 'no-refusal', '--name', 'answers');
  assert.match(r.stdout, /4 votes cast, replacing 4 earlier;/);
  const s = VoteStore.open(store);
  s.cast({ voter: 'ann', promptId: 'p', kind: 'rank', ranking: ['p-2', 'p-1', 'p-0'] });
  s.cast({ voter: 'bob', promptId: 'p', kind: 'rank', ranking: ['p-1', 'p-2', 'p-0'] });
  s.close();
  const out = join(dir, 'pairs.jsonl');
  const report = join(dir, 'report.json');
  const kto = join(dir, 'kto.jsonl');
  r = plum('prefs', 'export', '--candidates', cands, '--store', store, '--out', out, '--report', report, '--kto', kto);
  assert.equal(r.status, 0, r.stderr);
  // p: rule says p-1, p-2 > p-0; ann p-2 > p-1 > p-0; bob p-1 > p-2 > p-0 -> p-1 and p-2 tie on top, and (p-1, p-2) is contested
  assert.equal(
    r.stdout,
    `${out}: 1 pairs from 2 prompts (2 with votes, 3 voters)\n` +
      '  ties: 1 prompts skipped (top two tied); all-bad votes: 0; thumbs: 3\n' +
      '  disagreement: 33.3% of 3 candidate pairs judged by several voters\n',
  );
  assert.deepEqual(readPairs(out).map(({ source: _, ...p }) => p), [{ prompt: 'Say hi', messages: [{ role: 'user', content: 'Say hi' }], chosen: 'Hi!', rejected: "I won't.", promptId: 'q' }]);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  assert.deepEqual([rep.prompts, rep.pairs, rep.ties, rep.perPrompt[0].skipped, rep.perPrompt[0].contestedPairs], [2, 1, 1, 'tied-top', 1]);
  assert.deepEqual(readFileSync(kto, 'utf8').trim().split('\n').map((l) => JSON.parse(l).label), [false, true, true]);
  r = plum('prefs', 'export', '--candidates', cands, '--store', store, '--out', out, '--margin', '0.1', '--format', 'openai');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^.*: 3 pairs from 2 prompts/); // p-1 > p-0, p-2 > p-0, and q
  assert.deepEqual(Object.keys(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!)), ['input', 'preferred_output', 'non_preferred_output']);
});

test('prefs/vote errors: one line, exit 1', () => {
  const cands = join(dir, 'bad.jsonl');
  writeFileSync(cands, '{"promptId": "p", "prompt": "x", "candidates": [{"id": "a", "text": "t"}]}\n{"promptId": 1}\n');
  const cases: Array<[string[], string]> = [
    [['prefs', 'export', '--candidates', cands, '--store', join(dir, 'v.sqlite'), '--out', join(dir, 'o.jsonl')], `plum: ${cands}:2: promptId must be a string (got number); put the text in quotes\n`],
    [['prefs', 'convert', '--in', cands, '--out', join(dir, 'o.jsonl'), '--from', 'dpo'], 'plum: prefs convert: --from: unknown preference format "dpo"; use one of prompt-chosen-rejected, openai, hh-rlhf, sharegpt, alpaca\n'],
    [['prefs', 'convert', '--in', cands, '--out', join(dir, 'o.jsonl'), '--to', 'hh-rlhf'], 'plum: prefs convert: --to: unknown preference format "hh-rlhf"; use one of prompt-chosen-rejected, openai\n'],
    [['prefs', 'export', '--candidates', cands, '--store', 'x', '--out', 'y', '--format', 'csv'], 'plum: prefs export: --format: Invalid option: expected one of "prompt-chosen-rejected"|"openai"\n'],
    [['vote', 'rules', '--candidates', cands, '--store', join(dir, 'v.sqlite')], 'plum: vote rules: pass exactly one of --rule SPEC or --module FILE\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = plum(...args);
    assert.equal(r.stderr, stderr, args.join(' '));
    assert.equal(r.status, 1);
  }
});

const hh = sharedPath('datasets/hh-rlhf/harmless-base-test.jsonl.gz');
test('plum prefs convert: HH-RLHF -> OpenAI -> prompt-chosen-rejected keeps all 2,312 pairs', { skip: hh ? false : SKIP_NO_SHARED }, () => {
  const oa = join(dir, 'hh-openai.jsonl');
  let r = plum('prefs', 'convert', '--in', hh!, '--out', oa, '--to', 'openai');
  assert.equal(r.stdout, `${oa}: wrote 2312 pairs as openai\n`, r.stderr);
  const pcr = join(dir, 'hh-pcr.jsonl');
  r = plum('prefs', 'convert', '--in', oa, '--out', pcr);
  assert.equal(r.stdout, `${pcr}: wrote 2312 pairs as prompt-chosen-rejected\n`, r.stderr);
  const strip = (f: string) => readPairs(f).map(({ source: _, ...p }) => p);
  assert.deepEqual(strip(pcr), strip(hh!));
});
