/**
 * Preference votes in SQLite: one row per vote, never deleted (undo marks a row undone), so the
 * full history of who voted what, and what they took back, survives.
 *
 * Durability: WAL journal with `synchronous=FULL`, so `cast` returns only after the vote is in the
 * WAL on disk; a `kill -9` (or a power cut) right after a vote's HTTP response loses nothing.
 * Several processes may share one store (a web server and a terminal voter): writes wait up to
 * 5 s for each other.
 *
 * Later votes of the same kind by the same voter on the same prompt supersede earlier ones:
 * consumers (pair building for DPO) take the latest active vote of each kind.
 *
 * @example
 * const store = VoteStore.open('votes.sqlite');
 * store.cast({ voter: 'ann', promptId: 'p-1', kind: 'best', candidateId: 'p-1-0' });
 * store.undoLast('ann'); // marks it undone; votes() no longer lists it
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { PlumError, fail } from '../util/errors.js';

export type VoteKind = 'best' | 'worst' | 'rank' | 'all-bad' | 'up' | 'down';
export const VOTE_KINDS = ['best', 'worst', 'rank', 'all-bad', 'up', 'down'] as const satisfies readonly VoteKind[];
/** Kinds that name one candidate (`candidateId` required). */
export const SINGLE_CANDIDATE_KINDS: readonly VoteKind[] = ['best', 'worst', 'up', 'down'];

export interface Vote {
  id: number;
  voter: string;
  promptId: string;
  kind: VoteKind;
  candidateId: string | null;
  ranking: string[] | null;
  /** ISO 8601, UTC. */
  createdAt: string;
}

export interface NewVote {
  voter: string;
  promptId: string;
  kind: VoteKind;
  candidateId?: string | null;
  ranking?: string[] | null;
}

/** Overall counts, over active votes. */
export interface StoreSummary {
  votes: number;
  voters: number;
  prompts: number;
}

/** Schema migrations: entry i takes the store from version i to version i + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE votes (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     voter TEXT NOT NULL,
     prompt_id TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('best', 'worst', 'rank', 'all-bad', 'up', 'down')),
     candidate_id TEXT,
     ranking TEXT,               -- JSON array of candidate ids, best first
     created_at TEXT NOT NULL,
     undone_at TEXT              -- NULL while the vote is active
   );
   CREATE INDEX votes_by_voter ON votes (voter, id) WHERE undone_at IS NULL;
   CREATE INDEX votes_by_prompt ON votes (prompt_id, id) WHERE undone_at IS NULL;`,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

interface VoteRow {
  id: number;
  voter: string;
  prompt_id: string;
  kind: VoteKind;
  candidate_id: string | null;
  ranking: string | null;
  created_at: string;
}

function toVote(r: VoteRow): Vote {
  return {
    id: r.id,
    voter: r.voter,
    promptId: r.prompt_id,
    kind: r.kind,
    candidateId: r.candidate_id,
    ranking: r.ranking === null ? null : (JSON.parse(r.ranking) as string[]),
    createdAt: r.created_at,
  };
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/** Refuse files that are not SQLite databases before better-sqlite3 gives a vaguer error. */
function checkIsSqlite(file: string): void {
  if (!existsSync(file)) return;
  const head = readFileSync(file).subarray(0, 16).toString('latin1');
  if (head.length > 0 && head !== SQLITE_MAGIC) {
    fail(`${file}: not a Plum vote store (not an SQLite database); pass another --store path`);
  }
}

