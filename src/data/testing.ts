/**
 * Test fixtures for src/data: tokenizers made in a temp folder (no ../shared needed) and data files.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModel } from '../model/init.js';
import { convertLlama2c } from '../model/llama2c.js';
import { loadTokenizer, type PlumTokenizer } from '../model/tokenizer.js';
import { sharedPath } from '../testing/shared.js';
import { IGNORE_INDEX } from './tokenize.js';

let root: string | null = null;
/** A temp folder removed when the process exits. */
export function tmp(): string {
  if (!root) {
    const dir = mkdtempSync(join(tmpdir(), 'plum-data-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    root = dir;
  }
  return root;
}

/** Write `text` to a file in the temp folder and return its path. */
export function writeData(name: string, text: string): string {
  const file = join(tmp(), name);
  writeFileSync(file, text);
  return file;
}

const cache = new Map<string, PlumTokenizer>();
function cached(key: string, make: () => PlumTokenizer): PlumTokenizer {
  let t = cache.get(key);
  if (!t) cache.set(key, (t = make()));
  return t;
}

/** `plum init --preset tiny`'s byte-level tokenizer with its ChatML template. */
export const tinyTokenizer = (): PlumTokenizer =>
  cached('tiny', () => {
    const out = join(tmp(), 'tiny');
    initModel({ preset: 'tiny', seed: 1, out });
    return loadTokenizer(out);
  });

/** The tiny tokenizer with its chat template removed, so Plum's DEFAULT_CHAT_TEMPLATE applies. */
export const tinyDefaultTemplateTokenizer = (): PlumTokenizer =>
  cached('tiny-default', () => {
    const out = join(tmp(), 'tiny-default');
    initModel({ preset: 'tiny', seed: 1, out });
    const cfgFile = join(out, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    delete cfg.chat_template;
    writeFileSync(cfgFile, JSON.stringify(cfg));
    return loadTokenizer(out);
  });

/** stories260K converted from ../shared (SentencePiece BPE, adds BOS, no chat template), or null. */
export function storiesTokenizer(): PlumTokenizer | null {
  const model = sharedPath('models/stories260K/stories260K.bin');
  const tokenizer = sharedPath('models/stories260K/tok512.bin');
  if (!model || !tokenizer) return null;
  return cached('stories', () => {
    const out = join(tmp(), 'stories260K');
    convertLlama2c({ model, tokenizer, out });
    return loadTokenizer(out);
  });
}

/** The decoded text of each run of labelled tokens. */
export function labelledRuns(tok: PlumTokenizer, labels: number[]): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  for (const l of [...labels, IGNORE_INDEX]) {
    if (l !== IGNORE_INDEX) cur.push(l);
    else if (cur.length) {
      runs.push(tok.decode(cur));
      cur = [];
    }
  }
  return runs;
}
