/** The safety suites by name (an explicit map; the micro suites need no downloaded data). */
import { join } from 'node:path';
import { SHARED } from '../../testing/shared.js';
import { advbenchSuite, xstestSuite } from './datasets.js';
import { bipiaSuite } from '../../micro/bipia.js';
import { injectionSuite, secretSuite } from '../../micro/suites.js';
import type { SafetySuite } from './suite.js';

export type SuiteFactory = (sharedDir: string) => SafetySuite;

export const SAFETY_SUITES: Record<string, SuiteFactory> = {
  injection: () => injectionSuite,
  secrets: () => secretSuite,
  bipia: bipiaSuite,
  'harmful-requests': advbenchSuite,
  'over-refusal': xstestSuite,
};

export const DEFAULT_SHARED_DIR = SHARED;
export const sharedDataset = (dir: string, rel: string): string => join(dir, rel);
