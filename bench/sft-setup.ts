/**
 * The synthetic SFT step that `bench/sft-step.ts` and `bench/remat.ts` time: a method by name and
 * B rows of T tokens with the loss on the last 64 positions of each row (every position with
 * `full`).
 */
import { packRows } from '../src/data/batches.js';
import type { LoadedModel } from '../src/model/load.js';
import { baseModelOf } from '../src/peft/base.js';
import { createAdapter } from '../src/peft/registry.js';
import type { MethodConfig, PeftAdapter } from '../src/peft/types.js';
import { prepareBatch } from '../src/train/feeds.js';

const ALL_PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** soft-prompt | prefix (20 tokens), lora (r8 on q/v), lora-all (r8 on every projection), full. */
export const BENCH_METHODS: Record<string, MethodConfig> = {
  'soft-prompt': { kind: 'soft-prompt', virtualTokens: 20, init: 'vocab' },
  prefix: { kind: 'prefix', virtualTokens: 20, init: 'random' },
  lora: { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'], rslora: false },
  'lora-all': { kind: 'lora', r: 8, alpha: 16, dropout: 0, targetModules: ALL_PROJECTIONS, rslora: false },
  full: { kind: 'full' },
};

/** The method's adapter and one prepared batch of B x T deterministic tokens. */
export async function benchStep(m: LoadedModel, method: string, B: number, T: number): Promise<{ adapter: PeftAdapter; prep: ReturnType<typeof prepareBatch> }> {
  const cfg = BENCH_METHODS[method];
  if (!cfg) throw new Error(`bench: unknown method "${method}" (${Object.keys(BENCH_METHODS).join(', ')})`);
  const adapter = await createAdapter(cfg, baseModelOf(m), 0);
  const lossFrom = cfg.kind === 'full' ? 0 : T - 64;
  const rows = Array.from({ length: B }, (_, b) => {
    const ids = Array.from({ length: T }, (_, t) => 1 + ((t * 31 + b * 7) % (m.cfg.vocabSize - 1)));
    return { ids, labels: ids.map((x, t) => (t > lossFrom ? x : -100)) };
  });
  return { adapter, prep: prepareBatch(m.cfg, adapter, packRows(rows, 0)) };
}
