/** Learning-rate schedules: linear warmup, then cosine / linear decay or constant (as HF's get_scheduler). */
export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export function learningRate(step: number, opts: { lr: number; warmup: number; total: number; schedule: ScheduleKind; minLrRatio?: number }): number {
  const { lr, warmup, total, schedule } = opts;
  if (warmup > 0 && step < warmup) return (lr * (step + 1)) / warmup;
  if (schedule === 'constant') return lr;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  const floor = opts.minLrRatio ?? 0;
  const shape = schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return lr * (floor + (1 - floor) * shape);
}
