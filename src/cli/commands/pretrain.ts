import type { Command } from 'commander';
import { addTrainFlags, runSftCommand } from './train.js';

/**
 * `plum pretrain`: train every weight of a (typically freshly initialised) model on a corpus
 * of plain text and chat records. The same engine and loop as `train sft`, with defaults for
 * training from scratch.
 */
export const PRETRAIN_DEFAULTS = {
  method: 'full',
  format: 'corpus',
  lr: '0.001', // at 3e-3 the micro preset did not form an induction head (src/micro/README.md)
  warmup: '0.02',
  schedule: 'cosine',
  weightDecay: '0.1',
  batchSize: '16',
  epochs: '1',
  exactMatch: '0',
  saveEvery: '100',
  overlong: 'truncate',
};

export function register(program: Command): void {
  addTrainFlags(program.command('pretrain').description('train all weights of a model from scratch on a text + chat corpus'))
    .option('--format <f>', 'data format (default corpus: {"text"} and {"messages"} records)')
    .option('--max-length <n>', 'longest example in tokens (default: the context)')
    .option('--overlong <policy>', 'over-long examples: error | truncate | drop (default truncate)')
    .option('--held-out-fraction <x>', 'hold out this share of the corpus for evaluation')
    .option('--held-out-file <file>', 'evaluation corpus')
    .option('--pack', 'pack several records into each row (attention stays within each); --batch-size then counts rows')
    .option('--pack-length <n>', 'with --pack: tokens per row (default: the power of two >= the longest record)')
    .action((opts: Record<string, unknown>) => {
      const merged: Record<string, unknown> = { ...PRETRAIN_DEFAULTS };
      for (const [k, v] of Object.entries(opts)) if (v !== undefined) merged[k] = v;
      return runSftCommand(merged, 'pretrain');
    });
}
