// The embedded Whisper is int8 with dynamic activation quantization: every projection is
// DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q) -> Cast -> Mul(x_scale * W_scale). Rounding x
// to 8 bits at run time amplifies last-bit differences between runtimes: onnxruntime-web's float
// kernels round differently from the native ones, one flipped 8-bit activation grows layer by
// layer, and the in-browser transcript parted from the server's (encoder logits up to 0.34 apart,
// 7 of 10 clips equal). floatActivationModel turns each such projection into MatMul(x, W) with W
// dequantized once, at load: the same int8 weights, (W_q - zero) * scale, exact in float32; only
// the activations stay in float. The two runtimes then agree to ~2e-5 on the logits and give the
// same transcripts (bench/whisper-parity.ts --activations float). The price is speed on the server
// (float GEMMs, 4x the weight bytes a decoder step reads), so it is an option (--whisper-activations).
// Pure: bytes in, bytes out, so the server and the browser's worker run the same rewrite.
import * as W from "./onnx-wire";

/** The embedded model's activations: "int8", quantized at run time as shipped (fastest), or "float"
 * (the same weights; the browser's transcripts then equal the server's). */
export type WhisperActivations = "int8" | "float";
export const WHISPER_ACTIVATIONS: readonly WhisperActivations[] = ["int8", "float"];

/** Element type codes of TensorProto.data_type this reads. */
const UINT8 = 2;
const INT8 = 3;
const FLOAT = 1;

/** A tensor's values as numbers (small tensors: zero points and scales). */
function elements(t: W.OnnxTensor): ArrayLike<number> {
  const { buffer, byteOffset, byteLength } = t.data;
  if (t.dataType === UINT8) return new Uint8Array(buffer, byteOffset, byteLength);
  if (t.dataType === INT8) return new Int8Array(buffer, byteOffset, byteLength);
  if (t.dataType === FLOAT) return new Float32Array(t.data.slice().buffer); // raw data need not be 4-byte aligned
  throw new Error(`float-matmul: tensor type ${t.dataType} not handled`);
}

/** (q - zero) * scale, per tensor or per output column (the last axis); exact in float32, since
 * an 8-bit difference times a float32 scale rounds once either way. */
function dequantize(q: W.OnnxTensor, zero: W.OnnxTensor, scale: W.OnnxTensor): Float32Array {
  const v = elements(q);
  const z = elements(zero);
  const s = elements(scale);
  const cols = q.dims[q.dims.length - 1]!;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = i % cols;
    out[i] = (v[i]! - z[z.length === 1 ? 0 : c]!) * s[s.length === 1 ? 0 : c]!;
  }
  return out;
}

/**
 * `sub` (a GraphProto) with every DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul chain
 * replaced by a float MatMul. `initializer` looks up the weights (the subgraph's or an enclosing
 * graph's); the dequantized weights are added to `made` (name -> initializer record) once each, so
 * subgraphs that share weights share them dequantized too. Graph attributes (If branches) are
 * rewritten as well. Throws on a chain of an unexpected shape rather than leaving a half-quantized
 * graph.
 */
