/**
 * Primitive ops. Each op is one record: shape rule, ONNX emission, vector-Jacobian product
 * (written with the same builders). Composites live in nn.ts and get gradients for free.
 */
import { type Attrs, type DType, type Node, type OpDef, type Shape, type TypeInfo, Graph, ShapeError, Value, numel } from './ir.js';

// ---------------------------------------------------------------- helpers

const ONNX_DTYPE: Record<DType, number> = { float32: 1, int64: 7, bool: 9, uint8: 2 };
export { ONNX_DTYPE };

const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);
const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

export function broadcastShapes(op: string, ins: TypeInfo[]): number[] {
  const rank = Math.max(...ins.map((t) => t.shape.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const t of ins) {
      const k = t.shape.length - rank + i;
      const s = k >= 0 ? t.shape[k]! : 1;
      if (s === 1) continue;
      if (d !== 1 && d !== s) throw new ShapeError(op, `cannot broadcast dimension ${i}`, ins);
      d = s;
    }
    out.push(d);
  }
  return out;
}

/** Sum a cotangent of a broadcast result back to `shape`. */
export function unbroadcast(g: Value, shape: Shape): Value {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? reduceSum(g, axes, true) : g;
  return sameShape(s.shape, shape) ? s : reshape(s, shape);
}

function expectDType(op: string, ins: TypeInfo[], i: number, dtypes: DType[]): void {
  if (!dtypes.includes(ins[i]!.dtype)) throw new ShapeError(op, `input ${i} must be ${dtypes.join(' or ')}`, ins);
}

// ---------------------------------------------------------------- elementwise binary

type NoAttrs = Record<string, never>;
const noAttrs: NoAttrs = {};

function binary(name: string, onnx: string, vjp: OpDef<NoAttrs>['vjp'], outDType?: DType): OpDef<NoAttrs> {
  return {
    name,
    infer(ins) {
      if (!outDType && ins[0]!.dtype !== ins[1]!.dtype) throw new ShapeError(name, 'dtypes differ', ins);
      return { shape: broadcastShapes(name, ins), dtype: outDType ?? ins[0]!.dtype };
    },
    emit: (e, ins, out) => e.node(onnx, ins, [out]),
    vjp,
  };
}

export const AddOp = binary('add', 'Add', (gy, n, needs) => [
  needs[0] ? unbroadcast(gy, n.inputs[0]!.shape) : null,
  needs[1] ? unbroadcast(gy, n.inputs[1]!.shape) : null,
]);
export const SubOp = binary('sub', 'Sub', (gy, n, needs) => [
  needs[0] ? unbroadcast(gy, n.inputs[0]!.shape) : null,
  needs[1] ? unbroadcast(neg(gy), n.inputs[1]!.shape) : null,
]);
export const MulOp = binary('mul', 'Mul', (gy, n, needs) => {
  const [a, b] = n.inputs as [Value, Value];
  return [needs[0] ? unbroadcast(mul(gy, b), a.shape) : null, needs[1] ? unbroadcast(mul(gy, a), b.shape) : null];
});
export const DivOp = binary('div', 'Div', (gy, n, needs) => {
  const [a, b] = n.inputs as [Value, Value];
  const ga = needs[0] ? unbroadcast(div(gy, b), a.shape) : null;
  // d(a/b)/db = -a/b^2 = -y/b
  const gb = needs[1] ? unbroadcast(neg(div(mul(gy, n.output), b)), b.shape) : null;
  return [ga, gb];
});
export const MaxOp = binary('max', 'Max', undefined);
export const EqualOp = binary('equal', 'Equal', undefined, 'bool');
export const LessOp = binary('less', 'Less', undefined, 'bool');
export const AndOp = binary('and', 'And', undefined, 'bool');

export const add = (a: Value, b: Value | number): Value => a.graph.apply(AddOp, [a, lift(a, b)], noAttrs);
export const sub = (a: Value, b: Value | number): Value => a.graph.apply(SubOp, [a, lift(a, b)], noAttrs);
export const mul = (a: Value, b: Value | number): Value => a.graph.apply(MulOp, [a, lift(a, b)], noAttrs);
export const div = (a: Value, b: Value | number): Value => a.graph.apply(DivOp, [a, lift(a, b)], noAttrs);
/** Elementwise maximum (no gradient: used for clamping counts). */
export const maximum = (a: Value, b: Value | number): Value => a.graph.apply(MaxOp, [a, lift(a, b)], noAttrs);
export const equal = (a: Value, b: Value | number): Value => a.graph.apply(EqualOp, [a, lift(a, b)], noAttrs);
export const less = (a: Value, b: Value | number): Value => a.graph.apply(LessOp, [a, lift(a, b)], noAttrs);
export const and = (a: Value, b: Value): Value => a.graph.apply(AndOp, [a, b], noAttrs);

function lift(like: Value, b: Value | number): Value {
  if (b instanceof Value) return b;
  if (like.dtype === 'int64') return like.graph.constant(new BigInt64Array([BigInt(b)]), []);
  return like.graph.scalar(b);
}

// ---------------------------------------------------------------- elementwise unary

