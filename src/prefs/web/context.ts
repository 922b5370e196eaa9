/**
 * What the vote web app's routes share: the candidate sets (in file order and by id) and the
 * store, with the one way to cast a vote (validate against the file, then store).
 */
import { z } from 'zod';
import type { CandidateSet } from '../candidates.js';
import { validateVote, voteProgress, type NewVote, type Vote, type VoteProgress, type VoteStore } from '../store.js';

export interface VoteContext {
  readonly sets: readonly CandidateSet[];
  readonly byId: ReadonlyMap<string, CandidateSet>;
  readonly store: VoteStore;
  /** Validate (throws VoteError naming the field) and store; returns the stored vote. */
  cast(v: NewVote): Vote;
  progress(voter: string | null): VoteProgress;
}

export function voteContext(sets: readonly CandidateSet[], store: VoteStore): VoteContext {
  const byId = new Map(sets.map((s) => [s.promptId, s]));
  const ids = sets.map((s) => s.promptId);
  return {
    sets,
    byId,
    store,
    cast(v) {
      validateVote(byId, v);
      return store.cast(v);
    },
    progress: (voter) => voteProgress(store, ids, voter),
  };
}

/** A voter's name: what the cookie, the form and the JSON API accept. */
export const voterName = z
  .string({ error: (iss) => (iss.input === undefined ? "is required (the voter's name)" : "must be a string (the voter's name)") })
  .trim()
  .min(1, "is empty; give the voter's name")
  .max(64, 'is longer than 64 characters; use a shorter name')
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');