export function floatActivationMatMuls(sub: Uint8Array, initializer: (name: string) => W.WireField | undefined, made: Map<string, Uint8Array>): Uint8Array {
  const g = W.parseGraph(sub);
  const producer = new Map<string, W.OnnxNode>();
  const readers = new Map<string, W.OnnxNode[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) (readers.get(i) ?? readers.set(i, []).get(i)!).push(n);
  }
  const only = (name: string, op: string): W.OnnxNode => {
    const r = readers.get(name) ?? [];
    if (r.length !== 1 || r[0]!.opType !== op) throw new Error(`float-matmul: ${name} is not read by one ${op}`);
    return r[0]!;
  };
  const tensor = (name: string): W.OnnxTensor => {
    const f = g.initializers.get(name) ?? initializer(name);
    if (!f) throw new Error(`float-matmul: ${name} is not an initializer`);
    return W.readTensor(f);
  };
  const dropped = new Set<W.OnnxNode>();
  const replaced = new Map<W.OnnxNode, Uint8Array>();
  const before = new Map<W.OnnxNode, Uint8Array>(); // a float Slice, placed just before its MatMul (subgraphs must stay sorted)
  for (const mmi of g.nodes) {
    if (mmi.opType !== "MatMulInteger") continue;
    const [xq, wq, , wZero] = mmi.inputs;
    let quantize = producer.get(xq!);
    let slicing: Uint8Array | undefined;
    let x = quantize?.inputs[0];
    if (quantize?.opType === "Slice") {
      // derive.ts' promptLogitsTail slices the quantized prompt before the vocabulary projection:
      // slice the float prompt instead
      const slice = quantize;
      quantize = producer.get(slice.inputs[0]!);
      x = `${slice.outputs[0]}_float`;
      slicing = W.nodeRecord("Slice", [quantize?.inputs[0] ?? "", ...slice.inputs.slice(1)], [x], `${slice.name}_float`);
      dropped.add(slice);
    }
    if (quantize?.opType !== "DynamicQuantizeLinear" || !x || !wq || !wZero) throw new Error(`float-matmul: ${mmi.name} does not read a DynamicQuantizeLinear output`);
    const cast = only(mmi.outputs[0]!, "Cast");
    const mul = only(cast.outputs[0]!, "Mul");
    const scales = producer.get(mul.inputs.find((i) => i !== cast.outputs[0])!);
    const wScale = scales?.opType === "Mul" ? scales.inputs.find((i) => i !== quantize.outputs[1]) : undefined;
    if (!scales || !wScale || (readers.get(scales.outputs[0]!) ?? []).length !== 1) throw new Error(`float-matmul: ${mmi.name}'s scale is not x_scale * W_scale`);
    const wName = `${wq}_dequantized`;
    if (!made.has(wName)) {
      const q = tensor(wq);
      made.set(wName, W.floatInitRecord(wName, q.dims, dequantize(q, tensor(wZero), tensor(wScale))));
    }
    dropped.add(mmi).add(cast).add(scales);
    replaced.set(mul, W.nodeRecord("MatMul", [x, wName], mul.outputs, `${mmi.name}_float`));
    if (slicing) before.set(mul, slicing);
  }
  for (const n of g.nodes) {
    if (n.opType !== "DynamicQuantizeLinear") continue;
    const kept = n.outputs.flatMap((o) => readers.get(o) ?? []).filter((r) => !dropped.has(r) && !replaced.has(r));
    if (!kept.length) dropped.add(n);
  }
  const byRecord = new Map(g.nodes.map((n) => [n.raw, n]));
  const inner = (name: string) => g.initializers.get(name) ?? initializer(name);
  const parts: Uint8Array[] = [];
  for (const f of g.fields) {
    const n = f.field === 1 ? byRecord.get(f.raw) : undefined;
    if (n && dropped.has(n)) continue;
    if (n && before.has(n)) parts.push(before.get(n)!);
    parts.push((n && replaced.get(n)) ?? (n ? withSubgraphs(n, inner, made) : f.raw));
  }
  return W.concat(parts);
}

/** The node with its graph attributes (If branches) rewritten too; its own record if it has none. */
function withSubgraphs(n: W.OnnxNode, initializer: (name: string) => W.WireField | undefined, made: Map<string, Uint8Array>): Uint8Array {
  if (![...n.attributes.values()].some((a) => W.attrGraph(a))) return n.raw;
  const fields = W.readFields(W.readFields(n.raw)[0]!.bytes!);
  return W.lenField(1, fields.map((f) => {
    if (f.field !== 5) return f.raw;
    const a = W.readFields(f.bytes!);
    const g = W.attrGraph(a);
    return g ? W.attrGraphRecord(W.str(a.find((x) => x.field === 1)?.bytes), [floatActivationMatMuls(g, initializer, made)]) : f.raw;
  }));
}

/** Every value name the graph's nodes read, subgraphs included. */
function namesRead(graphBytes: Uint8Array, into = new Set<string>()): Set<string> {
  for (const n of W.parseGraph(graphBytes).nodes) {
    for (const i of n.inputs) into.add(i);
    for (const a of n.attributes.values()) {
      const g = W.attrGraph(a);
      if (g) namesRead(g, into);
    }
  }
  return into;
}

/**
 * A model (standalone, or with the projections inside If branches reading the outer graph's
 * weights, like combined.onnx) with float activations: the int8 weights that nothing reads any
 * more are dropped, their dequantized copies added once.
 */
export function floatActivationModel(modelBytes: Uint8Array): Uint8Array {
  const m = W.parseModel(modelBytes);
  const made = new Map<string, Uint8Array>();
  const graph = floatActivationMatMuls(m.graphBytes, () => undefined, made);
  if (!made.size) return modelBytes;
  const read = namesRead(graph);
  const parts = W.readFields(graph).filter((f) => f.field !== 5 || read.has(W.str(W.readFields(f.bytes!).find((x) => x.field === 8)?.bytes))).map((f) => f.raw);
  parts.push(...made.values());
  return W.concat([...m.fields.filter((f) => f.field !== 7).map((f) => f.raw), W.lenField(7, parts)]);
}
