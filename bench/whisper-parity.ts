// Whisper parity probe: the same derived model in onnxruntime-node vs onnxruntime-web (WASM).
// (1) encoder logits max |diff| for a deterministic mel; (2) transcripts of the harvard clips;
// (3) with --per-op: every encoder node run alone in both runtimes on the same inputs (onnxruntime-
// node's intermediates), per op type: how many nodes give different outputs, and the largest |diff|.
// With --long, (2) also covers long-harvard.wav (270 s, 10 windows) and the song's true vocal stem,
// and reports how many words differ where the texts do. With --activations float both sides run the
// model with float activations (src/whisper/float-matmul.ts), and (2) compares the server's own path
// (loadDefaultWhisperModel: the combined model, onnxruntime's C API under Bun) with the browser's.
// Usage: bun bench/whisper-parity.ts [--dir models/whisper-tiny.en] [--activations int8|float] [--no-transcribe] [--long] [--per-op]
import { readdirSync, readFileSync } from "node:fs";
import * as W from "../src/whisper/onnx-wire";
import { join } from "node:path";
import * as nodeOrt from "onnxruntime-node";
import { decodeAudio } from "../src/audio/decode";
import { quietContext } from "../src/core/work";
import { loadWhisperModel, type OrtModule } from "../src/whisper/model";
import { floatActivationModel } from "../src/whisper/float-matmul";
import { ensureWhisperModel, loadDefaultWhisperModel } from "../src/whisper/node";
import { transcribe } from "../src/whisper/transcribe";
import { wer } from "../src/whisper/wer";

const args = process.argv.slice(2);
const dir = args.includes("--dir") ? args[args.indexOf("--dir") + 1]! : ensureWhisperModel("models");
const floatActs = args.includes("--activations") && args[args.indexOf("--activations") + 1] === "float";
const web = (await import("onnxruntime-web")) as any;
web.env.wasm.numThreads = 1;
const bytes = (f: string) => {
  const b = new Uint8Array(readFileSync(join(dir, f)));
  return floatActs && f !== "mel.onnx" ? floatActivationModel(b) : b;
};

// (1) encoder logits
const mel = new Float32Array(80 * 3000);
for (let i = 0; i < mel.length; i++) mel[i] = Math.sin(i * 0.0137) * 0.8 + Math.cos(i * 0.00071) * 0.3 - 0.2;
async function logits(ort: any, opts: Record<string, unknown>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes("encoder.onnx"), opts);
  const out = await s.run({
    encoder_input_ids: new ort.Tensor("float32", mel, [1, 80, 3000]),
    decoder_input_ids: new ort.Tensor("int32", Int32Array.from([50257]), [1, 1]),
  }, ["logits"]);
  return out.logits.data as Float32Array;
}
const a = await logits(nodeOrt, { executionProviders: ["cpu"], intraOpNumThreads: 2, graphOptimizationLevel: "all", logSeverityLevel: 3 });
const b = await logits(web, { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 });
let maxDiff = 0;
for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
console.log(`encoder logits: n=${a.length} max|node-web|=${maxDiff.toExponential(3)}`);

if (!args.includes("--no-transcribe")) {
  // (2) transcripts
  const files = { mel: "mel.onnx", encoder: "encoder.onnx", decoder: "decoder.onnx", decoderAttn: "decoder-attn.onnx" };
  const common = { tokenizer: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")), config: JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) };
  const nm = floatActs
    ? await loadDefaultWhisperModel(join(dir, ".."), "float")
    : await loadWhisperModel({ ort: nodeOrt as unknown as OrtModule, ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(dir, f)])), ...common } as any);
  const wm = await loadWhisperModel({
    ort: web as OrtModule, ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, bytes(f)])), ...common,
    sessionOptions: { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 },
  } as any);
  const SPEECH = "/work/shared/fixtures/speech";
  const clips = readdirSync(SPEECH).filter((f) => /^harvard-.*\.wav$/.test(f)).sort().map((f) => join(SPEECH, f));
  if (args.includes("--long")) clips.push(join(SPEECH, "long-harvard.wav"), "/work/shared/fixtures/song/vocals.wav");
  const truth: Record<string, string> = JSON.parse(readFileSync(join(SPEECH, "transcripts.json"), "utf8"));
  try {
    const lyrics = JSON.parse(readFileSync("/work/shared/fixtures/song/lyrics.json", "utf8"));
    truth["vocals.wav"] = lyrics.lines.map((l: any) => l.text).join(" ");
  } catch {}
  let same = 0;
  for (const f of clips) {
    const audio = await decodeAudio(new Uint8Array(readFileSync(f)));
    const x = (await transcribe(nm, audio, {}, quietContext())).text.trim();
    const y = (await transcribe(wm, audio, {}, quietContext())).text.trim();
    if (x === y) same++;
    const name = f.split("/").slice(-2).join("/");
    // where they differ: the web text's word error rate against the node text, as a size of the difference
    const ref = truth[f.split("/").pop()!];
    const vsTruth = ref ? `; WER node ${(100 * wer(ref, x)).toFixed(1)}%, web ${(100 * wer(ref, y)).toFixed(1)}%` : "";
    const gap = x === y ? "" : ` (${(100 * wer(x, y)).toFixed(1)}% of ${x.split(/\s+/).length} words differ${vsTruth})`;
    console.log(`${x === y ? "same" : "DIFF"} ${name}${gap}${x === y || x.length > 300 ? "" : `\n  node: ${x}\n  web:  ${y}`}`);
  }
  console.log(`transcripts identical: ${same}/${clips.length}`);
}
if (args.includes("--per-op")) await perOp();
process.exit(0);

