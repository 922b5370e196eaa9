/**
 * The IR: a graph of typed tensors with static shapes.
 *
 * A `Value` is one tensor produced by one `Node` (or a graph input / constant).
 * Ops are records (see ops.ts): shape rule, ONNX emission, vector-Jacobian product.
 * Builders (ops.ts) append nodes to the graph of their first input, so model code reads
 * like ordinary tensor code: `add(matmul(x, w), b)`.
 */
export type DType = 'float32' | 'int64' | 'bool' | 'uint8';
export type Shape = readonly number[];

export interface TypeInfo {
  shape: Shape;
  dtype: DType;
}

/** Attribute values an op may carry (kept JSON-like so graphs can be hashed). */
export type Attrs = Record<string, number | string | boolean | readonly number[] | undefined>;

export interface OpDef<A extends Attrs = Attrs> {
  readonly name: string;
  /** Shape/dtype rule. Throws ShapeError (naming op and shapes) on bad inputs. */
  infer(inputs: TypeInfo[], attrs: A): TypeInfo;
  /** ONNX emission: append node(s) computing `out` from `ins`. */
  emit(e: OnnxEmitter, ins: string[], out: string, attrs: A, node: Node<A>): void;
  /**
   * Vector-Jacobian product: given the cotangent `gy` of the output, return a cotangent
   * for each input (null = no gradient / not needed). `needs[i]` says whether input i
   * requires a gradient; rules must not build work for inputs that do not.
   */
  vjp?(gy: Value, node: Node<A>, needs: boolean[]): (Value | null)[];
}

/** What an op's emitter may call (implemented by onnx.ts). */
export interface OnnxEmitter {
  /** `domain`: '' (ONNX, the default) or 'com.microsoft' (ONNX Runtime's contrib ops). */
  node(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, OnnxAttr>, domain?: string): void;
  /** A small int64 constant (shapes, axes, indices), deduplicated. */
  constInt64(values: readonly number[], dims?: number[]): string;
  constFloat(values: readonly number[], dims?: number[]): string;
  fresh(prefix: string): string;
}
export type OnnxAttr =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'ints'; v: readonly number[] }
  | { kind: 'string'; v: string }
  | { kind: 'tensorFloat'; v: number }
  | { kind: 'tensorInt64'; v: number }
  | { kind: 'tensorBool'; v: boolean };

export class ShapeError extends Error {
  constructor(op: string, message: string, inputs: TypeInfo[]) {
    const shapes = inputs.map((t) => `${t.dtype}[${t.shape.join(',')}]`).join(', ');
    super(`${op}: ${message} (inputs: ${shapes})`);
    this.name = 'ShapeError';
  }
}

export interface Node<A extends Attrs = Attrs> {
  readonly op: OpDef<A>;
  readonly inputs: readonly Value[];
  readonly attrs: A;
  readonly output: Value;
}

export type ValueKind = 'input' | 'const' | 'node';

export class Value implements TypeInfo {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly shape: Shape,
    readonly dtype: DType,
    readonly kind: ValueKind,
    /** The producing node (kind 'node'). */
    readonly node: Node | null,
    /** Graph-input name (kind 'input'). */
    readonly name: string | null,
    /** Constant payload (kind 'const'). */
    readonly data: Float32Array | BigInt64Array | Uint8Array | null,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  toString(): string {
    return `${this.name ?? `v${this.id}`}:${this.dtype}[${this.shape.join(',')}]`;
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A graph under construction. Values are created by `input`, `constant` and the op builders. */
export class Graph {
  private nextId = 0;
  readonly inputs: Value[] = [];
  readonly nodes: Node[] = [];
  private readonly inputNames = new Set<string>();

  input(name: string, shape: Shape, dtype: DType = 'float32'): Value {
    if (this.inputNames.has(name)) throw new Error(`graph input "${name}" declared twice`);
    for (const d of shape) if (!Number.isInteger(d) || d <= 0) throw new Error(`graph input "${name}": bad dimension in [${shape.join(',')}]`);
    this.inputNames.add(name);
    const v = new Value(this, this.nextId++, [...shape], dtype, 'input', null, name, null);
    this.inputs.push(v);
    return v;
  }

  constant(data: Float32Array | BigInt64Array | Uint8Array, shape: Shape, bytes: 'bool' | 'uint8' = 'bool'): Value {
    const dtype: DType = data instanceof Float32Array ? 'float32' : data instanceof BigInt64Array ? 'int64' : bytes;
    if (data.length !== numel(shape)) throw new Error(`constant: ${data.length} values for shape [${shape.join(',')}]`);
    return new Value(this, this.nextId++, [...shape], dtype, 'const', null, null, data);
  }

  scalar(x: number): Value {
    return this.constant(new Float32Array([x]), []);
  }

  apply<A extends Attrs>(op: OpDef<A>, inputs: Value[], attrs: A): Value {
    for (const v of inputs) if (v.graph !== this) throw new Error(`${op.name}: input ${v} belongs to another graph`);
    const t = op.infer(inputs, attrs);
    const node = { op, inputs, attrs } as { op: OpDef<A>; inputs: Value[]; attrs: A; output: Value };
    const out = new Value(this, this.nextId++, [...t.shape], t.dtype, 'node', node as Node, null, null);
    node.output = out;
    this.nodes.push(node as Node);
    return out;
  }
}

/** Nodes needed to compute `outputs`, in topological (creation) order. */
export function reachableNodes(outputs: Value[]): Node[] {
  const seen = new Set<Value>();
  const stack = [...outputs];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.node) stack.push(...v.node.inputs);
  }
  const nodes: Node[] = [];
  for (const v of seen) if (v.node) nodes.push(v.node);
  return nodes.sort((a, b) => a.output.id - b.output.id);
}