function unary<A extends Attrs = NoAttrs>(
  name: string,
  onnx: string,
  vjp: ((gy: Value, x: Value, y: Value, attrs: A) => Value) | undefined,
  extra?: (attrs: A) => Record<string, import('./ir.js').OnnxAttr>,
): OpDef<A> {
  return {
    name,
    infer(ins) {
      if (name !== 'not' && name !== 'stopGradient' && name !== 'identity') expectDType(name, ins, 0, ['float32']);
      return { shape: ins[0]!.shape, dtype: ins[0]!.dtype };
    },
    emit: (e, ins, out, attrs) => e.node(onnx, ins, [out], extra?.(attrs)),
    vjp: vjp ? (gy, n, needs) => [needs[0] ? vjp(gy, n.inputs[0]!, n.output, n.attrs) : null] : undefined,
  };
}

export const NegOp = unary('neg', 'Neg', (gy) => neg(gy));
export const ExpOp = unary('exp', 'Exp', (gy, _x, y) => mul(gy, y));
export const LogOp = unary('log', 'Log', (gy, x) => div(gy, x));
export const SqrtOp = unary('sqrt', 'Sqrt', (gy, _x, y) => div(gy, mul(y, 2)));
export const SigmoidOp = unary('sigmoid', 'Sigmoid', (gy, _x, y) => mul(gy, mul(y, sub(y.graph.scalar(1), y))));
export const TanhOp = unary('tanh', 'Tanh', (gy, _x, y) => mul(gy, sub(y.graph.scalar(1), mul(y, y))));
export const NotOp = unary('not', 'Not', undefined);
export const IdentityOp = unary('identity', 'Identity', (gy) => gy);
/** Identity forward, zero gradient (treat a value as a constant). */
export const StopGradientOp = unary('stopGradient', 'Identity', undefined);

/**
 * SiLU x * sigmoid(x) as one kernel (com.microsoft QuickGelu with alpha 1; ORT fuses the
 * two-op form itself only when sigmoid(x) has no other consumer, which in a training graph it
 * has: the backward). VJP: gy * s * (1 + x - y) with s = sigmoid(x) recomputed: 5 elementwise
 * kernels where the composite's forward + backward took 8 (BENCHMARKS.md finding 13).
 */
export const SiluOp: OpDef<NoAttrs> = {
  name: 'silu',
  infer: (ins) => (expectDType('silu', ins, 0, ['float32']), ins[0]!),
  emit: (e, ins, out) => e.node('QuickGelu', ins, [out], { alpha: { kind: 'float', v: 1 } }, 'com.microsoft'),
  vjp: (gy, n, needs) => {
    const [x, y] = [n.inputs[0]!, n.output];
    return [needs[0] ? mul(gy, mul(sigmoid(x), add(sub(x, y), 1))) : null];
  },
};
export const silu = (x: Value): Value => x.graph.apply(SiluOp, [x], noAttrs);
export const neg = (x: Value): Value => x.graph.apply(NegOp, [x], noAttrs);
export const exp = (x: Value): Value => x.graph.apply(ExpOp, [x], noAttrs);
export const log = (x: Value): Value => x.graph.apply(LogOp, [x], noAttrs);
export const sqrt = (x: Value): Value => x.graph.apply(SqrtOp, [x], noAttrs);
export const sigmoid = (x: Value): Value => x.graph.apply(SigmoidOp, [x], noAttrs);
export const tanh = (x: Value): Value => x.graph.apply(TanhOp, [x], noAttrs);
export const not = (x: Value): Value => x.graph.apply(NotOp, [x], noAttrs);
export const identity = (x: Value): Value => x.graph.apply(IdentityOp, [x], noAttrs);
export const stopGradient = (x: Value): Value => x.graph.apply(StopGradientOp, [x], noAttrs);

/** x ** p for a constant exponent p. */
export const PowOp: OpDef<{ p: number }> = {
  name: 'pow',
  infer(ins) {
    expectDType('pow', ins, 0, ['float32']);
    return ins[0]!;
  },
  emit: (e, ins, out, a) => e.node('Pow', [ins[0]!, e.constFloat([a.p], [])], [out]),
  // d x^p = p x^(p-1); x^1 is x itself (no Pow node for the common square)
  vjp: (gy, n, needs) => {
    const x = n.inputs[0]!;
    const p = n.attrs.p;
    return [needs[0] ? mul(gy, mul(p === 2 ? x : pow(x, p - 1), p)) : null];
  },
};
export const pow = (x: Value, p: number): Value => x.graph.apply(PowOp, [x], { p });

export const CastOp: OpDef<{ to: DType }> = {
  name: 'cast',
  infer: (ins, a) => ({ shape: ins[0]!.shape, dtype: a.to }),
  emit: (e, ins, out, a) => e.node('Cast', ins, [out], { to: { kind: 'int', v: ONNX_DTYPE[a.to] } }),
  vjp: (gy, n, needs) => [needs[0] && n.inputs[0]!.dtype === 'float32' && n.attrs.to === 'float32' ? gy : null],
};
export const cast = (x: Value, to: DType): Value => (x.dtype === to ? x : x.graph.apply(CastOp, [x], { to }));

// ---------------------------------------------------------------- where

