// Rewrites htdemucs' decoder upsampling (ConvTranspose, kernel K = 2·stride along one axis, no
// padding) into one 2-tap Conv and an interleave. Why: onnxruntime's CPU ConvTranspose runs a GEMM
// plus col2im at ~15 GFLOP/s here (decoder.2 alone took 237 ms a segment); the Conv is an MLAS
// GEMM several times faster, and the interleave is one transpose.
//
// With s = stride and K = 2s, output block g (positions s·g .. s·g+s-1) receives tap r of input g
// and tap r+s of input g-1:  out[co, s·g + r] = Σ_ci W[ci,co,r]·x[ci,g] + Σ_ci W[ci,co,r+s]·x[ci,g-1].
// That is a Conv with kernel 2 over x padded by one zero row on each side, whose Cout·s output
// channels (co·s + r) hold tap r+s on x[g-1] and tap r on x[g]: Z has F+1 blocks, and reshaping
// [Cout, s, F+1] → [Cout, F+1, s] interleaves them. (Two 1×1 Convs + Add measured the same
// output; this saves the Add and one intermediate.)
// Browser-safe (protobufjs only); works on a decoded ModelProto in place, like attention.ts.
import { int64Const } from "./attention";

function floatData(t: any): Float32Array {
  if (t.rawData?.length) {
    const raw: Uint8Array = t.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(t.floatData ?? []);
}

function floatTensor(name: string, dims: number[], data: Float32Array): any {
  return { name, dims, dataType: 1, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

const attrOf = (n: any, name: string) => n.attribute?.find((a: any) => a.name === name);
const ints = (n: any, name: string): number[] | undefined => attrOf(n, name)?.ints?.map(Number);

/** Rewrites every matching ConvTranspose of a decoded ModelProto in place; returns how many. */
export function rewriteConvTransposeIn(m: any): number {
  const g = m.graph;
  const inits = new Map<string, any>(g.initializer.map((t: any) => [t.name, t]));
  const out: any[] = [];
  let count = 0;
  for (const n of g.node) {
    const rewritten = n.opType === "ConvTranspose" ? rewriteOne(n, inits, g, count) : undefined;
    if (rewritten) {
      out.push(...rewritten);
      count++;
    } else out.push(n);
  }
  if (count) {
    g.node = out;
    // the replaced weights are read by nobody now
    const used = new Set<string>();
    for (const n of out) for (const i of n.input) used.add(i);
    g.initializer = g.initializer.filter((t: any) => used.has(t.name) || !inits.has(t.name) || g.output.some((o: any) => o.name === t.name));
  }
  return count;
}

function rewriteOne(n: any, inits: Map<string, any>, g: any, k: number): any[] | undefined {
  const w = inits.get(n.input[1]);
  const kernel: number[] | undefined = ints(n, "kernel_shape") ?? w?.dims.slice(2).map(Number);
  const strides = ints(n, "strides");
  if (!w || !kernel || !strides || kernel.length !== strides.length || (kernel.length !== 1 && kernel.length !== 2)) return undefined;
  const group = attrOf(n, "group");
  if (group && Number(group.i) !== 1) return undefined;
  if ((ints(n, "pads") ?? []).some((p) => p !== 0)) return undefined;
  if ((ints(n, "dilations") ?? []).some((d) => d !== 1)) return undefined;
  if ((ints(n, "output_padding") ?? []).some((d) => d !== 0) || attrOf(n, "output_shape") || attrOf(n, "auto_pad")?.s?.length) return undefined;
  // upsampling along the first spatial axis only (the 2D case has kernel [K, 1], stride [s, 1])
  const K = kernel[0]!;
  const s = strides[0]!;
  if (K !== 2 * s || kernel.slice(1).some((x: number) => x !== 1) || strides.slice(1).some((x: number) => x !== 1)) return undefined;
  const dims = w.dims.map(Number) as number[];
  const [cin, cout] = [dims[0]!, dims[1]!];
  const W = floatData(w);
  if (W.length !== cin * cout * K) return undefined;
  const bias = n.input[2] ? inits.get(n.input[2]) : undefined;
  if (n.input[2] && !bias) return undefined;
  const B = bias ? floatData(bias) : new Float32Array(cout);

  const spatial = kernel.length; // 1 or 2
  // One Conv with a 2-tap kernel along the upsampled axis: tap 0 (applied to x[g-1]) holds the
  // ConvTranspose taps s..2s-1, tap 1 (x[g]) the taps 0..s-1; one zero row of padding on each side
  // gives the F+1 output blocks, and each block gets the bias once.
  const wDims = [cout * s, cin, 2, ...new Array(spatial - 1).fill(1)];
  const w2 = new Float32Array(cout * s * cin * 2);
  const b2 = new Float32Array(cout * s);
  for (let co = 0; co < cout; co++) {
    for (let r = 0; r < s; r++) {
      b2[co * s + r] = B[co]!;
      for (let ci = 0; ci < cin; ci++) {
        const o = ((co * s + r) * cin + ci) * 2;
        w2[o] = W[(ci * cout + co) * K + r + s]!;
        w2[o + 1] = W[(ci * cout + co) * K + r]!;
      }
    }
  }
  // Named under the original node, so split.ts keeps them in the same module's part.
  const p = `${n.name || `/convtr${k}`}/stemscribe`;
  g.initializer.push(floatTensor(`${p}/weight`, wDims, w2), floatTensor(`${p}/bias`, [cout * s], b2));
  const nodes: any[] = [
    {
      opType: "Conv",
      name: `${p}/z`,
      input: [n.input[0], `${p}/weight`, `${p}/bias`],
      output: [`${p}/z`],
      attribute: [
        { name: "kernel_shape", type: 7, ints: [2, ...new Array(spatial - 1).fill(1)] },
        { name: "strides", type: 7, ints: new Array(spatial).fill(1) },
        // [begin axis0, (begin axis1), end axis0, (end axis1)]
        { name: "pads", type: 7, ints: spatial === 1 ? [1, 1] : [1, 0, 1, 0] },
      ],
    },
  ];
  const transpose = (perm: number[]) => ({ opType: "Transpose", name: `${p}/t`, input: [`${p}/z5`], output: [`${p}/t`], attribute: [{ name: "perm", type: 7, ints: perm }] });
  if (spatial === 1) {
    // [B, Cout·s, F+1] -> [B, Cout, s, F+1] -> [B, Cout, F+1, s] -> [B, Cout, s·(F+1)]
    nodes.push(
      int64Const(`${p}/shape5`, [0, cout, s, -1]),
      { opType: "Reshape", name: `${p}/z5`, input: [`${p}/z`, `${p}/shape5`], output: [`${p}/z5`] },
      transpose([0, 1, 3, 2]),
      int64Const(`${p}/shapeOut`, [0, cout, -1]),
      { opType: "Reshape", name: `${p}/out`, input: [`${p}/t`, `${p}/shapeOut`], output: [n.output[0]] },
    );
  } else {
    // [B, Cout·s, F+1, T] -> [B, Cout, s, F+1, T] -> [B, Cout, F+1, s, T] -> [B, Cout, s·(F+1), T];
    // the batch and the untouched axis are taken from the runtime shape.
    nodes.push(
      { opType: "Shape", name: `${p}/shape`, input: [`${p}/z`], output: [`${p}/shape`] },
      int64Const(`${p}/i0`, [0]),
      int64Const(`${p}/i1`, [1]),
      int64Const(`${p}/i2`, [2]),
      int64Const(`${p}/i4`, [4]),
      int64Const(`${p}/i3`, [3]),
      { opType: "Slice", name: `${p}/b`, input: [`${p}/shape`, `${p}/i0`, `${p}/i1`], output: [`${p}/b`] },
      { opType: "Slice", name: `${p}/ft`, input: [`${p}/shape`, `${p}/i2`, `${p}/i4`], output: [`${p}/ft`] },
      { opType: "Slice", name: `${p}/tt`, input: [`${p}/shape`, `${p}/i3`, `${p}/i4`], output: [`${p}/tt`] },
      int64Const(`${p}/cs`, [cout, s]),
      int64Const(`${p}/cm`, [cout, -1]),
      { opType: "Concat", name: `${p}/shape5`, input: [`${p}/b`, `${p}/cs`, `${p}/ft`], output: [`${p}/shape5`], attribute: [{ name: "axis", type: 2, i: 0 }] },
      { opType: "Concat", name: `${p}/shapeOut`, input: [`${p}/b`, `${p}/cm`, `${p}/tt`], output: [`${p}/shapeOut`], attribute: [{ name: "axis", type: 2, i: 0 }] },
      { opType: "Reshape", name: `${p}/z5`, input: [`${p}/z`, `${p}/shape5`], output: [`${p}/z5`] },
      transpose([0, 1, 3, 2, 4]),
      { opType: "Reshape", name: `${p}/out`, input: [`${p}/t`, `${p}/shapeOut`], output: [n.output[0]] },
    );
  }
  return nodes;
}
