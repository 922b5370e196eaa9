#!/usr/bin/env node
// Entry point: registers tsx so the TypeScript sources run directly on Node 20.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
