#!/usr/bin/env node
// Entry point: training commands relaunch once with glibc malloc settings (allocator.js), then
// tsx is registered so the TypeScript sources run directly on Node 20.
import { relaunchWithTunedMalloc } from './allocator.js';

const TRAINING = new Set(['train', 'distill', 'pretrain', 'defend', 'demo']);
const relaunched = TRAINING.has(process.argv[2] ?? '') && (await relaunchWithTunedMalloc());
if (!relaunched) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
