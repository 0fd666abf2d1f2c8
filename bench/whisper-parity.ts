// Whisper parity probe: the same derived model in onnxruntime-node vs onnxruntime-web (WASM).
// (1) encoder logits max |diff| for a deterministic mel; (2) transcripts of the harvard clips.
// Usage: bun bench/whisper-parity.ts [--dir models/whisper-tiny.en] [--no-transcribe]
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as nodeOrt from "onnxruntime-node";
import { decodeAudio } from "../src/audio/decode";
import { quietContext } from "../src/core/work";
import { loadWhisperModel, type OrtModule } from "../src/whisper/model";
import { ensureWhisperModel } from "../src/whisper/node";
import { transcribe } from "../src/whisper/transcribe";

const args = process.argv.slice(2);
const dir = args.includes("--dir") ? args[args.indexOf("--dir") + 1]! : ensureWhisperModel("models");
const web = (await import("onnxruntime-web")) as any;
web.env.wasm.numThreads = 1;
const bytes = (f: string) => new Uint8Array(readFileSync(join(dir, f)));

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
  const nm = await loadWhisperModel({ ort: nodeOrt as unknown as OrtModule, ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(dir, f)])), ...common } as any);
  const wm = await loadWhisperModel({
    ort: web as OrtModule, ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, bytes(f)])), ...common,
    sessionOptions: { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 },
  } as any);
  const SPEECH = "/work/shared/fixtures/speech";
  const clips = readdirSync(SPEECH).filter((f) => /^harvard-.*\.wav$/.test(f)).sort();
  let same = 0;
  for (const f of clips) {
    const audio = await decodeAudio(new Uint8Array(readFileSync(join(SPEECH, f))));
    const x = (await transcribe(nm, audio, {}, quietContext())).text.trim();
    const y = (await transcribe(wm, audio, {}, quietContext())).text.trim();
    if (x === y) same++;
    console.log(`${x === y ? "same" : "DIFF"} ${f}${x === y ? "" : `\n  node: ${x}\n  web:  ${y}`}`);
  }
  console.log(`transcripts identical: ${same}/${clips.length}`);
}
process.exit(0);
