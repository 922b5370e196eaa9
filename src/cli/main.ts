/**
 * The `plum` command line. Each command lives in src/cli/commands/<name>.ts and exports
 * `register(program)`. User mistakes (PlumError) print one line and exit 1.
 */
import { Command } from 'commander';
import { PlumError } from '../util/errors.js';
import { commands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('plum')
    .description('Fine-tune LLMs instead of prompt-engineering them (soft prompts, prefix, LoRA, DPO) on ONNX Runtime')
    .version('0.1.0')
    .showHelpAfterError();
  for (const register of commands) register(program);
  return program;
}

function reportAndExit(e: unknown): never {
  if (e instanceof PlumError) {
    process.stderr.write(`plum: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
}

process.on('uncaughtException', reportAndExit);
process.on('unhandledRejection', reportAndExit);
await buildProgram().parseAsync(process.argv).catch(reportAndExit);
