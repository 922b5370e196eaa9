/**
 * `plum tokenizer fit`: train a byte-level BPE tokenizer on your data and write tokenizer.json +
 * tokenizer_config.json, for `plum init --tokenizer DIR`.
 *
 * Input files: `.jsonl` (one record a line) or `.json` (an array of records), where a record is
 * `{"text"}`, `{"prompt", "completion"}` or `{"messages": [{"role", "content"}]}`; any other
 * file is plain UTF-8 text. Chats are learned as the ChatML template renders them
 * (`<|im_start|>role\ncontent<|im_end|>\n`), so role names and the newlines around turns get
 * tokens of their own; the special tokens themselves are never merged.
 *
 * Special tokens: no BOS is added to anything (add_bos_token false; <|endoftext|> is declared as
 * bos/pad so config.json has ids for them). <|im_end|> is the EOS: it closes every chat turn,
 * and Plum ends every plain-text (corpus) and prompt/completion example with the tokenizer's EOS
 * too, so chat and plain-text training teach the model the same single stop token.
 *
 * @example
 * plum tokenizer fit --data corpus.jsonl chats.jsonl --vocab-size 2048 --out tok/
 * plum init --preset micro --tokenizer tok/ --out models/micro
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { z } from 'zod';
import { spaceAfterNewline } from '../../model/bytelevel-tokenizer.js';
import { fitByteLevelBpe, fittedTokenizerFiles, writeByteLevelTokenizer } from '../../model/bpe-train.js';
import { loadTokenizer } from '../../model/tokenizer.js';
import { fail } from '../../util/errors.js';
import { int, parseOptions } from '../options.js';

const fitSchema = z.object({
  data: z.array(z.string().min(1)).min(1, 'needs at least one file'),
  vocabSize: int.pipe(z.number().min(259, 'must be at least 259 (256 bytes + 3 special tokens)')),
  minFrequency: int.pipe(z.number().min(1, 'must be at least 1')).default(2),
  spaceAfterNewline: z.boolean().default(false),
  out: z.string().min(1),
  force: z.boolean().default(false),
});

const recordSchema = z.union([
  z.object({ text: z.string() }),
  z.object({ prompt: z.string(), completion: z.string() }),
  z.object({ messages: z.array(z.object({ role: z.string().default('user'), content: z.string() })).min(1) }),
]);

/** The text of one record, chats rendered as ChatML. */
function recordText(raw: unknown, where: string): string {
  const r = recordSchema.safeParse(raw);
  if (!r.success) fail(`${where}: expected {"text": "..."}, {"prompt", "completion"} or {"messages": [{"role", "content"}]}; fix or remove the record`);
  const rec = r.data;
  if ('text' in rec) return rec.text;
  if ('prompt' in rec) return rec.prompt + rec.completion;
  return rec.messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('');
}

/**
 * Plain text in pieces of about 1 MB, cut after a newline that sits between two non-space
 * characters: there the ByteLevel regex splits the same way with or without the cut.
 */
function* plainTextChunks(text: string): Generator<string> {
  const target = 1 << 20;
  let start = 0;
  while (text.length - start > target) {
    let cut = -1;
    for (let i = text.indexOf('\n', start + target); i >= 0 && i + 1 < text.length; i = text.indexOf('\n', i + 1)) {
      if (/\S/.test(text[i - 1]!) && /\S/.test(text[i + 1]!)) {
        cut = i + 1;
        break;
      }
    }
    if (cut < 0) break;
    yield text.slice(start, cut);
    start = cut;
  }
  yield text.slice(start);
}

