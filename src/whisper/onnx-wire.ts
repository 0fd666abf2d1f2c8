// Minimal protobuf wire-format reader/writer, just enough to take an ONNX ModelProto apart and
// put subgraphs back together without decoding the (large) tensor payloads. Field numbers are
// from the public ONNX IR spec. Pure TypeScript: no fs, no Node/Bun/DOM APIs.

export interface WireField {
  field: number;
  wireType: number;
  /** For varint fields: the value (as bigint, for int64 safety). */
  varint?: bigint;
  /** For length-delimited fields: the payload (a subarray view, no copy). */
  bytes?: Uint8Array;
  /** The whole encoded record (tag + payload), a subarray view. */
  raw: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error("protobuf: truncated varint");
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

/** Splits one message into its top-level fields (views into `buf`). */
export function readFields(buf: Uint8Array): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    const f: WireField = { field, wireType, raw: buf };
    if (wireType === 0) {
      const [v, p2] = readVarint(buf, pos);
      f.varint = v;
      pos = p2;
    } else if (wireType === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error("protobuf: truncated length-delimited field");
      f.bytes = buf.subarray(p2, end);
      pos = end;
    } else if (wireType === 5) {
      f.bytes = buf.subarray(pos, pos + 4);
      pos += 4;
    } else if (wireType === 1) {
      f.bytes = buf.subarray(pos, pos + 8);
      pos += 8;
    } else {
      throw new Error(`protobuf: unsupported wire type ${wireType}`);
    }
    f.raw = buf.subarray(start, pos);
    out.push(f);
  }
  return out;
}

const utf8 = new TextDecoder();
export const str = (b: Uint8Array | undefined): string => (b ? utf8.decode(b) : "");

function varintBytes(v: number | bigint): number[] {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return out;
}

