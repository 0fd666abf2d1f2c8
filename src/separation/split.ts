// Splits an ONNX graph into consecutive sub-graphs (one per top-level module: tencoder.i, encoder.i,
// each cross-transformer layer, decoder.i, ...) that run one after another as separate sessions.
//
// Why: measured with onnxruntime 1.30 (CPU, arena and memory pattern off), one htdemucs run's RSS
// climbs steadily by ~1.9 GB and only drops when the run ends: memory is not handed back while a
// run is in progress. Running the graph as several short runs (8 by default) bounds that growth to the biggest part (an
// attention layer) and also gives sub-second points at which a cancel can stop the work.
// Browser-safe (protobufjs only).
import { ModelProto } from "./onnx-proto";

export interface GraphPart {
  /** ONNX bytes of this part. */
  bytes: Uint8Array;
  /** Tensor names this part reads from earlier parts or the graph inputs. */
  inputs: string[];
  /** Tensor names this part produces that later parts or the graph outputs need. */
  outputs: string[];
}

const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;

function partKey(name: string): string {
  // "/encoder.0/dconv/..." -> "encoder.0"; "/crosstransformer/layers.3/..." -> "crosstransformer/layers.3"
  const p = name.split("/").filter(Boolean);
  if (p.length < 2) return ""; // root-level op ("/Add_2", "Constant_1225"): stays with its neighbours
  if (p[0] === "crosstransformer") return p.length > 2 && /^layers/.test(p[1]!) ? `${p[0]}/${p[1]}` : p[0]!;
  return p[0]!;
}

/** Element types of every tensor in the graph (ONNX TensorProto data types), by simple propagation. */
function inferTypes(graph: any): Map<string, number> {
  const types = new Map<string, number>();
  for (const t of graph.initializer) types.set(t.name, t.dataType);
  for (const v of graph.input) types.set(v.name, v.type?.tensorType?.elemType ?? FLOAT);
  const attr = (n: any, name: string) => n.attribute?.find((a: any) => a.name === name);
  for (const n of graph.node) {
    let t: number;
    const in0 = types.get(n.input[0]) ?? FLOAT;
    switch (n.opType) {
      case "Shape":
      case "Size":
      case "NonZero":
      case "ArgMax":
      case "ArgMin":
        t = INT64;
        break;
      case "Constant":
        t = attr(n, "value")?.t?.dataType ?? (attr(n, "value_int") || attr(n, "value_ints") ? INT64 : FLOAT);
        break;
      case "ConstantOfShape":
        t = attr(n, "value")?.t?.dataType ?? FLOAT;
        break;
      case "Cast":
        t = Number(attr(n, "to")?.i ?? FLOAT);
        break;
      case "Equal":
      case "Less":
      case "Greater":
      case "LessOrEqual":
      case "GreaterOrEqual":
      case "Not":
      case "And":
      case "Or":
      case "IsNaN":
        t = BOOL;
        break;
      case "Where":
        t = types.get(n.input[1]) ?? FLOAT;
        break;
      default:
        t = in0;
    }
    for (const o of n.output) if (o) types.set(o, t);
  }
  return types;
}

export interface GraphIO {
  name: string;
  /** Dimensions (null where symbolic or unknown). */
  dims: (number | null)[] | null;
}

export interface SplitGraph {
  parts: GraphPart[];
  inputs: GraphIO[];
  outputs: GraphIO[];
}

function io(v: any): GraphIO {
  const dim = v.type?.tensorType?.shape?.dim;
  return {
    name: v.name,
    dims: Array.isArray(dim) ? dim.map((d: any) => (d.dimValue != null ? Number(d.dimValue) : null)) : null,
  };
}

/**
 * Splits `model` (ONNX bytes) at top-level module boundaries, merging neighbouring groups until each
 * part has at least `minNodes` nodes. Returns the parts in execution order.
 */
export function splitModel(model: Uint8Array | object, minNodes = 60): SplitGraph {
  const m: any = model instanceof Uint8Array ? ModelProto.decode(model) : model; // bytes or a decoded ModelProto
  const g = m.graph;
  const nodes: any[] = g.node;
  const types = inferTypes(g);

  // group consecutive nodes by module
  const groups: any[][] = [];
  let current = "";
  for (const n of nodes) {
    const k = partKey(n.name ?? "");
    if (groups.length === 0 || (k !== "" && k !== current && groups[groups.length - 1]!.length >= minNodes)) {
      groups.push([]);
    }
    if (k !== "") current = k;
    groups[groups.length - 1]!.push(n);
  }

  const initByName = new Map<string, any>(g.initializer.map((t: any) => [t.name, t]));
  const graphInputs = new Set<string>(g.input.map((v: any) => v.name));
  const graphOutputs: string[] = g.output.map((v: any) => v.name);
  // last group index that reads each tensor
  const lastUse = new Map<string, number>();
  groups.forEach((grp, i) => {
    for (const n of grp) for (const x of n.input) if (x) lastUse.set(x, i);
  });
  for (const o of graphOutputs) lastUse.set(o, groups.length);

  const parts: GraphPart[] = [];
  groups.forEach((grp, i) => {
    const produced = new Set<string>();
    const inputs: string[] = [];
    const inits: any[] = [];
    const seen = new Set<string>();
    for (const n of grp) {
      for (const x of n.input) {
        if (!x || produced.has(x) || seen.has(x)) continue;
        seen.add(x);
        const init = initByName.get(x);
        if (init) inits.push(init);
        else inputs.push(x);
      }
      for (const o of n.output) if (o) produced.add(o);
    }
    const outputs = [...produced].filter((o) => (lastUse.get(o) ?? -1) > i);
    for (const x of inputs) if (!graphInputs.has(x) && !types.has(x)) throw new Error(`split: no type for ${x}`);
    const vi = (name: string) => {
      const orig = [...g.input, ...g.output].find((v: any) => v.name === name);
      return orig ?? { name, type: { tensorType: { elemType: types.get(name) ?? FLOAT } } };
    };
    const sub = {
      irVersion: m.irVersion,
      producerName: "stemscribe-split",
      opsetImport: m.opsetImport,
      graph: {
        name: `part${i}`,
        node: grp,
        initializer: inits,
        input: inputs.map(vi),
        output: outputs.map(vi),
      },
    };
    parts.push({ bytes: ModelProto.encode(ModelProto.fromObject(sub)).finish(), inputs, outputs });
  });
  return { parts, inputs: g.input.filter((v: any) => !initByName.has(v.name)).map(io), outputs: g.output.map(io) };
}
