/**
 * A terminal voter on the same store as the web page: shows each prompt the voter has not voted
 * on yet with its candidates, and reads one command per line (so piped stdin drives it in tests).
 *
 * Commands: `2` best = candidate 2; `w3` worst = candidate 3 (stays on the prompt, so a best can
 * follow); `r 3 1 2` ranking, best first (the last place may be left out); `x` all bad; `u` undo
 * my last vote (and go back to its prompt); `s` skip; `?` help; `q` quit.
 *
 * @example
 * await runTerminalVoter({ sets, store, voter: 'ann', input: process.stdin, output: process.stdout });
 */
import { createInterface } from 'node:readline';
import type { CandidateSet } from './candidates.js';
import { VoteError, nextPrompt, validateVote, voteProgress, type NewVote, type Vote, type VoteStore } from './store.js';

export interface TerminalVoterOptions {
  sets: readonly CandidateSet[];
  store: VoteStore;
  voter: string;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

export interface TerminalVoterResult {
  /** Votes cast in this session. */
  cast: number;
  /** Votes undone in this session. */
  undone: number;
  /** Why it stopped: every prompt voted, `q`, or the end of the input. */
  stopped: 'done' | 'quit' | 'eof';
}

const HELP = `commands:
  1 .. 9      the candidate with this number is the best (then the next prompt)
  w<n>        candidate n is the worst (stays here, so you can pick the best too)
  r 3 1 2     rank the candidates, best first (the last one may be left out)
  x           all candidates are bad
  u           undo my last vote
  s           skip this prompt for now
  ?           this help
  q           quit (votes are saved as you go)
`;

/** One parsed input line. */
type Command =
  | { kind: 'best' | 'worst'; n: number }
  | { kind: 'rank'; ns: number[] }
  | { kind: 'all-bad' | 'undo' | 'skip' | 'quit' | 'help' | 'empty' }
  | { kind: 'unknown'; text: string };

export function parseCommand(line: string): Command {
  const t = line.trim().toLowerCase();
  if (t === '') return { kind: 'empty' };
  if (/^\d+$/.test(t)) return { kind: 'best', n: Number(t) };
  const w = /^w\s*(\d+)$/.exec(t);
  if (w) return { kind: 'worst', n: Number(w[1]) };
  const r = /^r((?:[\s,]*\d+)+)$/.exec(t);
  if (r) return { kind: 'rank', ns: r[1]!.trim().split(/[\s,]+/).map(Number) };
  const single: Record<string, Command> = {
    x: { kind: 'all-bad' },
    u: { kind: 'undo' },
    s: { kind: 'skip' },
    q: { kind: 'quit' },
    '?': { kind: 'help' },
    h: { kind: 'help' },
  };
  return single[t] ?? { kind: 'unknown', text: line.trim() };
}

/** Indent every line of `text` after the first by `pad`. */
const indent = (text: string, pad: string) => text.replace(/\n/g, `\n${pad}`);

export async function runTerminalVoter(opts: TerminalVoterOptions): Promise<TerminalVoterResult> {
  const { sets, store, voter, output } = opts;
  const byId = new Map(sets.map((s) => [s.promptId, s]));
  const ids = sets.map((s) => s.promptId);
  const out = (s: string) => output.write(s);
  const rl = createInterface({ input: opts.input, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const result: TerminalVoterResult = { cast: 0, undone: 0, stopped: 'done' };

  const show = (set: CandidateSet) => {
    const p = voteProgress(store, ids, voter);
    const head = `── Prompt ${ids.indexOf(set.promptId) + 1} of ${ids.length} · ${set.promptId} · you: ${p.voted} of ${p.total} voted `;
    out(`\n${head}${'─'.repeat(Math.max(4, 78 - head.length))}\n${set.prompt}\n\n`);
    set.candidates.forEach((c, i) => out(`  [${i + 1}] ${indent(c.text, '      ')}\n`));
    out(`\n1-${set.candidates.length} best · w<n> worst · r 3 1 2 rank · x all bad · u undo · s skip · ? help · q quit\n`);
  };
  const describe = (v: Vote) => {
    const set = byId.get(v.promptId);
    const n = (id: string | null) => String((set?.candidates.findIndex((c) => c.id === id) ?? -1) + 1 || id);
    const what = v.kind === 'rank' ? `ranking ${v.ranking!.map(n).join(' > ')}` : v.kind === 'all-bad' ? 'all bad' : `${v.kind} = [${n(v.candidateId)}]`;
    return `${what} on prompt ${ids.indexOf(v.promptId) + 1}`;
  };

  let current = nextPrompt(sets, store.votedPrompts(voter));
  out(`Voting as ${voter} on ${sets.length} prompts (store ${store.file}). Type ? for help.\n`);
  try {
    let shown: CandidateSet | null = null;
    while (current) {
      if (shown !== current) show(current);
      shown = current;
      out('> ');
      const next = await lines.next();
      if (next.done) {
        out('\n');
        result.stopped = 'eof';
        break;
      }
      const cmd = parseCommand(next.value);
      const set: CandidateSet = current;
      const idOf = (n: number) => set.candidates[n - 1]?.id ?? `#${n}`;
      let vote: NewVote | null = null;
      switch (cmd.kind) {
        case 'empty':
          continue;
        case 'help':
          out(HELP);
          continue;
        case 'quit':
          result.stopped = 'quit';
          current = null;
          continue;
        case 'unknown':
          out(`unknown command "${cmd.text}"; type ? for help\n`);
          continue;
        case 'skip':
          current = nextPrompt(sets, store.votedPrompts(voter), set.promptId);
          continue;
        case 'undo': {
          const undone = store.undoLast(voter);
          if (!undone) {
            out('nothing to undo\n');
            continue;
          }
          result.undone++;
          out(`undone: ${describe(undone)}\n`);
          current = byId.get(undone.promptId) ?? current;
          shown = null;
          continue;
        }
        case 'best':
        case 'worst':
          vote = { voter, promptId: set.promptId, kind: cmd.kind, candidateId: idOf(cmd.n) };
          break;
        case 'rank': {
          const ranking = cmd.ns.map(idOf);
          // The last place is implied when all but one are given.
          if (ranking.length === set.candidates.length - 1) ranking.push(...set.candidates.map((c) => c.id).filter((id) => !ranking.includes(id)));
          vote = { voter, promptId: set.promptId, kind: 'rank', ranking };
          break;
        }
        case 'all-bad':
          vote = { voter, promptId: set.promptId, kind: 'all-bad' };
          break;
      }
      try {
        validateVote(byId, vote);
      } catch (e) {
        if (!(e instanceof VoteError)) throw e;
        out(`not saved: ${e.message}\n`);
        continue;
      }
      const saved = store.cast(vote);
      result.cast++;
      out(`saved: ${describe(saved)}\n`);
      if (saved.kind !== 'worst') current = nextPrompt(sets, store.votedPrompts(voter), set.promptId);
    }
  } finally {
    rl.close();
  }
  const p = voteProgress(store, ids, voter);
  out(`${p.voted === p.total ? 'All' : p.voted + ' of'} ${p.total} prompts voted by ${voter}.\n`);
  return result;
}
