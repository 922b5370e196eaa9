/** Test helpers for the voters: a small candidates file written by hand, in a temporary folder. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CandidateSet } from '../candidates.js';

/** Three prompts with three candidates each; texts with newlines and leading spaces. */
export const SAMPLE_SETS: CandidateSet[] = [
  {
    promptId: 'p-1',
    prompt: 'Write a haiku about the sea.',
    candidates: [
      { id: 'p-1-0', text: 'Waves fold into foam\nsalt wind combs the grey water\ngulls stitch sky to shore' },
      { id: 'p-1-1', text: 'The sea is big and blue.\nIt is wet.' },
      { id: 'p-1-2', text: 'sea sea sea sea sea sea sea sea sea sea sea sea sea sea sea sea sea sea sea' },
    ],
  },
  {
    promptId: 'p-2',
    prompt: 'Explain a for loop to a beginner, with a tiny example.',
    messages: [
      { role: 'system', content: 'You are a patient teacher.' },
      { role: 'user', content: 'Explain a for loop to a beginner, with a tiny example.' },
    ],
    candidates: [
      { id: 'p-2-0', text: 'A for loop repeats a block of code once for each item:\n\n  for (const x of [1, 2, 3]) {\n    console.log(x);\n  }\n\nThis prints 1, then 2, then 3.' },
      { id: 'p-2-1', text: 'Loops loop. Use them when looping.' },
      { id: 'p-2-2', text: 'I cannot help with that.' },
    ],
  },
  {
    promptId: 'p-3',
    prompt: 'Say hello politely.',
    candidates: [
      { id: 'p-3-0', text: 'Hello! How can I help you today?' },
      { id: 'p-3-1', text: 'hi' },
      { id: 'p-3-2', text: 'Good day to you.' },
    ],
  },
];

export interface Scratch {
  dir: string;
  candidates: string;
  store: string;
  cleanup(): void;
}

/** A temporary folder holding `candidates.jsonl` (from `sets`) and the path for `votes.sqlite`. */
export function scratch(sets: CandidateSet[] = SAMPLE_SETS): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'plum-vote-'));
  const candidates = join(dir, 'candidates.jsonl');
  writeFileSync(candidates, sets.map((s) => JSON.stringify(s)).join('\n') + '\n');
  return { dir, candidates, store: join(dir, 'votes.sqlite'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
