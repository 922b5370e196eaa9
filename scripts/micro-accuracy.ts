/**
 * Held-out accuracy per plum-micro task type of a model, or of a training run's latest
 * checkpoint (`taskAccuracy`, seed 1001, greedy). src/micro/README.md cites its figures.
 *
 *   node --import tsx scripts/micro-accuracy.ts MODEL_DIR [RUN_DIR] [PER_TASK=25]
 *
 * RUN_DIR: a training run folder; its latest checkpoint's weights replace MODEL_DIR's (MODEL_DIR
 * must then be the model that run started from, e.g. .plum-cache/plum-micro/stage0b for stage1).
 */
import { loadModel } from '../src/model/load.js';
import { loadLatestCheckpoint } from './checkpoint.js';
import { taskAccuracy } from '../src/micro/evaluate.js';

const [base, run, per] = process.argv.slice(2);
if (!base) throw new Error('usage: scripts/micro-accuracy.ts MODEL_DIR [RUN_DIR] [PER_TASK]');
const m = loadModel(base);
if (run) process.stdout.write(`${run}: ${loadLatestCheckpoint(m, run)}\n`);
const acc = await taskAccuracy(m, { seed: 1001, perTask: Number(per ?? 25) });
process.stdout.write(acc.map((a) => `${a.task} ${(a.accuracy * 100).toFixed(0)}%`).join(', ') + '\n');