/** Encodes a length-delimited field from already-encoded parts. */
export function lenField(field: number, parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const head = [...varintBytes((field << 3) | 2), ...varintBytes(len)];
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let o = head.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function varintField(field: number, v: number | bigint): Uint8Array {
  return new Uint8Array([...varintBytes(field << 3), ...varintBytes(v)]);
}

export function stringField(field: number, s: string): Uint8Array {
  return lenField(field, [new TextEncoder().encode(s)]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- ONNX views ---------------------------------------------------------------------------

// ModelProto: ir_version=1, graph=7, opset_import=8
// GraphProto: node=1, name=2, initializer=5, input=11, output=12, value_info=13
// NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7
// AttributeProto: name=1, f=2, i=3, s=4, t=5, g=6, floats=7, ints=8, strings=9, type=20
// TensorProto: dims=1, data_type=2, name=8, raw_data=9
// ValueInfoProto: name=1

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, WireField[]>;
  raw: Uint8Array;
}

export interface OnnxGraph {
  fields: WireField[];
  nodes: OnnxNode[];
  /** Initializer name -> encoded record (field 5 of GraphProto, tag included). */
  initializers: Map<string, WireField>;
  inputs: string[];
  outputs: string[];
}

export function parseNode(f: WireField): OnnxNode {
  const n: OnnxNode = { name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: new Map(), raw: f.raw };
  for (const g of readFields(f.bytes!)) {
    if (g.field === 1) n.inputs.push(str(g.bytes));
    else if (g.field === 2) n.outputs.push(str(g.bytes));
    else if (g.field === 3) n.name = str(g.bytes);
    else if (g.field === 4) n.opType = str(g.bytes);
    else if (g.field === 7) n.domain = str(g.bytes);
    else if (g.field === 5) {
      const af = readFields(g.bytes!);
      const name = str(af.find((x) => x.field === 1)?.bytes);
      n.attributes.set(name, af);
    }
  }
  return n;
}

export function parseGraph(bytes: Uint8Array): OnnxGraph {
  const fields = readFields(bytes);
  const g: OnnxGraph = { fields, nodes: [], initializers: new Map(), inputs: [], outputs: [] };
  for (const f of fields) {
    if (f.field === 1) g.nodes.push(parseNode(f));
    else if (f.field === 5) {
      const name = str(readFields(f.bytes!).find((x) => x.field === 8)?.bytes);
      g.initializers.set(name, f);
    } else if (f.field === 11 || f.field === 12) {
      const name = str(readFields(f.bytes!).find((x) => x.field === 1)?.bytes);
      (f.field === 11 ? g.inputs : g.outputs).push(name);
    }
  }
  return g;
}

export interface OnnxModel {
  fields: WireField[];
  graphBytes: Uint8Array;
  graph: OnnxGraph;
}

export function parseModel(bytes: Uint8Array): OnnxModel {
  const fields = readFields(bytes);
  const gf = fields.find((f) => f.field === 7);
  if (!gf) throw new Error("ONNX model has no graph");
  return { fields, graphBytes: gf.bytes!, graph: parseGraph(gf.bytes!) };
}

export function attrGraph(a: WireField[] | undefined): Uint8Array | undefined {
  return a?.find((x) => x.field === 6)?.bytes;
}
export function attrString(a: WireField[] | undefined): string | undefined {
  const b = a?.find((x) => x.field === 4)?.bytes;
  return b ? str(b) : undefined;
}
export function attrInt(a: WireField[] | undefined): number | undefined {
  const v = a?.find((x) => x.field === 3)?.varint;
  return v === undefined ? undefined : Number(BigInt.asIntN(64, v));
}

/** A tensor initializer's shape, element type and payload (little-endian, one element per
 * element size; int32_data-packed bytes are widened back to one byte each). */
export interface OnnxTensor {
  dims: number[];
  dataType: number;
  data: Uint8Array;
}

function packedVarints(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < b.length; ) {
    const [v, next] = readVarint(b, pos);
    out.push(Number(BigInt.asIntN(64, v)));
    pos = next;
  }
  return out;
}

/** Reads an initializer record (GraphProto field 5). External data is not supported. */
export function readTensor(f: WireField): OnnxTensor {
  const t: OnnxTensor = { dims: [], dataType: 0, data: new Uint8Array(0) };
  for (const x of readFields(f.bytes!)) {
    if (x.field === 1) t.dims.push(...(x.varint !== undefined ? [Number(x.varint)] : packedVarints(x.bytes!)));
    else if (x.field === 2) t.dataType = Number(x.varint);
    else if (x.field === 9 || x.field === 4) t.data = x.bytes!; // raw_data, packed float_data
    else if (x.field === 5) t.data = Uint8Array.from(packedVarints(x.bytes!), (v) => v & 0xff); // int32_data of 8-bit types
    else if (x.field === 13 || (x.field === 14 && x.varint !== 0n)) throw new Error("ONNX tensor with external data");
  }
  return t;
}

/** Every value name a graph (and its nested subgraphs) reads but does not define itself. */
export function freeInputs(g: OnnxGraph): Set<string> {
  const defined = new Set<string>([...g.inputs, ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) defined.add(o);
  const free = new Set<string>();
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i && !defined.has(i)) free.add(i);
    for (const a of n.attributes.values()) {
      const sub = attrGraph(a);
      if (sub) for (const i of freeInputs(parseGraph(sub))) if (!defined.has(i)) free.add(i);
    }
  }
  return free;
}

// ---- Writers for the few new records graph surgery needs ----------------------------------

export const enum AttrType { FLOAT = 1, INT = 2, STRING = 3, INTS = 7 }

