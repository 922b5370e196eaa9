import type { Command } from 'commander';
import { register as convert } from './convert.js';

/** Every CLI command, in the order `plum --help` lists them. */
export const commands: Array<(program: Command) => void> = [convert];
