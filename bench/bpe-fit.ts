/**
 * `node --import tsx bench/bpe-fit.ts [--mb 20] [--vocab 2048]`
 *
 * Speed of `fitByteLevelBpe` on one core: pre-tokenising + counting words, then learning the
 * merges, on two corpora of about --mb megabytes:
 * - real: the English texts under ../shared/datasets (Alpaca demo, HH-RLHF; every tenth held out),
 *   repeated to size; few distinct words, so it mostly measures pre-tokenisation;
 * - zipf: synthetic sentences over 400k pseudo-words drawn with Zipf frequencies (rank^-1.1),
 *   with numbers, punctuation and capitals; many distinct words, so it loads the merge loop.
 * Compression (UTF-8 bytes per token) is measured on text held out from training.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Tokenizer } from '@huggingface/tokenizers';
import { countWords, fitWordCounts, fittedTokenizerFiles } from '../src/model/bpe-train.js';
import { rng } from '../src/util/random.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '20' }, vocab: { type: 'string', default: '2048' } } });
const targetBytes = Number(values.mb) * 1e6;
const vocabSize = Number(values.vocab);


function zipfCorpus(bytes: number, seed: number): string[] {
  const rand = rng(seed);
  const syll = ['th', 'e', 'an', 'in', 'er', 'on', 're', 'st', 'ing', 'al', 'or', 'ti', 'ca', 'ne', 'ro', 'ma', 'li', 'ous', 'ly', 'be', 'pre', 'con', 'ex', 'tion', 'ment', 'k', 'ph', 'qu', 'zy', 'wo'];
  const nWords = 400_000;
  const words: string[] = [];
  for (let i = 0; i < nWords; i++) {
    const n = 1 + Math.floor(rand() * 4);
    let w = '';
    for (let j = 0; j < n; j++) w += syll[Math.floor(rand() ** 1.5 * syll.length)];
    words.push(w);
  }
  // inverse-CDF sampling of Zipf(1.1) by binary search over cumulative weights
  const cum = new Float64Array(nWords);
  let s = 0;
  for (let i = 0; i < nWords; i++) cum[i] = s += (i + 1) ** -1.1;
  const pick = (): string => {
    const u = rand() * s;
    let lo = 0;
    let hi = nWords - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return words[lo]!;
  };
  const out: string[] = [];
  let total = 0;
  while (total < bytes) {
    const parts: string[] = [];
    const len = 5 + Math.floor(rand() * 20);
    for (let i = 0; i < len; i++) {
      let w = pick();
      if (i === 0) w = w[0]!.toUpperCase() + w.slice(1);
      if (rand() < 0.03) w = String(Math.floor(rand() * 10000));
      parts.push(w + (rand() < 0.08 ? ',' : ''));
    }
    const line = parts.join(' ') + (rand() < 0.1 ? '?' : '.') + (rand() < 0.2 ? '\n\n' : ' ');
    out.push(line);
    total += line.length;
  }
  return out;
}

function realCorpus(bytes: number): { train: string[]; heldOut: string[] } | null {
  const root = '../shared/datasets';
  if (!existsSync(root)) return null;
  const alpaca = JSON.parse(readFileSync(`${root}/llama-factory-demo/alpaca_en_demo.json`, 'utf8')) as Array<Record<string, string>>;
  const hh = execSync(`gzip -dc ${root}/hh-rlhf/harmless-base-test.jsonl.gz`, { encoding: 'utf8', maxBuffer: 1 << 30 })
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { chosen: string }).chosen);
  const all = [...alpaca.map((r) => `${r.instruction}\n${r.input}\n${r.output}`), ...hh];
  const heldOut = all.filter((_, i) => i % 10 === 0);
  const base = all.filter((_, i) => i % 10 !== 0);
  const train: string[] = [];
  let total = 0;
  for (let i = 0; total < bytes; i++) {
    const t = base[i % base.length]!;
    train.push(t);
    total += t.length;
  }
  return { train, heldOut };
}

function run(name: string, corpus: string[], heldOut: string[]): void {
  const mb = corpus.reduce((a, t) => a + Buffer.byteLength(t), 0) / 1e6;
  const t0 = performance.now();
  const words = countWords(corpus);
  const t1 = performance.now();
  const fit = fitWordCounts(words, { vocabSize });
  const t2 = performance.now();
  const files = fittedTokenizerFiles(fit);
  const tok = new Tokenizer(files.tokenizerJson, files.tokenizerConfig);
  let bytes = 0;
  let tokens = 0;
  for (const t of heldOut) {
    bytes += Buffer.byteLength(t);
    tokens += tok.encode(t, { add_special_tokens: false }).ids.length;
  }
  console.log(
    `${name}: ${mb.toFixed(1)} MB, ${words.size} distinct words; count ${((t1 - t0) / 1000).toFixed(1)} s, ` +
      `merges ${((t2 - t1) / 1000).toFixed(1)} s (${fit.merges.length} merges, vocab ${fit.vocab.size}); ` +
      `held-out ${(bytes / tokens).toFixed(2)} bytes/token`,
  );
}

const real = realCorpus(targetBytes);
if (real) run('real', real.train, real.heldOut);
else console.log('real: skipped (../shared/datasets is absent)');
run('zipf', zipfCorpus(targetBytes, 1), zipfCorpus(400_000, 2));
