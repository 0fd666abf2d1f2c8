// Rewrites htdemucs' decoder upsampling (ConvTranspose, kernel K = 2·stride along one axis, no
// padding) into two 1×1 Convs and an interleave. Why: onnxruntime's CPU ConvTranspose runs a GEMM
// plus col2im at ~15 GFLOP/s here (decoder.2 alone took 237 ms a segment); a 1×1 Conv is a plain
// MLAS GEMM several times faster, and the rest is a few memory passes.
//
// With s = stride and K = 2s, output block g (positions s·g .. s·g+s-1) receives tap r of input g
// and tap r+s of input g-1:  out[co, s·g + r] = Σ_ci W[ci,co,r]·x[ci,g] + Σ_ci W[ci,co,r+s]·x[ci,g-1].
// So Y0 = Conv1×1(x; W[:, :, :s]) padded by one zero row at the end of the axis, Y1 = the same with
// W[:, :, s:] padded at the start (the Convs' own `pads` do it), Z = Y0 + Y1 has F+1 blocks of
// Cout·s channels, and reshaping [Cout, s, F+1] → [Cout, F+1, s] interleaves them. The bias rides
// on Y0, whose padded row is all bias, so every output position gets it exactly once.
// Browser-safe (protobufjs only); works on a decoded ModelProto in place, like attention.ts.

function int64Const(name: string, values: number[]): any {
  return {
    opType: "Constant",
    name: `${name}_node`,
    input: [],
    output: [name],
    attribute: [{ name: "value", type: 4 /* TENSOR */, t: { dims: [values.length], dataType: 7 /* INT64 */, int64Data: values } }],
  };
}

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
  const wDims = [cout * s, cin, ...new Array(spatial).fill(1)];
  const w0 = new Float32Array(cout * s * cin);
  const w1 = new Float32Array(cout * s * cin);
  const b0 = new Float32Array(cout * s);
  for (let co = 0; co < cout; co++) {
    for (let r = 0; r < s; r++) {
      b0[co * s + r] = B[co]!;
      for (let ci = 0; ci < cin; ci++) {
        w0[(co * s + r) * cin + ci] = W[(ci * cout + co) * K + r]!;
        w1[(co * s + r) * cin + ci] = W[(ci * cout + co) * K + r + s]!;
      }
    }
  }
  // Named under the original node, so split.ts keeps them in the same module's part.
  const p = `${n.name || `/convtr${k}`}/stemscribe`;
  g.initializer.push(floatTensor(`${p}/w0`, wDims, w0), floatTensor(`${p}/w1`, wDims, w1), floatTensor(`${p}/b0`, [cout * s], b0));
  // pads: [begin axis0, (begin axis1), end axis0, (end axis1)]
  const padEnd = spatial === 1 ? [0, 1] : [0, 0, 1, 0];
  const padBegin = spatial === 1 ? [1, 0] : [1, 0, 0, 0];
  const ones = new Array(spatial).fill(1);
  const conv = (name: string, inputs: string[], pads: number[]) => ({
    opType: "Conv",
    name,
    input: inputs,
    output: [name],
    attribute: [
      { name: "kernel_shape", type: 7, ints: ones },
      { name: "strides", type: 7, ints: ones },
      { name: "pads", type: 7, ints: pads },
    ],
  });
  const x = n.input[0];
  const nodes: any[] = [
    conv(`${p}/y0`, [x, `${p}/w0`, `${p}/b0`], padEnd),
    conv(`${p}/y1`, [x, `${p}/w1`], padBegin),
    { opType: "Add", name: `${p}/z`, input: [`${p}/y0`, `${p}/y1`], output: [`${p}/z`] },
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
