import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sharedPath, SKIP_NO_SHARED } from '../testing/shared.js';
import { PlumError } from '../util/errors.js';
import { loadSftDataset, splitHeldOut, type SftExample } from './dataset.js';
import { labelledRuns, tinyTokenizer, writeData } from './testing.js';
import { IGNORE_INDEX, tokenizeExample } from './tokenize.js';

const jsonl = (...records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const pc = (prompt: string, completion: string) => ({ prompt, completion });

function failsWith(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PlumError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

/** Byte-level tiny tokenizer, no BOS: "ab" + "cd..." gives 2 + n + 1 (EOS) tokens with these letters (no merges). */
const lengths = { short: pc('ab', 'cd'), mid: pc('ab', 'cdcdcdcd'), long: pc('abababababab', 'cdcdcdcdcd') };

test('loadSftDataset: examples keep their source; stats count records, tokens and loss tokens', () => {
  const tok = tinyTokenizer();
  const file = writeData('stats.jsonl', jsonl(lengths.short, lengths.mid, lengths.long));
  const { examples, stats, formats } = loadSftDataset(file, tok);
  assert.deepEqual(formats, ['prompt-completion']);
  assert.deepEqual(examples.map((e) => e.ids.length), [5, 11, 23]);
  assert.deepEqual(examples.map((e) => e.source), [1, 2, 3].map((line) => ({ file, line })));
  assert.deepEqual(stats, { records: 3, tokens: 39, lossTokens: 3 + 9 + 11, dropped: 0, truncated: 0, segmented: 0 });
  assert.deepEqual(examples[1]!.labels, [IGNORE_INDEX, IGNORE_INDEX, ...examples[1]!.ids.slice(2)]);
});

test('over-long examples: error (count, longest, flag), truncate keeps the start, drop leaves them out', () => {
  const tok = tinyTokenizer();
  const file = writeData('overlong.jsonl', jsonl(lengths.short, lengths.long, lengths.mid, pc('abababababababababab', 'c')));
  failsWith(
    () => loadSftDataset(file, tok, { maxLength: 8 }),
    `${file}: 3 of 4 examples are longer than --max-length 8 tokens (the longest, ${file}:2, has 23); raise --max-length, ` +
      'or pass --overlong truncate (keep the first 8 tokens) or --overlong drop (leave them out)',
  );
  const full = loadSftDataset(file, tok).examples;
  const t = loadSftDataset(file, tok, { maxLength: 14, overlong: 'truncate' });
  // record 4 (20 prompt tokens) keeps no loss token after truncation: dropped
  assert.deepEqual(t.examples.map((e) => e.source.line), [1, 2, 3]);
  assert.deepEqual(t.examples[1]!.ids, full[1]!.ids.slice(0, 14));
  assert.deepEqual(t.examples[1]!.labels, full[1]!.labels.slice(0, 14));
  assert.deepEqual(t.stats, { records: 4, tokens: 5 + 14 + 11, lossTokens: 3 + 2 + 9, dropped: 1, truncated: 1, segmented: 0 });
  const d = loadSftDataset(file, tok, { maxLength: 11, overlong: 'drop' });
  assert.deepEqual(d.examples.map((e) => e.source.line), [1, 3]);
  assert.deepEqual(d.stats, { records: 4, tokens: 16, lossTokens: 12, dropped: 2, truncated: 0, segmented: 0 });
  failsWith(() => loadSftDataset(file, tok, { maxLength: 0 }), 'SFT data options: maxLength must be greater than 0 (got 0)');
  failsWith(() => loadSftDataset(file, tok, { overlong: 'cut' as 'drop' }), 'SFT data options: overlong is "cut", not one of "error", "truncate", "drop"; use one of those');
});

const fake = (file: string, n: number): SftExample[] => Array.from({ length: n }, (_, i) => ({ ids: [i], labels: [i], source: { file, line: i + 1 } }));

test('splitHeldOut: deterministic given the seed, disjoint, order kept; by file', () => {
  const ex = fake('a.jsonl', 50);
  const a = splitHeldOut(ex, { fraction: 0.1, seed: 3 });
  assert.deepEqual(splitHeldOut(ex, { fraction: 0.1, seed: 3 }), a);
  assert.equal(a.heldOut.length, 5);
  assert.equal(a.train.length, 45);
  const lines = (xs: SftExample[]) => xs.map((e) => e.source.line);
  assert.deepEqual([...lines(a.train), ...lines(a.heldOut)].sort((x, y) => x - y), lines(ex));
  assert.deepEqual(lines(a.heldOut), [...lines(a.heldOut)].sort((x, y) => x - y));
  assert.notDeepEqual(lines(splitHeldOut(ex, { fraction: 0.1, seed: 4 }).heldOut), lines(a.heldOut));
  assert.equal(splitHeldOut(fake('a', 3), { fraction: 0.01, seed: 0 }).heldOut.length, 1); // at least one
  assert.equal(splitHeldOut(fake('a', 3), { fraction: 0.99, seed: 0 }).train.length, 1); // never all
  const byFile = splitHeldOut([...fake('train.jsonl', 4), ...fake('valid.jsonl', 2)], { file: 'valid.jsonl', seed: 0 });
  assert.deepEqual([byFile.train.length, byFile.heldOut.length], [4, 2]);
  assert.ok(byFile.heldOut.every((e) => e.source.file === 'valid.jsonl'));
  failsWith(() => splitHeldOut(ex, { seed: 0 }), 'held-out split: give exactly one of fraction and file (--held-out-fraction or --held-out-file)');
  failsWith(() => splitHeldOut(ex, { file: 'other.jsonl', seed: 0 }), 'other.jsonl: no examples come from this file; load it together with the training data');
  failsWith(() => splitHeldOut(fake('a', 1), { fraction: 0.5, seed: 0 }), 'held-out split: 1 example(s) cannot be split; add more data or leave out --held-out-fraction');
});

test('several files load in order, each with its own format', () => {
  const tok = tinyTokenizer();
  const a = writeData('multi-a.jsonl', jsonl(lengths.short));
  const b = writeData('multi-b.json', JSON.stringify([{ instruction: 'hi', output: 'yo' }]));
  const { examples, formats } = loadSftDataset([a, b], tok);
  assert.deepEqual(formats, ['prompt-completion', 'alpaca']);
  assert.deepEqual(examples.map((e) => e.source), [{ file: a, line: 1 }, { file: b, line: 1, index: 0 }]);
  assert.deepEqual(labelledRuns(tok, examples[1]!.labels), ['yo<|im_end|>']);
});

test('LLaMA-Factory identity.json and alpaca_en_demo.json: every record loads; loss exactly on output + <|im_end|>', (t) => {
  const identity = sharedPath('datasets/llama-factory-demo/identity.json');
  const alpaca = sharedPath('datasets/llama-factory-demo/alpaca_en_demo.json');
  if (!identity || !alpaca) return t.skip(SKIP_NO_SHARED);
  const tok = tinyTokenizer();
  const id = loadSftDataset(identity, tok);
  assert.deepEqual(id.formats, ['alpaca']);
  assert.equal(id.stats.records, 91);
  assert.equal(
    tok.decode(id.examples[0]!.ids),
    '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello! I am {{name}}, an AI assistant developed by {{author}}. How can I assist you today?<|im_end|>\n',
  );
  assert.deepEqual(labelledRuns(tok, id.examples[0]!.labels), ['Hello! I am {{name}}, an AI assistant developed by {{author}}. How can I assist you today?<|im_end|>']);
  const al = loadSftDataset(alpaca, tok);
  assert.equal(al.stats.records, 999);
  assert.equal(al.stats.segmented, 0);
  assert.deepEqual(al.examples.slice(0, 3).map((e) => e.source.line), [2, 7, 12]);
  const raw = JSON.parse(readFileSync(alpaca, 'utf8'));
  al.examples.forEach((e, i) => {
    const r = raw[i] as { instruction: string; input: string; output: string };
    assert.deepEqual(labelledRuns(tok, e.labels), [`${r.output}<|im_end|>`], `record ${i}`);
    if (r.input) assert.ok(tok.decode(e.ids).includes(`${r.instruction}\n${r.input}<|im_end|>`), `record ${i}`);
  });
  const withInput = raw.findIndex((r: { input: string }) => r.input !== '');
  const direct = tokenizeExample(tok, { kind: 'chat', messages: [{ role: 'user', content: `${raw[withInput].instruction}\n${raw[withInput].input}` }, { role: 'assistant', content: raw[withInput].output }], source: al.examples[withInput]!.source });
  assert.deepEqual(al.examples[withInput]!.ids, direct.ids);
});