export function attrIntRecord(name: string, v: number): Uint8Array {
  return lenField(5, [stringField(1, name), varintField(3, BigInt.asUintN(64, BigInt(v))), varintField(20, AttrType.INT)]);
}
export function attrIntsRecord(name: string, vs: number[]): Uint8Array {
  return lenField(5, [stringField(1, name), ...vs.map((v) => varintField(8, BigInt.asUintN(64, BigInt(v)))), varintField(20, AttrType.INTS)]);
}
export function attrFloatRecord(name: string, v: number): Uint8Array {
  const f = new Uint8Array(4);
  new DataView(f.buffer).setFloat32(0, v, true);
  return lenField(5, [stringField(1, name), new Uint8Array([(2 << 3) | 5]), f, varintField(20, AttrType.FLOAT)]);
}

/** A graph-valued attribute (If's then_branch / else_branch). */
export function attrGraphRecord(name: string, graph: Uint8Array[]): Uint8Array {
  return lenField(5, [stringField(1, name), lenField(6, graph), varintField(20, 5 /* GRAPH */)]);
}
/** A tensor-valued attribute (Constant's value): `tensor` is an encoded TensorProto body. */
export function attrTensorRecord(name: string, tensor: Uint8Array[]): Uint8Array {
  return lenField(5, [stringField(1, name), lenField(5, tensor), varintField(20, 4 /* TENSOR */)]);
}

/** An encoded GraphProto.node record (field 1). `attrs` are records from attr*Record. */
export function nodeRecord(opType: string, inputs: string[], outputs: string[], name: string, attrs: Uint8Array[] = [], domain = ""): Uint8Array {
  return lenField(1, [
    ...inputs.map((i) => stringField(1, i)),
    ...outputs.map((o) => stringField(2, o)),
    stringField(3, name),
    stringField(4, opType),
    ...attrs,
    ...(domain ? [stringField(7, domain)] : []),
  ]);
}

/** An encoded int64 initializer record (GraphProto field 5). */
export function int64InitRecord(name: string, dims: number[], values: number[]): Uint8Array {
  const raw = new Uint8Array(values.length * 8);
  const dv = new DataView(raw.buffer);
  values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
  return lenField(5, [...dims.map((d) => varintField(1, d)), varintField(2, 7 /* INT64 */), stringField(8, name), lenField(9, [raw])]);
}

/** An encoded float initializer record (GraphProto field 5). */
export function floatInitRecord(name: string, dims: number[], data: Float32Array): Uint8Array {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return lenField(5, [...dims.map((d) => varintField(1, d)), varintField(2, 1 /* FLOAT */), stringField(8, name), lenField(9, [raw])]);
}

/** An encoded ValueInfoProto for a tensor of ONNX element type `elemType` (1 float, 6 int32, 7 int64),
 * as graph input/output `field`; without `dims` its shape is unknown. */
export function valueInfoRecord(field: 11 | 12, name: string, elemType: number, dims?: number[]): Uint8Array {
  // TypeProto{tensor_type(1): {elem_type(1), shape(2): {dim(1): {dim_value(1) | dim_param(2)}}}}
  const shape = dims
    ? [lenField(2, dims.map((d, i) => lenField(1, [d >= 0 ? varintField(1, d) : stringField(2, `d${i}`)])))]
    : [];
  return lenField(field, [stringField(1, name), lenField(2, [lenField(1, [varintField(1, elemType), ...shape])])]);
}

/** An encoded ValueInfoProto for a float tensor. */
export function floatValueInfoRecord(field: 11 | 12, name: string, dims?: number[]): Uint8Array {
  return valueInfoRecord(field, name, 1, dims);
}

/** An encoded ModelProto.opset_import record (field 8). */
export function opsetRecord(domain: string, version: number): Uint8Array {
  return lenField(8, [stringField(1, domain), varintField(2, version)]);
}

/** An encoded ModelProto (ir_version 8) around graph records, with opset_import records and an
 * optional producer name. */
export function modelRecord(graphParts: Uint8Array[], opsets: Uint8Array[] = [opsetRecord("", 17)], producer?: string): Uint8Array {
  return concat([varintField(1, 8), ...(producer ? [stringField(2, producer)] : []), ...opsets, lenField(7, graphParts)]);
}