export const WhereOp: OpDef<NoAttrs> = {
  name: 'where',
  infer(ins) {
    expectDType('where', ins, 0, ['bool']);
    if (ins[1]!.dtype !== ins[2]!.dtype) throw new ShapeError('where', 'branch dtypes differ', ins);
    return { shape: broadcastShapes('where', ins), dtype: ins[1]!.dtype };
  },
  emit: (e, ins, out) => e.node('Where', ins, [out]),
  vjp(gy, n, needs) {
    const [c, a, b] = n.inputs as [Value, Value, Value];
    const zero = gy.graph.scalar(0);
    return [
      null,
      needs[1] ? unbroadcast(where(c, gy, zero), a.shape) : null,
      needs[2] ? unbroadcast(where(c, zero, gy), b.shape) : null,
    ];
  },
};
export const where = (c: Value, a: Value | number, b: Value | number): Value => {
  const av = a instanceof Value ? a : c.graph.scalar(a);
  const bv = b instanceof Value ? b : c.graph.scalar(b);
  return c.graph.apply(WhereOp, [c, av, bv], noAttrs);
};

// ---------------------------------------------------------------- matmul

export const MatMulOp: OpDef<NoAttrs> = {
  name: 'matmul',
  infer(ins) {
    const [a, b] = ins as [TypeInfo, TypeInfo];
    expectDType('matmul', ins, 0, ['float32']);
    expectDType('matmul', ins, 1, ['float32']);
    if (a.shape.length < 2 || b.shape.length < 2) throw new ShapeError('matmul', 'inputs must have rank >= 2', ins);
    const [m, k] = a.shape.slice(-2) as [number, number];
    const [k2, n] = b.shape.slice(-2) as [number, number];
    if (k !== k2) throw new ShapeError('matmul', `inner dimensions differ (${k} vs ${k2})`, ins);
    const batch = broadcastShapes('matmul', [
      { shape: a.shape.slice(0, -2), dtype: a.dtype },
      { shape: b.shape.slice(0, -2), dtype: b.dtype },
    ]);
    return { shape: [...batch, m, n], dtype: 'float32' };
  },
  emit: (e, ins, out) => e.node('MatMul', ins, [out]),
  vjp(gy, n, needs) {
    const [a, b] = n.inputs as [Value, Value];
    return [
      needs[0] ? unbroadcast(matmul(gy, transposeLast2(b)), a.shape) : null,
      needs[1] ? unbroadcast(matmul(transposeLast2(a), gy), b.shape) : null,
    ];
  },
};
export const matmul = (a: Value, b: Value): Value => a.graph.apply(MatMulOp, [a, b], noAttrs);

/**
 * 2-D GEMM, alpha * op(a) @ op(b) (+ c), where op(x) = x^T when its flag is set (ONNX Gemm with
 * beta 1). Its VJP is GEMMs with flags again, so a weight used as W^T ([out, in], as nn.Linear
 * stores it) gets dW = gy^T x directly: matmul(x, transpose(W)) made transpose(x^T gy), a
 * [in, out] product and then a Transpose node of every weight gradient (6.6% of a full
 * fine-tuning step's kernel time; BENCHMARKS.md). alpha and c let a scaled update be added in
 * the same kernel (LoRA's y + s * (x A^T) B^T: no Mul and Add over [N, out], forward or back).
 */
export const GemmOp: OpDef<{ transA: boolean; transB: boolean; alpha: number }> = {
  name: 'gemm',
  infer(ins, at) {
    expectDType('gemm', ins, 0, ['float32']);
    expectDType('gemm', ins, 1, ['float32']);
    const [a, b, c] = ins as [TypeInfo, TypeInfo, TypeInfo | undefined];
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new ShapeError('gemm', 'inputs must have rank 2', ins);
    const [m, k] = at.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [k2, n] = at.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (k !== k2) throw new ShapeError('gemm', `inner dimensions differ (${k} vs ${k2}; transA ${at.transA}, transB ${at.transB})`, ins);
    if (c) {
      expectDType('gemm', ins, 2, ['float32']);
      if (c.shape.length !== 2 || c.shape[0] !== m || c.shape[1] !== n) throw new ShapeError('gemm', `c must have the product's shape [${m},${n}]`, ins);
    }
    return { shape: [m, n], dtype: 'float32' };
  },
  emit: (e, ins, out, at) =>
    e.node('Gemm', ins, [out], {
      transA: { kind: 'int', v: at.transA ? 1 : 0 },
      transB: { kind: 'int', v: at.transB ? 1 : 0 },
      ...(at.alpha !== 1 ? { alpha: { kind: 'float', v: at.alpha } } : {}),
    }),
  vjp(gy, n, needs) {
    const [a, b] = n.inputs as [Value, Value];
    const { transA: ta, transB: tb, alpha: s } = n.attrs;
    // y = s op(a) op(b) + c: d op(a) = s gy op(b)^T, d op(b) = s op(a)^T gy, each transposed back
    // when its flag is set; dc = gy.
    const [tokens, rows, cols] = [gy.shape[0]!, b.shape[0]!, b.shape[1]!];
    return [
      needs[0] ? (ta ? gemm(b, gy, tb, true, s) : gemm(gy, b, false, !tb, s)) : null,
      needs[1]
        ? tb
          ? tallGradientTransposed(tokens, rows, cols)
            ? transposeUnfused(gemm(a, gy, !ta, false, s)) // ([in, tokens] x [tokens, out])^T
            : gemm(gy, a, true, ta, s)
          : gemm(a, gy, !ta, false, s)
        : null,
      ...(n.inputs.length > 2 ? [needs[2] ? gy : null] : []),
    ];
  },
};
export const gemm = (a: Value, b: Value, transA = false, transB = false, alpha = 1, c?: Value): Value =>
  a.graph.apply(GemmOp, c ? [a, b, c] : [a, b], { transA, transB, alpha });

