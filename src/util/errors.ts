/**
 * A mistake the user can fix (bad file, bad option, bad data). The CLI prints
 * `plum: <message>` on one line and exits 1, with no stack trace.
 * Messages name the file / line / field and say how to fix it.
 */
export class PlumError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlumError';
  }
}

/** Shorthand for throwing a PlumError. */
export function fail(message: string): never {
  throw new PlumError(message);
}
