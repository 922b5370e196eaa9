/**
 * Reverse-mode autodiff as a graph transformation: `grad(loss, wrt)` appends the backward
 * nodes to the same graph and returns d loss / d wrt for each requested value.
 * Only nodes on a path from some `wrt` to `loss` are differentiated, and each VJP is told
 * which inputs need a gradient, so frozen weights get no weight-gradient matmuls.
 */
import { type Node, Value, reachableNodes } from './ir.js';
import { GemmOp, ScatterElementsAddOp, ScatterNDAddOp, ZerosOp, add, gemm, scatterElementsAdd, scatterNDAdd, zeros } from './ops.js';

export function grad(loss: Value, wrt: Value[], seed?: Value): Value[] {
  if (!seed && loss.size !== 1) throw new Error(`grad: loss must be a scalar (got [${loss.shape.join(',')}]); pass a seed cotangent`);
  const g = loss.graph;
  const nodes = reachableNodes([loss]);

  // Forward pass: which values depend on some wrt value.
  const depends = new Set<Value>(wrt);
  for (const n of nodes) if (n.inputs.some((i) => depends.has(i))) depends.add(n.output);

  const cot = new Map<Value, Value>();
  const own = new Set<Value>(); // cotangents no other value reads (see accumulate)
  cot.set(loss, seed ?? g.constant(new Float32Array(loss.size).fill(1), loss.shape));
  const order: Node[] = nodes.filter((n) => depends.has(n.output)).reverse();
  for (const n of order) {
    const gy = cot.get(n.output);
    if (!gy) continue;
    const needs = n.inputs.map((i) => depends.has(i));
    if (!n.op.vjp) {
      if (n.op.name === 'stopGradient') continue;
      throw new Error(`grad: op "${n.op.name}" has no vector-Jacobian rule but a gradient flows through it`);
    }
    const lastId = g.nodes.at(-1)?.output.id ?? -1;
    const gis = n.op.vjp(gy, n, needs);
    n.inputs.forEach((inp, i) => {
      const gi = gis[i];
      if (!gi || !needs[i]) return;
      // built by this rule for this input alone: nothing else reads it, so a sum may rebuild it
      if (gi.node && gi.id > lastId && gis.indexOf(gi) === gis.lastIndexOf(gi) && !readByNewNodes(g, gi, lastId)) own.add(gi);
      const prev = cot.get(inp);
      const sum = prev ? accumulate(prev, gi, own) : gi;
      if (prev) own.add(sum);
      cot.set(inp, sum);
    });
  }
  return wrt.map((w) => {
    const c = cot.get(w);
    if (!c) return zeros(g, w.shape);
    // A cotangent may arrive broadcast (e.g. a scalar seed): shapes must match exactly.
    if (c.shape.length !== w.shape.length || c.shape.some((d, i) => d !== w.shape[i])) {
      throw new Error(`grad: cotangent of ${w} has shape [${c.shape.join(',')}]`);
    }
    return c;
  });
}

/** Whether a node created after `lastId` (by the rule just run) reads `v`. */
function readByNewNodes(g: Value['graph'], v: Value, lastId: number): boolean {
  for (let i = g.nodes.length - 1; i >= 0 && g.nodes[i]!.output.id > lastId; i--) if (g.nodes[i]!.inputs.includes(v)) return true;
  return false;
}

/**
 * prev + gi, built without an Add where one term allows it:
 * - a scatter-add into zeros (a gather's cotangent: the tied embedding's rows) adds into the
 *   other term instead, saving a zero tensor and an Add over it ([V, C] for the embedding table
 *   in full fine-tuning);
 * - a Gemm without C that nothing else reads (`own`: built by a VJP for this input alone) is
 *   rebuilt with the other term as its C: the activation gradients of projections that share an
 *   input (q/k/v, gate/up, a LoRA factor beside its base weight) sum inside their Gemms.
 */
function accumulate(prev: Value, gi: Value, own: ReadonlySet<Value>): Value {
  const same = (a: Value, b: Value) => a.shape.join() === b.shape.join();
  for (const [s, other] of [[gi, prev], [prev, gi]] as const) {
    const n = s.node;
    if (!n || n.inputs[0]!.node?.op !== ZerosOp || !same(other, s)) continue;
    const [, idx, upd] = n.inputs as [Value, Value, Value];
    if (n.op === ScatterNDAddOp) return scatterNDAdd(other, idx, upd);
    if (n.op === ScatterElementsAddOp) return scatterElementsAdd(other, idx, upd, (n.attrs as { axis: number }).axis);
  }
  for (const [s, other] of [[gi, prev], [prev, gi]] as const) {
    const n = s.node;
    if (n?.op !== GemmOp || n.inputs.length !== 2 || !own.has(s) || !same(other, s) || other.dtype !== 'float32') continue;
    const { transA, transB, alpha } = n.attrs as { transA: boolean; transB: boolean; alpha: number };
    return gemm(n.inputs[0]!, n.inputs[1]!, transA, transB, alpha, other);
  }
  return add(prev, gi);
}