async function perOp() {
  const g = W.parseModel(bytes("encoder.onnx"));
  const opsets = g.fields.filter((f) => f.field === 8).map((f) => f.raw);
  const graph = g.graph;
  // Every intermediate as a graph output (onnxruntime takes an output with only a name).
  const names = graph.nodes.flatMap((n) => n.outputs).filter((o) => o && !graph.outputs.includes(o));
  const dump = W.modelRecord([...graph.fields.map((f) => f.raw), ...names.map((o) => W.lenField(12, [W.stringField(1, o)]))], opsets);
  const nodeOpts = { executionProviders: ["cpu"], intraOpNumThreads: 1, graphOptimizationLevel: "disabled", logSeverityLevel: 3 };
  const webOpts = { executionProviders: ["wasm"], graphOptimizationLevel: "disabled", logSeverityLevel: 3 };
  const feeds: Record<string, any> = {
    encoder_input_ids: new nodeOrt.Tensor("float32", mel, [1, 80, 3000]),
    decoder_input_ids: new nodeOrt.Tensor("int32", Int32Array.from([50257]), [1, 1]),
  };
  const ref: Record<string, any> = { ...feeds, ...(await (await nodeOrt.InferenceSession.create(dump, nodeOpts as any)).run(feeds)) };
  const ELEM: Record<string, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 };
  const table = new Map<string, { nodes: number; differ: number; max: number }>();
  for (const n of graph.nodes) {
    const ins = [...new Set(n.inputs.filter((i) => i && !graph.initializers.has(i)))];
    const inits = [...new Set(n.inputs.filter((i) => i && graph.initializers.has(i)))].map((i) => graph.initializers.get(i)!.raw);
    const outs = n.outputs.filter(Boolean);
    const model = W.modelRecord([
      n.raw, ...inits,
      ...ins.map((i) => W.valueInfoRecord(11, i, ELEM[ref[i].type]!, ref[i].dims)),
      ...outs.map((o) => W.lenField(12, [W.stringField(1, o)])),
    ], opsets);
    const a = await (await nodeOrt.InferenceSession.create(model, nodeOpts as any)).run(Object.fromEntries(ins.map((i) => [i, ref[i]])));
    const b = await (await web.InferenceSession.create(model, webOpts)).run(Object.fromEntries(ins.map((i) => [i, new web.Tensor(ref[i].type, ref[i].data, ref[i].dims)])));
    const key = (n.domain ? `${n.domain}:` : "") + n.opType;
    const row = table.get(key) ?? { nodes: 0, differ: 0, max: 0 };
    let max = 0, differ = false;
    for (const o of outs) {
      const x = a[o]!.data as ArrayLike<number | bigint>, y = b[o].data as ArrayLike<number | bigint>;
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(Number(x[i]) - Number(y[i]));
        if (d > 0) differ = true;
        if (d > max) max = d;
      }
    }
    row.nodes++;
    if (differ) row.differ++;
    row.max = Math.max(row.max, max);
    table.set(key, row);
  }
  console.log("encoder nodes run alone on the same inputs (node vs web):");
  for (const [op, r] of [...table].sort((p, q) => q[1].max - p[1].max))
    console.log(`  ${op.padEnd(40)} ${String(r.nodes).padStart(3)} nodes, ${String(r.differ).padStart(3)} differ, max |diff| ${r.max.toExponential(2)}`);
}
