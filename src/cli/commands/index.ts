import type { Command } from 'commander';

/** Every CLI command, in the order `plum --help` lists them. */
export const commands: Array<(program: Command) => void> = [];