export class VoteStore {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  /** Open (creating if needed) the store at `file`, migrating an older schema. */
  static open(file: string): VoteStore {
    checkIsSqlite(file);
    let db: Database.Database;
    try {
      db = new Database(file);
    } catch (e) {
      fail(`${file}: cannot open the vote store (${(e as Error).message}); check the path and its folder`);
    }
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migrate(db, file);
    } catch (e) {
      db.close();
      throw e;
    }
    return new VoteStore(db, file);
  }

  /** Store a vote (validate it first with `validateVote`) and return it with its id and time. */
  cast(v: NewVote): Vote {
    const row = this.db
      .prepare<unknown[], VoteRow>(
        `INSERT INTO votes (voter, prompt_id, kind, candidate_id, ranking, created_at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(v.voter, v.promptId, v.kind, v.candidateId ?? null, v.ranking ? JSON.stringify(v.ranking) : null, new Date().toISOString());
    return toVote(row!);
  }

  /** Mark `voter`'s latest active vote undone and return it; null when they have none. */
  undoLast(voter: string): Vote | null {
    const row = this.db
      .prepare<unknown[], VoteRow>(
        `UPDATE votes SET undone_at = ?
         WHERE id = (SELECT id FROM votes WHERE voter = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1)
         RETURNING *`,
      )
      .get(new Date().toISOString(), voter);
    return row ? toVote(row) : null;
  }

  /** Active (not undone) votes, oldest first, optionally for one voter and/or prompt. */
  votes(opts: { voter?: string; promptId?: string } = {}): Vote[] {
    const where = ['undone_at IS NULL'];
    const args: string[] = [];
    if (opts.voter !== undefined) (where.push('voter = ?'), args.push(opts.voter));
    if (opts.promptId !== undefined) (where.push('prompt_id = ?'), args.push(opts.promptId));
    const rows = this.db.prepare<unknown[], VoteRow>(`SELECT * FROM votes WHERE ${where.join(' AND ')} ORDER BY id`).all(...args);
    return rows.map(toVote);
  }

  /** `voter`'s latest active vote, or null. */
  lastVote(voter: string): Vote | null {
    const row = this.db
      .prepare<unknown[], VoteRow>('SELECT * FROM votes WHERE voter = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1')
      .get(voter);
    return row ? toVote(row) : null;
  }

  /** Prompts on which `voter` has at least one active vote. */
  votedPrompts(voter: string): Set<string> {
    const rows = this.db
      .prepare<unknown[], { prompt_id: string }>('SELECT DISTINCT prompt_id FROM votes WHERE voter = ? AND undone_at IS NULL')
      .all(voter);
    return new Set(rows.map((r) => r.prompt_id));
  }

  /** Everyone who has ever voted here (including votes since undone), by name. */
  voters(): string[] {
    return this.db.prepare<[], { voter: string }>('SELECT DISTINCT voter FROM votes ORDER BY voter').all().map((r) => r.voter);
  }

  /** Counts over active votes: votes, distinct voters, distinct prompts. */
  summary(): StoreSummary {
    return this.db
      .prepare<[], StoreSummary>(
        'SELECT COUNT(*) AS votes, COUNT(DISTINCT voter) AS voters, COUNT(DISTINCT prompt_id) AS prompts FROM votes WHERE undone_at IS NULL',
      )
      .get()!;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function migrate(db: Database.Database, file: string): void {
  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
  if (tables.length > 0 && !tables.includes('meta')) {
    fail(`${file}: an SQLite database but not a Plum vote store (no meta table); pass another --store path`);
  }
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const row = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get();
    const version = row ? Number(row.value) : 0;
    if (version > SCHEMA_VERSION) {
      fail(`${file}: vote store schema v${version} is newer than this Plum understands (v${SCHEMA_VERSION}); upgrade plum`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
      String(SCHEMA_VERSION),
    );
  })();
}

/** The part of a candidate set (`CandidateSet` from ./candidates.ts) that votes are checked against. */
export interface VoteTarget {
  promptId: string;
  candidates: { id: string }[];
}

/**
 * Check a vote against the candidates file: the prompt exists, a named candidate belongs to it,
 * a ranking is a permutation of its candidates. Throws PlumError naming the field.
 */
export function validateVote(sets: Map<string, VoteTarget>, v: NewVote): void {
  const set = sets.get(v.promptId);
  if (!set) throw new VoteError(`prompt "${v.promptId}" is not in the candidates file`, 'promptId');
  const ids = set.candidates.map((c) => c.id);
  if (SINGLE_CANDIDATE_KINDS.includes(v.kind)) {
    if (!v.candidateId) throw new VoteError(`a "${v.kind}" vote needs candidateId (one of ${ids.join(', ')})`, 'candidateId');
    if (!ids.includes(v.candidateId)) {
      throw new VoteError(`candidate "${v.candidateId}" is not a candidate of prompt "${v.promptId}" (one of ${ids.join(', ')})`, 'candidateId');
    }
  } else if (v.candidateId != null) {
    throw new VoteError(`a "${v.kind}" vote takes no candidateId`, 'candidateId');
  }
  if (v.kind === 'rank') {
    const r = v.ranking;
    const isPermutation = !!r && r.length === ids.length && new Set(r).size === r.length && r.every((id) => ids.includes(id));
    if (!isPermutation) {
      throw new VoteError(`ranking must list each candidate of prompt "${v.promptId}" once, best first (${ids.join(', ')})`, 'ranking');
    }
  } else if (v.ranking != null) {
    throw new VoteError(`a "${v.kind}" vote takes no ranking (only "rank" votes do)`, 'ranking');
  }
}

/** A vote that does not fit the candidates file; `field` names the offending field. */
export class VoteError extends PlumError {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'VoteError';
  }
}

/** How far a voter (and everyone) has got through a candidates file. */
export interface VoteProgress {
  voter: string | null;
  /** Prompts of the file this voter has an active vote on. */
  voted: number;
  /** Prompts in the file. */
  total: number;
  overall: StoreSummary;
}

export function voteProgress(store: VoteStore, promptIds: readonly string[], voter: string | null): VoteProgress {
  let voted = 0;
  if (voter !== null) {
    const done = store.votedPrompts(voter);
    for (const id of promptIds) if (done.has(id)) voted++;
  }
  return { voter, voted, total: promptIds.length, overall: store.summary() };
}

/**
 * The next prompt to show: the first one after `afterId` (in file order, wrapping around) that is
 * not in `voted`; `afterId` itself comes last, so skipping the only unvoted prompt shows it again.
 * Null when every prompt is voted.
 */
export function nextPrompt<T extends { promptId: string }>(sets: readonly T[], voted: Set<string>, afterId?: string): T | null {
  const start = afterId === undefined ? -1 : sets.findIndex((s) => s.promptId === afterId);
  for (let k = 1; k <= sets.length; k++) {
    const s = sets[(start + k + sets.length) % sets.length]!;
    if (!voted.has(s.promptId)) return s;
  }
  return null;
}
