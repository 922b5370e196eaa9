/**
 * ONNX emission: serialise the nodes needed for the requested outputs as an ONNX model
 * (opset 17). Graph inputs stay inputs (weights are fed, zero-copy); constants become
 * initializers.
 */
import { type OnnxAttr, type OnnxEmitter, type Value, reachableNodes } from './ir.js';
import { ProtoWriter } from './protobuf.js';
import { ONNX_DTYPE } from './ops.js';

export const OPSET = 17;

function valueInfo(name: string, v: Value): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) shape.message(1, new ProtoWriter().int(1, d));
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[v.dtype]).message(2, shape);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

function tensorProto(name: string, dtype: number, dims: readonly number[], raw: Uint8Array): ProtoWriter {
  const t = new ProtoWriter();
  for (const d of dims) t.int(1, d);
  return t.int(2, dtype).string(8, name).bytes(9, raw);
}

function attrProto(name: string, a: OnnxAttr): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'int':
      return w.int(3, a.v).int(20, 2);
    case 'float':
      return w.float(2, a.v).int(20, 1);
    case 'string':
      return w.string(4, a.v).int(20, 3);
    case 'ints':
      for (const v of a.v) w.int(8, v);
      return w.int(20, 7);
    case 'tensorFloat':
      return w.message(5, tensorProto('value', 1, [1], new Uint8Array(Float32Array.from([a.v]).buffer))).int(20, 4);
    case 'tensorInt64':
      return w.message(5, tensorProto('value', 7, [1], new Uint8Array(BigInt64Array.from([BigInt(a.v)]).buffer))).int(20, 4);
    case 'tensorBool':
      return w.message(5, tensorProto('value', 9, [1], Uint8Array.from([a.v ? 1 : 0]))).int(20, 4);
  }
}

class Emitter implements OnnxEmitter {
  readonly nodes: ProtoWriter[] = [];
  readonly initializers: ProtoWriter[] = [];
  private readonly constCache = new Map<string, string>();
  private counter = 0;
  /** Non-default operator domains used (each gets an opset import). */
  readonly domains = new Set<string>();
  /** @param taken names the graph's inputs and outputs already use: generated names avoid them */
  constructor(private readonly taken: ReadonlySet<string> = new Set()) {}

  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.taken.has(n));
    return n;
  }

  node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, OnnxAttr> = {}, domain = ''): void {
    const w = new ProtoWriter();
    for (const i of inputs) w.string(1, i);
    for (const o of outputs) w.string(2, o);
    w.string(3, this.fresh(opType)).string(4, opType);
    for (const [k, a] of Object.entries(attrs)) w.message(5, attrProto(k, a));
    if (domain) {
      w.string(7, domain);
      this.domains.add(domain);
    }
    this.nodes.push(w);
  }

  private cached(key: string, make: (name: string) => ProtoWriter): string {
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.constCache.set(key, name);
      this.initializers.push(make(name));
    }
    return name;
  }

  constInt64(values: readonly number[], dims: number[] = [values.length]): string {
    return this.cached(`i64:${dims.join('x')}:${values.join(',')}`, (n) =>
      tensorProto(n, 7, dims, new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer)),
    );
  }

  constFloat(values: readonly number[], dims: number[] = [values.length]): string {
    return this.cached(`f32:${dims.join('x')}:${values.join(',')}`, (n) =>
      tensorProto(n, 1, dims, new Uint8Array(Float32Array.from(values).buffer)),
    );
  }

  addInitializer(name: string, v: Value): void {
    const d = v.data!;
    this.initializers.push(tensorProto(name, ONNX_DTYPE[v.dtype], v.shape, new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
  }
}

export interface EmittedModel {
  bytes: Uint8Array;
  /** Graph inputs the model actually uses, in order. */
  inputNames: string[];
  outputNames: string[];
}

/**
 * Serialise the subgraph computing `outputs` (name -> value). Inputs not needed by any
 * output are left out of the model.
 */
export function emitOnnx(outputs: Record<string, Value>, graphName = 'plum'): EmittedModel {
  const names = new Map<Value, string>();
  const outVals = Object.values(outputs);
  const nodes = reachableNodes(outVals);
  const used = new Set<Value>();
  for (const n of nodes) for (const i of n.inputs) used.add(i);
  for (const v of outVals) used.add(v);
  // graph input and output names are the caller's: generated names (v12, Mul_3) must not repeat them
  const taken = new Set(Object.keys(outputs));
  for (const v of used) if (v.kind === 'input') taken.add(v.name!);
  const e = new Emitter(taken);

  const graph = new ProtoWriter();
  const inputNames: string[] = [];
  const sortedUsed = [...used].sort((a, b) => a.id - b.id);
  for (const v of sortedUsed) {
    if (v.kind === 'input') {
      names.set(v, v.name!);
      inputNames.push(v.name!);
    } else if (v.kind === 'const') {
      const n = e.fresh('init');
      names.set(v, n);
      e.addInitializer(n, v);
    }
  }
  const nameOf = (v: Value): string => {
    let n = names.get(v);
    if (!n) {
      n = taken.has(`v${v.id}`) ? e.fresh(`v${v.id}`) : `v${v.id}`;
      names.set(v, n);
    }
    return n;
  };
  // A node's output that is a graph output takes the output's name, so that no Identity copies it
  // (ORT removes such an Identity only when nothing else reads the value: a training graph's
  // gradients, also read by their sum of squares, were copied, 538 MB per full fine-tuning step).
  // Generated names avoid every output name (`taken`), so any name may be taken directly.
  const direct = new Set<string>();
  for (const [name, v] of Object.entries(outputs)) {
    if (v.kind !== 'node' || names.has(v)) continue;
    names.set(v, name);
    direct.add(name);
  }
  for (const n of nodes) n.op.emit(e, n.inputs.map(nameOf), nameOf(n.output), n.attrs, n);

  // Other outputs (an input, a constant, a value listed twice) get an Identity so names are unique.
  const outputNames: string[] = [];
  for (const [name, v] of Object.entries(outputs)) {
    if (!direct.has(name)) e.node('Identity', [nameOf(v)], [name]);
    outputNames.push(name);
  }

  for (const n of e.nodes) graph.message(1, n);
  graph.string(2, graphName);
  for (const i of e.initializers) graph.message(5, i);
  for (const v of sortedUsed) if (v.kind === 'input') graph.message(11, valueInfo(v.name!, v));
  for (const [name, v] of Object.entries(outputs)) graph.message(12, valueInfo(name, v));

  const model = new ProtoWriter()
    .int(1, 8) // ir_version
    .string(2, 'plum')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, OPSET));
  for (const d of e.domains) model.message(8, new ProtoWriter().string(1, d).int(2, 1));
  return { bytes: model.finish(), inputNames, outputNames };
}