/**
 * Whether the gradient of a tall [out, in] weight used as W^T (the LM head: [vocab, width]) is
 * better computed as (x^T gy)^T, an [in, out] product and then a transpose, than as gy^T x.
 * MLAS's GEMM slows down when the product has tens of thousands of rows and few columns, the
 * more so the longer the token axis it sums over; the transposed product runs at the usual rate
 * and the transpose of the result costs ~10 ms per 100 MB. `node --import tsx bench/head-grad.ts`
 * (AMD EPYC, 2 threads), [49152, 576]: 124.6 -> 97.8 ms at 512 tokens, 253 -> 176 ms at 1024,
 * but 28.9 -> 41.1 ms at 128 and no gain at 256, where the transpose outweighs the product;
 * [8192, 576] gains from 512 tokens too, [1536, 576] (an MLP weight) loses 7% (BENCHMARKS.md).
 */
export function tallGradientTransposed(tokens: number, rows: number, cols: number): boolean {
  return tokens >= 512 && rows >= 4096 && rows >= 8 * cols;
}

/**
 * x [m, n] -> x^T [n, m] as Reshape -> Transpose -> Reshape: ONNX Runtime's GEMM-transpose fusion
 * folds a Transpose that directly follows a Gemm back into the Gemm's flags, which would undo
 * tallGradientTransposed's choice; through the reshapes it stays a copy.
 */
function transposeUnfused(x: Value): Value {
  const [m, n] = x.shape as [number, number];
  return reshape(transpose(reshape(x, [m, n, 1]), [1, 0, 2]), [n, m]);
}

// ---------------------------------------------------------------- layout

export const TransposeOp: OpDef<{ perm: readonly number[] }> = {
  name: 'transpose',
  infer(ins, a) {
    const s = ins[0]!.shape;
    const ok = a.perm.length === s.length && [...a.perm].sort((x, y) => x - y).every((p, i) => p === i);
    if (!ok) throw new ShapeError('transpose', `bad permutation [${a.perm.join(',')}]`, ins);
    return { shape: a.perm.map((p) => s[p]!), dtype: ins[0]!.dtype };
  },
  emit: (e, ins, out, a) => e.node('Transpose', ins, [out], { perm: { kind: 'ints', v: a.perm } }),
  vjp(gy, n, needs) {
    const inv: number[] = [];
    n.attrs.perm.forEach((p, i) => (inv[p] = i));
    return [needs[0] ? transpose(gy, inv) : null];
  },
};
/**
 * Transpose. A permutation that keeps the order of every axis longer than 1 moves no data and is
 * built as a reshape (e.g. [B, 1, H, Dh] -> [B, H, 1, Dh] in decode): one Transpose node fewer
 * per use, and reshapes of reshapes merge.
 */
export function transpose(x: Value, perm: readonly number[]): Value {
  const valid = perm.length === x.rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
  const moved = perm.filter((p) => x.shape[p] !== 1);
  if (valid && moved.every((p, i) => i === 0 || moved[i - 1]! < p)) return reshape(x, perm.map((p) => x.shape[p]!));
  return x.graph.apply(TransposeOp, [x], { perm: [...perm] });
}
export function transposeLast2(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return transpose(x, perm);
}

export const ReshapeOp: OpDef<{ shape: readonly number[] }> = {
  name: 'reshape',
  infer(ins, a) {
    if (numel(a.shape) !== numel(ins[0]!.shape)) throw new ShapeError('reshape', `cannot reshape to [${a.shape.join(',')}]`, ins);
    return { shape: a.shape, dtype: ins[0]!.dtype };
  },
  emit: (e, ins, out, a) => e.node('Reshape', [ins[0]!, e.constInt64(a.shape, [a.shape.length])], [out]),
  vjp: (gy, n, needs) => [needs[0] ? reshape(gy, n.inputs[0]!.shape) : null],
};
/** Reshape; one dimension may be -1 (resolved statically). */
export function reshape(x: Value, shape: readonly number[]): Value {
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (sameShape(resolved, x.shape)) return x;
  // a reshape of a reshape is one reshape of the first one's input (or none)
  if (x.node?.op === ReshapeOp) return reshape(x.node.inputs[0]!, resolved);
  return x.graph.apply(ReshapeOp, [x], { shape: resolved });
}

export const ExpandOp: OpDef<{ shape: readonly number[] }> = {
  name: 'expand',
  infer(ins, a) {
    const out = broadcastShapes('expand', [ins[0]!, { shape: a.shape, dtype: ins[0]!.dtype }]);
    if (!sameShape(out, a.shape)) throw new ShapeError('expand', `cannot expand to [${a.shape.join(',')}]`, ins);
    return { shape: out, dtype: ins[0]!.dtype };
  },
  emit: (e, ins, out, a) => e.node('Expand', [ins[0]!, e.constInt64(a.shape, [a.shape.length])], [out]),
  vjp: (gy, n, needs) => [needs[0] ? unbroadcast(gy, n.inputs[0]!.shape) : null],
};
export const expand = (x: Value, shape: readonly number[]): Value =>
  sameShape(x.shape, shape) ? x : x.graph.apply(ExpandOp, [x], { shape: [...shape] });

