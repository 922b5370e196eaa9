/**
 * Locating ../shared (read-only fixtures beside the repository). Tests that need it skip with a
 * message when it is absent.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const SHARED = resolve(REPO_ROOT, '..', 'shared');

/** Absolute path of a file under ../shared, or null when it is not there. */
export function sharedPath(rel: string): string | null {
  const p = join(SHARED, rel);
  return existsSync(p) ? p : null;
}

export const SKIP_NO_SHARED = '../shared is absent (fixtures from the shared folder are needed for this test)';
