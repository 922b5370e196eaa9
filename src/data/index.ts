/** Supervised data: readers, validation, tokenisation with loss masks, over-long policies, batching. */
export { SFT_FORMATS, ROLES, parseRecord, detectFormat } from './records.js';
export type { SftFormat, SftRecord, ChatRecord, TextRecord, SourceRef } from './records.js';
export { readSftFile, arrayElementLines } from './read.js';
export type { ReadOptions, ReadResult } from './read.js';
export { IGNORE_INDEX, tokenizeExample, withBos } from './tokenize.js';
export type { TokenizeOptions, TokenizedExample } from './tokenize.js';
export { OVERLONG_POLICIES, loadSftDataset, splitHeldOut } from './dataset.js';
export type { OverlongPolicy, SftExample, LoadSftOptions, SftStats, SftDataset, HeldOutOptions } from './dataset.js';
export { MIN_T, bucketLength, makeBatches } from './batches.js';
export type { Batch, BatchOptions } from './batches.js';