export const ConcatOp: OpDef<{ axis: number }> = {
  name: 'concat',
  infer(ins, a) {
    const r = ins[0]!.shape.length;
    const ax = normAxis(a.axis, r);
    const out = [...ins[0]!.shape];
    out[ax] = 0;
    for (const t of ins) {
      if (t.shape.length !== r || t.dtype !== ins[0]!.dtype || t.shape.some((d, i) => i !== ax && d !== ins[0]!.shape[i])) {
        throw new ShapeError('concat', `inputs disagree outside axis ${a.axis}`, ins);
      }
      out[ax]! += t.shape[ax]!;
    }
    return { shape: out, dtype: ins[0]!.dtype };
  },
  emit: (e, ins, out, a) => e.node('Concat', ins, [out], { axis: { kind: 'int', v: a.axis } }),
  vjp(gy, n, needs) {
    const ax = normAxis(n.attrs.axis, gy.rank);
    let start = 0;
    return n.inputs.map((x, i) => {
      const s = start;
      start += x.shape[ax]!;
      return needs[i] ? slice(gy, ax, s, s + x.shape[ax]!) : null;
    });
  },
};
export const concat = (xs: Value[], axis: number): Value => (xs.length === 1 ? xs[0]! : xs[0]!.graph.apply(ConcatOp, xs, { axis }));

export const SliceOp: OpDef<{ axis: number; start: number; end: number }> = {
  name: 'slice',
  infer(ins, a) {
    const s = [...ins[0]!.shape];
    const ax = normAxis(a.axis, s.length);
    if (!(a.start >= 0 && a.end <= s[ax]! && a.start < a.end)) throw new ShapeError('slice', `bad range ${a.start}:${a.end} on axis ${a.axis}`, ins);
    s[ax] = a.end - a.start;
    return { shape: s, dtype: ins[0]!.dtype };
  },
  emit: (e, ins, out, a) =>
    e.node('Slice', [ins[0]!, e.constInt64([a.start], [1]), e.constInt64([a.end], [1]), e.constInt64([a.axis], [1])], [out]),
  vjp(gy, n, needs) {
    const x = n.inputs[0]!;
    const ax = normAxis(n.attrs.axis, x.rank);
    return [needs[0] ? pad(gy, ax, n.attrs.start, x.shape[ax]! - n.attrs.end) : null];
  },
};
export const slice = (x: Value, axis: number, start: number, end: number): Value => {
  const ax = normAxis(axis, x.rank);
  if (start === 0 && end === x.shape[ax]) return x;
  return x.graph.apply(SliceOp, [x], { axis: ax, start, end });
};

/** Zero padding along one axis. */
export const PadOp: OpDef<{ axis: number; before: number; after: number }> = {
  name: 'pad',
  infer(ins, a) {
    const s = [...ins[0]!.shape];
    s[a.axis] = s[a.axis]! + a.before + a.after;
    return { shape: s, dtype: ins[0]!.dtype };
  },
  emit(e, ins, out, a, node) {
    const r = node.inputs[0]!.rank;
    const pads = new Array<number>(2 * r).fill(0);
    pads[a.axis] = a.before;
    pads[r + a.axis] = a.after;
    e.node('Pad', [ins[0]!, e.constInt64(pads, [2 * r])], [out], { mode: { kind: 'string', v: 'constant' } });
  },
  vjp: (gy, n, needs) => [needs[0] ? slice(gy, n.attrs.axis, n.attrs.before, n.attrs.before + n.inputs[0]!.shape[n.attrs.axis]!) : null],
};
export const pad = (x: Value, axis: number, before: number, after: number): Value =>
  before === 0 && after === 0 ? x : x.graph.apply(PadOp, [x], { axis: normAxis(axis, x.rank), before, after });

// ---------------------------------------------------------------- reductions

function reducedShape(shape: Shape, axes: readonly number[], keep: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (axes.includes(i)) {
      if (keep) out.push(1);
    } else out.push(d);
  });
  return out;
}

/** What every reduction shares: its attributes, shape rule, and axes normalised and sorted. */
type ReduceAttrs = { axes: readonly number[]; keepdims: boolean };
const inferReduce = (ins: readonly TypeInfo[], a: ReduceAttrs): TypeInfo => ({ shape: reducedShape(ins[0]!.shape, a.axes, a.keepdims), dtype: ins[0]!.dtype });
/** The opset-17 emission of reductions whose axes are an attribute (all but ReduceSum). */
const emitAxesAttr =
  (opType: string): OpDef<ReduceAttrs>['emit'] =>
  (e, ins, out, a) =>
    e.node(opType, ins, [out], { axes: { kind: 'ints', v: a.axes }, keepdims: { kind: 'int', v: a.keepdims ? 1 : 0 } });