/** Every training text of `files`, one file read at a time. */
function* corpusTexts(files: string[]): Generator<string> {
  for (const file of files) {
    if (!existsSync(file)) fail(`tokenizer fit: --data ${file}: no such file`);
    const text = readFileSync(file, 'utf8');
    const ext = extname(file).toLowerCase();
    if (ext === '.jsonl') {
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        if (lines[i]!.trim() === '') continue;
        let raw: unknown;
        try {
          raw = JSON.parse(lines[i]!);
        } catch (e) {
          fail(`${file}:${i + 1}: invalid JSON (${(e as Error).message}); fix the line`);
        }
        yield recordText(raw, `${file}:${i + 1}`);
      }
    } else if (ext === '.json') {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        fail(`${file}: invalid JSON (${(e as Error).message}); fix the file`);
      }
      if (!Array.isArray(raw)) fail(`${file}: expected a JSON array of records (or use .jsonl / .txt)`);
      for (let i = 0; i < raw.length; i++) yield recordText(raw[i], `${file}: element ${i}`);
    } else yield* plainTextChunks(text);
  }
}

function fitAction(raw: unknown): void {
  const o = parseOptions(fitSchema, raw, 'tokenizer fit');
  const clash = ['tokenizer.json', 'tokenizer_config.json'].find((f) => existsSync(join(o.out, f)));
  if (clash && !o.force) fail(`tokenizer fit: ${o.out}: already holds ${clash}; choose another --out or pass --force to overwrite`);
  let bytes = 0;
  const sample: string[] = []; // the first ~1 MB, to measure compression on
  let sampleBytes = 0;
  const texts = (function* () {
    for (const raw of corpusTexts(o.data)) {
      const t = o.spaceAfterNewline ? spaceAfterNewline(raw) : raw;
      const n = Buffer.byteLength(t, 'utf8');
      bytes += n;
      if (sampleBytes < 1e6) {
        sample.push(t);
        sampleBytes += n;
      }
      yield t;
    }
  })();
  const t0 = performance.now();
  const fit = fitByteLevelBpe(texts, { vocabSize: o.vocabSize, minFrequency: o.minFrequency });
  const seconds = (performance.now() - t0) / 1000;
  writeByteLevelTokenizer(o.out, fittedTokenizerFiles(fit, { spaceAfterNewline: o.spaceAfterNewline }));
  const tok = loadTokenizer(o.out);
  const tokens = sample.reduce((a, t) => a + tok.encode(t, { addSpecialTokens: false }).length, 0);
  const short = fit.vocab.size < o.vocabSize ? ` (no more pairs seen ${o.minFrequency}+ times; lower --min-frequency or add data for ${o.vocabSize})` : '';
  process.stdout.write(
    `wrote ${o.out}: tokenizer.json, tokenizer_config.json\n` +
      `  vocab ${fit.vocab.size}${short}: 256 bytes + ${fit.merges.length} merges + ${fit.specialTokens.length} special tokens; ` +
      `${(bytes / 1e6).toFixed(2)} MB of text in ${seconds.toFixed(1)} s; ` +
      `${tokens ? (sampleBytes / tokens).toFixed(2) : 'n/a'} bytes/token on the first ${(sampleBytes / 1e6).toFixed(2)} MB\n`,
  );
}

export function register(program: Command): void {
  const tokenizer = program.command('tokenizer').description('tokenizers: fit a byte-level BPE to your data');
  tokenizer
    .command('fit')
    .description('train a byte-level BPE (ChatML special tokens) on JSONL/JSON records or plain text; writes tokenizer.json + tokenizer_config.json')
    .requiredOption('--data <files...>', '.jsonl / .json records ({"text"}, {"prompt","completion"}, {"messages"}) or plain text files')
    .requiredOption('--vocab-size <n>', 'tokens in all: 256 bytes + merges + 3 special tokens')
    .requiredOption('--out <dir>', 'folder to write the tokenizer to')
    .option('--min-frequency <n>', 'never merge a pair seen fewer times (default: 2)')
    .option('--space-after-newline', 'a word starting a line gets the same token as after a space (small models copying answers)')
    .option('--force', 'overwrite the tokenizer files in an existing --out folder')
    .action((opts: unknown) => fitAction(opts));
}
