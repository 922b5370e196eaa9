import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeWithMerges, fitByteLevelBpe } from '../../model/bpe-train.js';
import { loadConfig } from '../../model/config.js';
import { presets } from '../../model/presets.js';
import { loadTokenizer } from '../../model/tokenizer.js';
import { loadWeights } from '../../model/weights.js';
import { tokenizeExample } from '../../data/tokenize.js';

const plum = (...args: string[]) => spawnSync(process.execPath, ['bin/plum.js', ...args], { encoding: 'utf8' });

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plum-cli-tok-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const STORY = 'Once upon a time there was a little cat. The cat liked to sit in the sun and watch the birds.';
const chat = (q: string, a: string) => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });

/** A .jsonl with {"text"} and {"messages"} records and a .txt of plain text. */
function writeData(dir: string): { jsonl: string; txt: string } {
  const jsonl = join(dir, 'data.jsonl');
  const rows: unknown[] = [];
  for (let i = 0; i < 200; i++) {
    rows.push({ text: `${STORY} Day ${i}: the cat sat on the mat.` });
    rows.push(chat(`What did the cat do on day ${i}?`, `On day ${i} the cat sat in the sun.`));
  }
  writeFileSync(jsonl, rows.map((r) => JSON.stringify(r)).join('\n') + '\n\n');
  const txt = join(dir, 'story.txt');
  writeFileSync(txt, Array.from({ length: 100 }, (_, i) => `${STORY}\nChapter ${i}.`).join('\n'));
  return { jsonl, txt };
}

test('plum tokenizer fit writes a tokenizer that plum init --preset micro --tokenizer turns into a loadable model', () => {
  withTmp((root) => {
    const { jsonl, txt } = writeData(root);
    const tokDir = join(root, 'tok');
    const r = plum('tokenizer', 'fit', '--data', jsonl, txt, '--vocab-size', '400', '--out', tokDir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^wrote .*tok: tokenizer\.json, tokenizer_config\.json\n {2}vocab 400: 256 bytes \+ 141 merges \+ 3 special tokens; 0\.\d\d MB of text in \d+\.\d s; (\d+\.\d\d) bytes\/token on the first 0\.\d\d MB\n$/,
    );
    assert.ok(Number(/([\d.]+) bytes\/token/.exec(r.stdout)![1]) > 3);
    const tok = loadTokenizer(tokDir);
    assert.equal(tok.vocabSize, 400);
    // chats were learned as ChatML renders them: "user\n" and "assistant\n" became tokens
    const ids = tok.encode('<|im_start|>assistant\nOn day 7 the cat sat in the sun.<|im_end|>', { addSpecialTokens: false });
    assert.equal(tok.idToToken(ids[1]!), 'assistant');
    assert.equal(tok.decode(ids), '<|im_start|>assistant\nOn day 7 the cat sat in the sun.<|im_end|>');

    const out = join(root, 'model');
    const init = plum('init', '--preset', 'micro', '--tokenizer', tokDir, '--seed', '2', '--out', out);
    assert.equal(init.status, 0, init.stderr);
    const s = presets.micro.sizes; // tunable data: the test follows it
    assert.match(
      init.stdout,
      new RegExp(`\\n {2}llama \\(micro\\): hidden ${s.hidden_size}, ${s.num_hidden_layers} layers, ${s.num_attention_heads} heads \\(${s.num_key_value_heads} kv\\), vocab 448; \\d+ random parameters, seed 2\\n$`),
    );
    const cfg = loadConfig(out);
    assert.equal(cfg.vocabSize, 448); // 400 rounded up to a multiple of 64
    assert.equal(loadWeights(out, cfg).get('model.embed_tokens.weight')!.length, 448 * s.hidden_size);
    const model = loadTokenizer(out);
    assert.deepEqual(model.encode(STORY), tok.encode(STORY));
    assert.deepEqual(cfg.eosTokenIds, [model.tokenToId('<|im_end|>')]);

    // chat and plain text are tokenised alike: no BOS, and both end with <|im_end|>
    const source = { file: 'x', line: 1 };
    const text = tokenizeExample(model, { kind: 'text', prompt: '', completion: STORY, source });
    const conv = tokenizeExample(model, { kind: 'chat', messages: chat('Hi', 'Hello.').messages as never, source });
    const imEnd = model.tokenToId('<|im_end|>')!;
    assert.equal(text.ids.at(-1), imEnd);
    assert.deepEqual(text.ids.slice(0, -1), model.encode(STORY, { addSpecialTokens: false }));
    assert.equal(conv.ids[0], model.tokenToId('<|im_start|>'));
    assert.ok(conv.labels.includes(imEnd));
  });
});

