// Rewrites htdemucs' exported attention (MatMul(q·s, kᵀ·s) → Softmax → MatMul(·, v), heads already
// split as [1, H, S, d]) into onnxruntime's com.microsoft MultiHeadAttention, whose CPU kernel runs
// MLAS flash attention: the [H, S, L] score maps (8×2688×2688 floats = 231 MB each in the frequency
// transformer) are never materialised, and the attention runs faster.
// Browser-safe (protobufjs only); onnxruntime-web runs the op too, unfused.
import { ModelProto } from "./onnx-proto";

const MS_DOMAIN = "com.microsoft";

/** A Constant node producing an int64 vector (shapes, axes); shared by the graph rewrites. */
export function int64Const(name: string, values: number[]): any {
  return {
    opType: "Constant",
    name: `${name}_node`,
    input: [],
    output: [name],
    attribute: [{ name: "value", type: 4 /* TENSOR */, t: { dims: [values.length], dataType: 7 /* INT64 */, int64Data: values } }],
  };
}

/** How many attention blocks were rewritten, and the new model bytes. */
export function fuseAttention(model: Uint8Array): { bytes: Uint8Array; fused: number } {
  const m: any = ModelProto.decode(model);
  const fused = fuseAttentionIn(m);
  return { bytes: fused ? ModelProto.encode(ModelProto.fromObject(m)).finish() : model, fused };
}

/** The same on a decoded ModelProto, rewritten in place (saves an encode/decode before splitting). */
export function fuseAttentionIn(m: any): number {
  const g = m.graph;
  const nodes: any[] = g.node;
  const producer = new Map<string, any>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const consumers = new Map<string, any[]>();
  for (const n of nodes) for (const i of n.input) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(n);

  const replaced = new Map<any, any[]>(); // Softmax node -> nodes inserted in its place
  const dropped = new Set<any>();
  let k = 0;
  for (const sm of nodes) {
    if (sm.opType !== "Softmax") continue;
    const axis = sm.attribute?.find((a: any) => a.name === "axis");
    if (axis && Number(axis.i) !== -1 && Number(axis.i) !== 3) continue;
    const mm1 = producer.get(sm.input[0]);
    const users = consumers.get(sm.output[0]) ?? [];
    const mm2 = users.length === 1 && users[0].opType === "MatMul" && users[0].input[0] === sm.output[0] ? users[0] : undefined;
    if (!mm1 || mm1.opType !== "MatMul" || !mm2) continue;
    // q·√s and kᵀ·√s: scale 1/√d overall, which is MultiHeadAttention's default.
    const qMul = producer.get(mm1.input[0]);
    const kMul = producer.get(mm1.input[1]);
    if (qMul?.opType !== "Mul" || kMul?.opType !== "Mul") continue;
    const kT = producer.get(kMul.input[0]);
    if (kT?.opType !== "Transpose") continue;
    const perm = kT.attribute?.find((a: any) => a.name === "perm")?.ints?.map(Number);
    if (JSON.stringify(perm) !== "[0,1,3,2]") continue;
    const q = qMul.input[0];
    const kk = kT.input[0];
    const v = mm2.input[1];
    const p = `/stemscribe/mha${k++}`;
    const heads = 8; // htdemucs: 8 heads of 64 (tests/separation.test.ts compares both graphs)
    const toBSD = (x: string, tag: string) => [
      { opType: "Transpose", name: `${p}/${tag}_t`, input: [x], output: [`${p}/${tag}_bsnh`], attribute: [{ name: "perm", type: 7, ints: [0, 2, 1, 3] }] },
      { opType: "Reshape", name: `${p}/${tag}_r`, input: [`${p}/${tag}_bsnh`, `${p}/bsd_shape`], output: [`${p}/${tag}_bsd`] },
    ];
    replaced.set(sm, [
      int64Const(`${p}/bsd_shape`, [0, 0, -1]),
      int64Const(`${p}/bsnh_shape`, [0, 0, heads, -1]),
      ...toBSD(q, "q"),
      ...toBSD(kk, "k"),
      ...toBSD(v, "v"),
      {
        opType: "MultiHeadAttention",
        domain: MS_DOMAIN,
        name: `${p}/mha`,
        input: [`${p}/q_bsd`, `${p}/k_bsd`, `${p}/v_bsd`],
        output: [`${p}/out_bsd`],
        attribute: [{ name: "num_heads", type: 2 /* INT */, i: heads }],
      },
      { opType: "Reshape", name: `${p}/o_r`, input: [`${p}/out_bsd`, `${p}/bsnh_shape`], output: [`${p}/o_bsnh`] },
      { opType: "Transpose", name: `${p}/o_t`, input: [`${p}/o_bsnh`], output: [mm2.output[0]], attribute: [{ name: "perm", type: 7, ints: [0, 2, 1, 3] }] },
    ]);
    dropped.add(mm1).add(mm2).add(qMul).add(kMul).add(kT);
  }
  if (replaced.size === 0) return 0;

  const out: any[] = [];
  for (const n of nodes) {
    if (replaced.has(n)) out.push(...replaced.get(n)!);
    else if (!dropped.has(n)) out.push(n);
  }
  // Drop what only fed the removed nodes (the scale computations), repeatedly.
  const graphOutputs = new Set<string>(g.output.map((o: any) => o.name));
  let live = out;
  let used: Set<string>;
  for (;;) {
    used = new Set<string>();
    for (const n of live) for (const i of n.input) used.add(i);
    const next = live.filter((n) => n.output.some((o: string) => used.has(o) || graphOutputs.has(o)));
    if (next.length === live.length) break;
    live = next;
  }
  g.node = live;
  g.initializer = g.initializer.filter((t: any) => used.has(t.name) || graphOutputs.has(t.name));
  if (!m.opsetImport.some((o: any) => o.domain === MS_DOMAIN)) m.opsetImport.push({ domain: MS_DOMAIN, version: 1 });
  return replaced.size;
}