const applyReduce = (def: OpDef<ReduceAttrs>, x: Value, axes: readonly number[], keepdims: boolean): Value =>
  x.graph.apply(def, [x], { axes: [...new Set(axes.map((a) => normAxis(a, x.rank)))].sort((p, q) => p - q), keepdims });
/** The cotangent of a reduction's output, reshaped to broadcast against its input. */
const keptGrad = (gy: Value, n: Node<ReduceAttrs>): Value => reshape(gy, reducedShape(n.inputs[0]!.shape, n.attrs.axes, true));

export const ReduceSumOp: OpDef<ReduceAttrs> = {
  name: 'reduceSum',
  infer: inferReduce,
  emit: (e, ins, out, a) =>
    e.node('ReduceSum', [ins[0]!, e.constInt64(a.axes, [a.axes.length])], [out], { keepdims: { kind: 'int', v: a.keepdims ? 1 : 0 } }),
  vjp: (gy, n, needs) => [needs[0] ? expand(keptGrad(gy, n), n.inputs[0]!.shape) : null],
};
export const reduceSum = (x: Value, axes: readonly number[], keepdims = false): Value => applyReduce(ReduceSumOp, x, axes, keepdims);

/** Mean over axes: a primitive (not sum / n) so that ONNX Runtime can match it in its norm fusions. */
export const ReduceMeanOp: OpDef<ReduceAttrs> = {
  name: 'reduceMean',
  infer: inferReduce,
  emit: emitAxesAttr('ReduceMean'),
  vjp(gy, n, needs) {
    const x = n.inputs[0]!;
    const count = n.attrs.axes.reduce((p, ax) => p * x.shape[ax]!, 1);
    return [needs[0] ? expand(div(keptGrad(gy, n), count), x.shape) : null];
  },
};
export const reduceMean = (x: Value, axes: readonly number[], keepdims = false): Value => applyReduce(ReduceMeanOp, x, axes, keepdims);

/**
 * Sum of squares over axes (ONNX ReduceSumSquare): one read of x, no [x * x] intermediate. The
 * training graphs use it for the gradients' global norm (clipping), computed where they are made.
 */
export const ReduceSumSquareOp: OpDef<ReduceAttrs> = {
  name: 'reduceSumSquare',
  infer: inferReduce,
  emit: emitAxesAttr('ReduceSumSquare'),
  vjp: (gy, n, needs) => [needs[0] ? mul(n.inputs[0]!, mul(keptGrad(gy, n), 2)) : null], // d sum x^2 = 2 x dy
};
export const reduceSumSquare = (x: Value, axes: readonly number[], keepdims = false): Value => applyReduce(ReduceSumSquareOp, x, axes, keepdims);

/** Max over axes (no gradient: use it only on stop-gradient paths such as stabilising shifts). */
export const ReduceMaxOp: OpDef<ReduceAttrs> = {
  name: 'reduceMax',
  infer: inferReduce,
  emit: emitAxesAttr('ReduceMax'),
};
export const reduceMax = (x: Value, axes: readonly number[], keepdims = false): Value => applyReduce(ReduceMaxOp, x, axes, keepdims);

// ---------------------------------------------------------------- softmax family (last axis)

export const SoftmaxOp: OpDef<NoAttrs> = {
  name: 'softmax',
  infer: (ins) => (expectDType('softmax', ins, 0, ['float32']), ins[0]!),
  emit: (e, ins, out) => e.node('Softmax', ins, [out], { axis: { kind: 'int', v: -1 } }),
  vjp(gy, n, needs) {
    const y = n.output;
    return [needs[0] ? mul(y, sub(gy, reduceSum(mul(gy, y), [-1], true))) : null];
  },
};
export const softmax = (x: Value): Value => x.graph.apply(SoftmaxOp, [x], noAttrs);

export const LogSoftmaxOp: OpDef<NoAttrs> = {
  name: 'logSoftmax',
  infer: (ins) => (expectDType('logSoftmax', ins, 0, ['float32']), ins[0]!),
  emit: (e, ins, out) => e.node('LogSoftmax', ins, [out], { axis: { kind: 'int', v: -1 } }),
  vjp(gy, n, needs) {
    if (!needs[0]) return [null];
    // gy - softmax * rowsum(gy). When gy is zero except where a pick scattered u (the
    // cross-entropy's gathered target), rowsum(gy) = rowsum(u) and the result is that scatter
    // into -softmax * rowsum(u): three passes over [N, V] (Exp, Mul, ScatterElements) instead of
    // six (zeros, scatter, ReduceSum, Exp, Mul, Sub). Finding 14 in BENCHMARKS.md.
    const sparse = scatteredIntoZeros(gy);
    if (sparse && sparse.axis === gy.rank - 1) {
      const u = sparse.updates;
      const s = u.shape[u.rank - 1] === 1 ? u : reduceSum(u, [-1], true);
      return [scatterElementsAdd(mul(exp(n.output), neg(s)), sparse.indices, sparse.updates, sparse.axis)];
    }
    return [sub(gy, mul(exp(n.output), reduceSum(gy, [-1], true)))];
  },
};
/** `v` = scatterElementsAdd(zeros, indices, updates, axis) (a gather's cotangent), else null. */
function scatteredIntoZeros(v: Value): { indices: Value; updates: Value; axis: number } | null {
  const n = v.node;
  if (n?.op !== ScatterElementsAddOp || n.inputs[0]!.node?.op !== ZerosOp) return null;
  return { indices: n.inputs[1]!, updates: n.inputs[2]!, axis: (n.attrs as { axis: number }).axis };
}
export const logSoftmax = (x: Value): Value => x.graph.apply(LogSoftmaxOp, [x], noAttrs);

