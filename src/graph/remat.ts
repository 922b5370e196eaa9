/**
 * Rematerialisation (gradient checkpointing) of one region of a graph.
 *
 * `remat(g, fn)` computes y = fn() as usual in the forward pass, but the backward pass does not
 * differentiate the nodes fn built: it replays them (the same ops on the same inputs) and
 * differentiates the replay. None of the region's intermediates are then kept from the forward
 * pass to the backward pass; the replay's values live only while its own backward runs. For attention
 * this is the point: every layer's probabilities [B, H, T, S] would otherwise stay alive from
 * the forward pass to the backward pass (BENCHMARKS.md, finding 45).
 *
 * ONNX Runtime merges identical nodes (common-subexpression elimination), which would fold the
 * replay back into the forward pass and keep its values alive again; and it may run a node as
 * soon as its inputs exist. So wherever a replayed node would read only values from outside the
 * region, one of them is read through a guard: that value plus a zero computed from the
 * cotangent of y. Every replayed node then has an input the forward pass does not have, and
 * none can run before the backward pass reaches the region (JAX's remat uses an optimisation
 * barrier for the same two reasons). A guard costs one pass over the value it guards.
 */
import { type Graph, type OpDef, type Value } from './ir.js';
import { grad } from './autodiff.js';
import * as op from './ops.js';

/**
 * y = fn(), whose nodes (all that fn appends to `g`) are recomputed in the backward pass instead
 * of kept. fn may read any earlier value of `g`; each gets its gradient through the replay.
 * Values fn builds and something outside it also reads keep their usual gradient path there.
 */
export function remat(g: Graph, fn: () => Value): Value {
  const start = g.nodes.length;
  const y = fn();
  const region = g.nodes.slice(start);
  if (y.graph !== g || !region.some((n) => n.output === y)) throw new Error('remat: fn must build its result in the given graph');
  const inside = new Set(region.map((n) => n.output));
  const externals = [...new Set(region.flatMap((n) => n.inputs.filter((i) => !inside.has(i))))];
  // where the replay would read only outside values: guard one of them (see the header)
  const guarded = new Set<Value>();
  for (const n of region) {
    if (n.inputs.some((i) => inside.has(i) || guarded.has(i))) continue;
    const e = n.inputs.find((i) => i.kind !== 'const' && (i.dtype === 'float32' || i.dtype === 'int64'));
    if (e) guarded.add(e);
  }
  const def: OpDef<Record<string, never>> = {
    name: 'remat',
    infer: (ins) => ins[0]!,
    emit: (e, ins, out) => e.node('Identity', [ins[0]!], [out]),
    vjp(gy, n, needs) {
      const zero = op.stopGradient(zeroAfter(gy));
      const ext = n.inputs.slice(1); // the region's outside values as this node reads them
      const wanted = externals.map((e, i) => needs[i + 1]! && e.dtype === 'float32');
      // stand-ins: a guard, or for a value that gets a gradient an identity (ORT removes it), so
      // the replay's gradient is taken at a leaf only the replay reads
      const standIn = new Map<Value, Value>();
      externals.forEach((e, i) => {
        const x = ext[i]!;
        if (guarded.has(e)) standIn.set(e, op.add(x, x.dtype === 'float32' ? zero : op.cast(zero, x.dtype)));
        else if (wanted[i]) standIn.set(e, op.identity(x));
      });
      const copy = new Map<Value, Value>();
      for (const r of region) copy.set(r.output, g.apply(r.op, r.inputs.map((i) => copy.get(i) ?? standIn.get(i) ?? i), r.attrs));
      const wrt = externals.filter((_, i) => wanted[i]).map((e) => standIn.get(e)!);
      const gs = wrt.length ? grad(copy.get(y)!, wrt, gy) : [];
      let at = 0;
      // y's cotangent goes to the replay only: the region's own nodes get none from it
      return [null, ...externals.map((_, i) => (wanted[i] ? gs[at++]! : null))];
    },
  };
  return g.apply(def, [y, ...externals], {});
}

/**
 * A float32 zero [1] that depends on `v`: its first element through Cast to bool and back, times
 * 0, so it is exactly 0 whatever that element is (NaN and infinities included).
 */
function zeroAfter(v: Value): Value {
  const first = op.slice(op.reshape(v, [v.size]), 0, 0, 1); // [1]
  return op.mul(op.cast(op.cast(first, 'bool'), 'float32'), 0);
}