test('plain text over 1 MB is read in chunks and learns the same merges as the whole text', () => {
  withTmp((root) => {
    const big = join(root, 'big.txt');
    // > 1 MB, so it is read in chunks; the cuts must not change the words counted
    const lines = Array.from({ length: 30000 }, (_, i) => `Line ${i}: ${i % 7 ? 'the quick brown fox' : '  indented,\tjumps'} over ${i % 13} lazy dogs.`);
    writeFileSync(big, lines.join('\n'));
    const r = plum('tokenizer', 'fit', '--data', big, '--vocab-size', '500', '--min-frequency', '3', '--out', join(root, 't'));
    assert.equal(r.status, 0, r.stderr);
    const whole = fitByteLevelBpe([readFileSync(big, 'utf8')], { vocabSize: 500, minFrequency: 3 });
    const json = JSON.parse(readFileSync(join(root, 't', 'tokenizer.json'), 'utf8'));
    assert.deepEqual(json.model.merges, whole.merges.map(([a, b]) => `${a} ${b}`));
    const tok = loadTokenizer(join(root, 't'));
    assert.deepEqual(tok.encode(lines[5]!, { addSpecialTokens: false }), encodeWithMerges(lines[5]!, whole));
  });
});

test('plum tokenizer fit --space-after-newline: a word starting a line is the token it is after a space', () => {
  withTmp((root) => {
    const { jsonl, txt } = writeData(root);
    const tokDir = join(root, 'tok');
    const r = plum('tokenizer', 'fit', '--data', jsonl, txt, '--vocab-size', '400', '--space-after-newline', '--out', tokDir);
    assert.equal(r.status, 0, r.stderr);
    const tok = loadTokenizer(tokDir);
    const cat = tok.encode(' cat', { addSpecialTokens: false });
    assert.equal(cat.length, 1);
    const text = '<|im_start|>assistant\ncat<|im_end|>';
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.deepEqual(ids.slice(-2, -1), cat);
    assert.equal(tok.decode(ids), text);
  });
});

test('tokenizer fit errors are one line naming the option, file or record', () => {
  withTmp((root) => {
    const bad = join(root, 'bad.jsonl');
    writeFileSync(bad, '{"text": "ok"}\n{"foo": 1}\n');
    const broken = join(root, 'broken.jsonl');
    writeFileSync(broken, '{"text": "ok"}\n{oops\n');
    const out = join(root, 'o');
    const cases: Array<[string[], RegExp]> = [
      [['tokenizer', 'fit', '--data', bad, '--vocab-size', '100', '--out', out], /^plum: tokenizer fit: --vocab-size: must be at least 259 \(256 bytes \+ 3 special tokens\)\n$/],
      [['tokenizer', 'fit', '--data', join(root, 'none.txt'), '--vocab-size', '300', '--out', out], /^plum: tokenizer fit: --data .*none\.txt: no such file\n$/],
      [['tokenizer', 'fit', '--data', bad, '--vocab-size', '300', '--out', out], /^plum: .*bad\.jsonl:2: expected \{"text": "\.\.\."\}, \{"prompt", "completion"\} or \{"messages": \[\{"role", "content"\}\]\}; fix or remove the record\n$/],
      [['tokenizer', 'fit', '--data', broken, '--vocab-size', '300', '--out', out], /^plum: .*broken\.jsonl:2: invalid JSON \(.*\); fix the line\n$/],
    ];
    for (const [args, stderr] of cases) {
      const r = plum(...args);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, stderr);
      assert.equal(r.stdout, '');
    }
    const good = join(root, 'good.txt');
    writeFileSync(good, 'hello world, hello tokenizer');
    assert.equal(plum('tokenizer', 'fit', '--data', good, '--vocab-size', '300', '--out', out).status, 0);
    const again = plum('tokenizer', 'fit', '--data', good, '--vocab-size', '300', '--out', out);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^plum: tokenizer fit: .*: already holds tokenizer\.json; choose another --out or pass --force to overwrite\n$/);
    const init = plum('init', '--tokenizer', join(root, 'missing'), '--out', join(root, 'm'));
    assert.equal(init.status, 1);
    assert.match(init.stderr, /^plum: .*missing\/tokenizer\.json: not found; /);
  });
});