// ---------------------------------------------------------------- gather / scatter

/** Rows of `table` ([V, ...rest]) at int64 `indices` (any shape I): out [...I, ...rest]. */
export const GatherOp: OpDef<NoAttrs> = {
  name: 'gather',
  infer(ins) {
    expectDType('gather', ins, 1, ['int64']);
    return { shape: [...ins[1]!.shape, ...ins[0]!.shape.slice(1)], dtype: ins[0]!.dtype };
  },
  emit: (e, ins, out) => e.node('Gather', ins, [out], { axis: { kind: 'int', v: 0 } }),
  vjp(gy, n, needs) {
    if (!needs[0]) return [null, null];
    const [table, idx] = n.inputs as [Value, Value];
    const rest = table.shape.slice(1);
    const flatIdx = reshape(idx, [idx.size, 1]);
    const upd = reshape(gy, [idx.size, ...rest]);
    return [scatterNDAdd(zeros(table.graph, table.shape), flatIdx, upd), null];
  },
};
export const gather = (table: Value, indices: Value): Value => table.graph.apply(GatherOp, [table, indices], noAttrs);

/** data with `updates` added at `indices` ([N, 1] int64, rows of data). */
export const ScatterNDAddOp: OpDef<NoAttrs> = {
  name: 'scatterNDAdd',
  infer: (ins) => ins[0]!,
  emit: (e, ins, out) => e.node('ScatterND', ins, [out], { reduction: { kind: 'string', v: 'add' } }),
  vjp(gy, n, needs) {
    const idx = n.inputs[1]!;
    return [needs[0] ? gy : null, null, needs[2] ? gather(gy, reshape(idx, [idx.shape[0]!])) : null];
  },
};
export const scatterNDAdd = (data: Value, indices: Value, updates: Value): Value =>
  data.graph.apply(ScatterNDAddOp, [data, indices, updates], noAttrs);

export const GatherElementsOp: OpDef<{ axis: number }> = {
  name: 'gatherElements',
  infer(ins, a) {
    expectDType('gatherElements', ins, 1, ['int64']);
    const [x, i] = ins as [TypeInfo, TypeInfo];
    if (x.shape.length !== i.shape.length || x.shape.some((d, k) => k !== a.axis && d !== i.shape[k] && i.shape[k]! > d)) {
      throw new ShapeError('gatherElements', 'index rank/shape incompatible with data', ins);
    }
    return { shape: i.shape, dtype: x.dtype };
  },
  emit: (e, ins, out, a) => e.node('GatherElements', ins, [out], { axis: { kind: 'int', v: a.axis } }),
  vjp(gy, n, needs) {
    if (!needs[0]) return [null, null];
    const [x, idx] = n.inputs as [Value, Value];
    return [scatterElementsAdd(zeros(x.graph, x.shape), idx, gy, n.attrs.axis), null];
  },
};
export const gatherElements = (x: Value, indices: Value, axis: number): Value =>
  x.graph.apply(GatherElementsOp, [x, indices], { axis: normAxis(axis, x.rank) });

export const ScatterElementsAddOp: OpDef<{ axis: number }> = {
  name: 'scatterElementsAdd',
  infer: (ins) => ins[0]!,
  emit: (e, ins, out, a) =>
    e.node('ScatterElements', ins, [out], { axis: { kind: 'int', v: a.axis }, reduction: { kind: 'string', v: 'add' } }),
  vjp(gy, n, needs) {
    const idx = n.inputs[1]!;
    return [needs[0] ? gy : null, null, needs[2] ? gatherElements(gy, idx, n.attrs.axis) : null];
  },
};
export const scatterElementsAdd = (data: Value, indices: Value, updates: Value, axis: number): Value =>
  data.graph.apply(ScatterElementsAddOp, [data, indices, updates], { axis });

// ---------------------------------------------------------------- constants made at run time

/** A zero tensor allocated by the runtime (no initializer bytes in the model). */
export const ZerosOp: OpDef<{ shape: readonly number[] }> = {
  name: 'zeros',
  infer: (_ins, a) => ({ shape: a.shape, dtype: 'float32' }),
  emit: (e, _ins, out, a) =>
    e.node('ConstantOfShape', [e.constInt64(a.shape, [a.shape.length])], [out], { value: { kind: 'tensorFloat', v: 0 } }),
};
export const zeros = (g: Graph, shape: Shape): Value => g.apply(ZerosOp, [], { shape: [...shape] });

/**
 * Dropout keep-mask (values 0 or 1/(1-p)) of a static shape, computed in the graph from a fed
 * int64 seed [1] by an integer hash of each element's index: stateless, so the same seed gives
 * the same mask in any session (resumed training reproduces an uninterrupted run).
 * Hash: three rounds of h <- (h*h + c) mod (2^31 - 1) over h0 = index + seed + salt.
 */
