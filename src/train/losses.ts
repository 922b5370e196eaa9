/**
 * Preference losses as graph functions of the implicit reward margin
 * d = (log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x)), per pair [P].
 *  - sigmoid (DPO, Rafailov et al. 2023): -log sigmoid(beta d)
 *  - ipo (Azar et al. 2023): (d - 1 / (2 beta))^2
 *  - hinge (SLiC): max(0, 1 - beta d)
 */
import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops.js';

export const PREFERENCE_LOSSES = ['sigmoid', 'ipo', 'hinge'] as const;
export type PreferenceLoss = (typeof PREFERENCE_LOSSES)[number];

/** softplus(z) = log(1 + e^z), stable: z itself above 20 (the other branch is clamped so it never overflows). */
export function softplus(z: Value): Value {
  const big = op.less(z.graph.scalar(20), z);
  const safe = op.where(big, 20, z);
  return op.where(big, z, op.log(op.add(op.exp(safe), 1)));
}

export function preferenceLoss(kind: PreferenceLoss, d: Value, beta: number): Value {
  if (kind === 'sigmoid') return softplus(op.mul(d, -beta)); // -log sigmoid(beta d)
  if (kind === 'ipo') {
    const e = op.sub(d, 1 / (2 * beta));
    return op.mul(e, e);
  }
  const m = op.sub(d.graph.scalar(1), op.mul(d, beta));
  return op.where(op.less(m, 0), 0, m);
}
