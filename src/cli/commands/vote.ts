/**
 * `plum vote`: collect preference votes on candidate completions (from `plum sample`) into an
 * SQLite store, in a browser (`serve`) or in the terminal (`cli`). Both can share one store.
 *
 * @example
 * plum vote serve --candidates candidates.jsonl --store votes.sqlite --port 7878
 * plum vote cli --candidates candidates.jsonl --store votes.sqlite --voter ann
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { readCandidates, type CandidateSet } from '../../prefs/candidates.js';
import { VoteStore } from '../../prefs/store.js';
import { runTerminalVoter } from '../../prefs/terminal.js';
import { voterName } from '../../prefs/web/context.js';
import { startVoteServer } from '../../prefs/web/server.js';
import { fail } from '../../util/errors.js';
import { parseOptions } from '../options.js';
import { voteCommand } from './vote-rules.js';

const DEFAULT_PORT = 7878;

const files = {
  candidates: z.string({ error: 'is required (the JSONL file plum sample wrote)' }).min(1, 'needs a file path'),
  store: z.string({ error: 'is required (the SQLite file votes go to; created if missing)' }).min(1, 'needs a file path'),
};

const serveOptions = z.object({
  ...files,
  port: z
    .string()
    .default(String(DEFAULT_PORT))
    .refine((s) => /^\d+$/.test(s) && Number(s) <= 65535, { error: (iss) => `"${String(iss.input)}" is not a port from 0 to 65535 (0 picks a free one)` })
    .transform(Number),
  host: z.string().min(1, 'needs an address, e.g. 127.0.0.1').default('127.0.0.1'),
});

const cliOptions = z.object({ ...files, voter: voterName });

/** Read and check the candidates before anything is opened or served. */
function loadSets(file: string): CandidateSet[] {
  const sets = readCandidates(file);
  if (sets.length === 0) fail(`${file}: no candidate sets; run plum sample to write some`);
  return sets;
}

async function runServe(raw: unknown): Promise<void> {
  const opts = parseOptions(serveOptions, raw, 'vote serve');
  const sets = loadSets(opts.candidates);
  const store = VoteStore.open(opts.store);
  let server;
  try {
    server = await startVoteServer({ sets, store, port: opts.port, host: opts.host });
  } catch (e) {
    store.close();
    throw e;
  }
  const k = new Set(sets.map((s) => s.candidates.length));
  process.stdout.write(
    `plum vote: ${sets.length} prompts (${[...k].join('/')} candidates each) from ${opts.candidates}; votes go to ${opts.store}\n` +
      `  open ${server.url}  (Ctrl+C stops)\n`,
  );
  const stop = () => {
    void server.close().then(() => {
      store.close();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function runCli(raw: unknown): Promise<void> {
  const opts = parseOptions(cliOptions, raw, 'vote cli');
  const sets = loadSets(opts.candidates);
  const store = VoteStore.open(opts.store);
  try {
    await runTerminalVoter({ sets, store, voter: opts.voter, input: process.stdin, output: process.stdout });
  } finally {
    store.close();
  }
}

export function register(program: Command): void {
  const vote = voteCommand(program);
  vote
    .command('serve')
    .description('a web page for voting (several named voters; keyboard shortcuts; JSON API under /api)')
    .option('--candidates <file>', 'candidates JSONL written by plum sample')
    .option('--store <file>', 'SQLite file for the votes (created if missing; shared with plum vote cli)')
    .option('--port <n>', `port to listen on, 0 picks a free one (default: ${DEFAULT_PORT})`)
    .option('--host <addr>', 'address to listen on; 0.0.0.0 lets other machines vote (default: 127.0.0.1)')
    .action((opts: unknown) => runServe(opts));
  vote
    .command('cli')
    .description('vote in the terminal, one command per line (1-9 best, w<n> worst, r 3 1 2 rank, x all bad, u undo, s skip, q quit)')
    .option('--candidates <file>', 'candidates JSONL written by plum sample')
    .option('--store <file>', 'SQLite file for the votes (created if missing; shared with plum vote serve)')
    .option('--voter <name>', 'your name, stored with each vote')
    .action((opts: unknown) => runCli(opts));
}