export const DropoutMaskOp: OpDef<{ shape: readonly number[]; p: number; salt: number }> = {
  name: 'dropoutMask',
  infer(ins, a) {
    expectDType('dropoutMask', ins, 0, ['int64']);
    return { shape: a.shape, dtype: 'float32' };
  },
  emit(e, ins, out, a) {
    const M = 2147483647;
    const n = numel(a.shape);
    const t = (s: string): string => e.fresh(`dm_${s}`);
    const iota = t('iota');
    e.node('Range', [e.constInt64([0], []), e.constInt64([n], []), e.constInt64([1], [])], [iota]);
    let h = t('h');
    e.node('Add', [iota, ins[0]!], [h]);
    const salted = t('salted');
    e.node('Add', [h, e.constInt64([(a.salt * 1000003) % M], [])], [salted]);
    const m0 = t('m');
    e.node('Mod', [salted, e.constInt64([M], [])], [m0]);
    h = m0;
    for (const c of [12345, 678917, 1013904223]) {
      const sq = t('sq');
      e.node('Mul', [h, h], [sq]);
      const ad = t('ad');
      e.node('Add', [sq, e.constInt64([c], [])], [ad]);
      const md = t('md');
      e.node('Mod', [ad, e.constInt64([M], [])], [md]);
      h = md;
    }
    const keep = t('keep');
    e.node('Less', [h, e.constInt64([Math.floor((1 - a.p) * M)], [])], [keep]);
    const kf = t('kf');
    e.node('Cast', [keep], [kf], { to: { kind: 'int', v: 1 } });
    const scaled = t('scaled');
    e.node('Mul', [kf, e.constFloat([1 / (1 - a.p)], [])], [scaled]);
    e.node('Reshape', [scaled, e.constInt64(a.shape, [a.shape.length])], [out]);
  },
};
export const dropoutMask = (seed: Value, shape: Shape, p: number, salt: number): Value =>
  seed.graph.apply(DropoutMaskOp, [seed], { shape: [...shape], p, salt });

/** Index of the largest value along the last axis (int64; no gradient). */
export const ArgMaxOp: OpDef<NoAttrs> = {
  name: 'argmax',
  infer: (ins) => ({ shape: ins[0]!.shape.slice(0, -1), dtype: 'int64' }),
  emit: (e, ins, out) => e.node('ArgMax', ins, [out], { axis: { kind: 'int', v: -1 }, keepdims: { kind: 'int', v: 0 } }),
};
export const argmax = (x: Value): Value => x.graph.apply(ArgMaxOp, [x], noAttrs);

// ---------------------------------------------------------------- rotary embedding (ORT contrib)

/**
 * Rotary position embedding, rotate-half convention, as one ONNX Runtime kernel
 * (com.microsoft RotaryEmbedding, CPU / CUDA / WebGPU). x [B, N, S, Dh]; pos [B, S] int64 rows
 * of the tables; cos, sin [P, Dh/2]: y[..., i] = x_i cos - x_{i+Dh/2} sin (first half),
 * x_i cos + x_{i-Dh/2} sin (second half). The rotation is orthogonal, so the VJP is the
 * rotation by minus the angle: the same kernel with -sin. cos, sin and pos get no gradient.
 * Replaces 2 Mul + Add + Slice/Neg/Concat (6 kernels) per use (BENCHMARKS.md finding 13).
 */
export const RotaryOp: OpDef<NoAttrs> = {
  name: 'rotary',
  infer(ins) {
    expectDType('rotary', ins, 0, ['float32']);
    expectDType('rotary', ins, 1, ['int64']);
    expectDType('rotary', ins, 2, ['float32']);
    expectDType('rotary', ins, 3, ['float32']);
    const [x, pos, cos, sin] = ins as [TypeInfo, TypeInfo, TypeInfo, TypeInfo];
    if (x.shape.length !== 4) throw new ShapeError('rotary', 'x must be [B, N, S, Dh]', ins);
    const [B, , S, Dh] = x.shape as [number, number, number, number];
    if (Dh % 2 !== 0) throw new ShapeError('rotary', 'the head size must be even', ins);
    if (pos.shape.length !== 2 || pos.shape[0] !== B || pos.shape[1] !== S) throw new ShapeError('rotary', 'pos must be [B, S]', ins);
    for (const t of [cos, sin]) if (t.shape.length !== 2 || t.shape[1] !== Dh / 2) throw new ShapeError('rotary', 'cos and sin must be [P, Dh/2]', ins);
    if (cos.shape[0] !== sin.shape[0]) throw new ShapeError('rotary', 'cos and sin differ in length', ins);
    return { shape: x.shape, dtype: 'float32' };
  },
  emit: (e, ins, out) => e.node('RotaryEmbedding', ins, [out], { interleaved: { kind: 'int', v: 0 } }, 'com.microsoft'),
  vjp(gy, n, needs) {
    const [, pos, cos, sin] = n.inputs as [Value, Value, Value, Value];
    if (needs[2] || needs[3]) throw new Error('rotary: no gradient for the cos / sin tables');
    return [needs[0] ? rotary(gy, pos, cos, neg(sin)) : null, null, null, null];
  },
};
export const rotary = (x: Value, pos: Value, cos: Value, sin: Value): Value => x.graph.apply(RotaryOp, [x, pos, cos, sin], noAttrs);
