import type { Command } from 'commander';
import { register as convert } from './convert.js';
import { register as exportCmd } from './export.js';
import { register as generate } from './generate.js';
import { register as score } from './score.js';
import { register as init } from './init.js';
import { register as tokenizer } from './tokenizer.js';
import { register as train } from './train.js';
import { register as serve } from './serve.js';
import { register as sample } from './sample.js';
import { register as voteRules } from './vote-rules.js';
import { register as prefs } from './prefs.js';
import { register as vote } from './vote.js';
import { register as distill } from './distill.js';
import { register as bench } from './bench.js';
import { register as pretrain } from './pretrain.js';
import { register as evalSafety } from './eval.js';
import { register as defend } from './defend.js';
import { register as demo } from './demo.js';
import { register as prefsEval } from './prefs-eval.js';

/** Every CLI command, in the order `plum --help` lists them. */
export const commands: Array<(program: Command) => void> = [demo, generate, score, train, distill, pretrain, sample, vote, voteRules, prefs, prefsEval, serve, evalSafety, defend, bench, convert, exportCmd, tokenizer, init];
