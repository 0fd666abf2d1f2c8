// Whisper bench: WER and speed of our transcriber vs the raw shipped graph (BeamSearch greedy in
// naive 30 s windows, BpeDecoder stripped, token ids decoded by our tokenizer), side by side.
// Usage: bun bench/transcribe.ts [--runs N] [--skip-long] [--words]
// Timings on a shared 2-core machine are noisy: each figure is the best of N runs (default 2),
// and the two systems alternate run by run so they see similar load.
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { decodeAudio } from "../src/audio/decode";
import { quietContext } from "../src/core/work";
import { stripBpeDecoder } from "../src/whisper/derive";
import { loadDefaultWhisperModel, shippedWhisperModelPath } from "../src/whisper/node";
import { transcribe } from "../src/whisper/transcribe";
import type { WhisperModel } from "../src/whisper/model";
import { wer } from "../src/whisper/wer";

const SPEECH = "/work/shared/fixtures/speech";
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("--runs") + 1]) > 0 && args.includes("--runs") ? Number(args[args.indexOf("--runs") + 1]) : 2;
const skipLong = args.includes("--skip-long");
const words = args.includes("--words");

const refs: Record<string, string> = JSON.parse(readFileSync(`${SPEECH}/transcripts.json`, "utf8"));
const load = async (f: string) => {
  const a = await decodeAudio(new Uint8Array(readFileSync(`${SPEECH}/${f}`)));
  if (a.sampleRate !== 16000 || a.channels.length !== 1) throw new Error(`${f}: expected 16 kHz mono`);
  return a;
};

const sessionOptions = args.includes("--ort") ? JSON.parse(args[args.indexOf("--ort") + 1]!) : undefined;
const model: WhisperModel = await loadDefaultWhisperModel("models", sessionOptions);
const raw = await ort.InferenceSession.create(stripBpeDecoder(new Uint8Array(readFileSync(shippedWhisperModelPath()))), {
  executionProviders: ["cpu"], intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: "all", logSeverityLevel: 3,
});

async function rawTranscribe(x: Float32Array): Promise<string> {
  let text = "";
  const i32 = (v: number) => new ort.Tensor("int32", Int32Array.from([v]), [1]);
  const f32 = (v: number) => new ort.Tensor("float32", Float32Array.from([v]), [1]);
  for (let at = 0; at < x.length; at += 480000) {
    let chunk = x.subarray(at, at + 480000);
    if (chunk.length < 201) { const p = new Float32Array(201); p.set(chunk); chunk = p; }
    const out = await raw.run({
      audio_pcm: new ort.Tensor("float32", chunk, [1, chunk.length]),
      max_length: i32(448), min_length: i32(1), num_beams: i32(1), num_return_sequences: i32(1),
      length_penalty: f32(1), repetition_penalty: f32(1),
    });
    text += model.tokenizer.decode(Array.from(out.sequences!.data as Int32Array));
  }
  return text;
}

async function ours(x: Float32Array): Promise<string> {
  const r = await transcribe(model, { sampleRate: 16000, channels: [x] }, { wordTimestamps: words }, quietContext());
  return r.text;
}

interface Row { name: string; seconds: number; ours: { wer: number; time: number; cpu: number; text: string }; raw: { wer: number; time: number; cpu: number; text: string } }

async function measure(name: string, files: string[]): Promise<Row> {
  const audio = await Promise.all(files.map(load));
  const seconds = audio.reduce((s, a) => s + a.channels[0]!.length / 16000, 0);
  const best = { ours: Infinity, raw: Infinity };
  const cpu = { ours: Infinity, raw: Infinity };
  const texts = { ours: [] as string[], raw: [] as string[] };
  for (let r = 0; r < runs; r++) {
    for (const which of ["raw", "ours"] as const) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const out: string[] = [];
      for (const a of audio) out.push(await (which === "ours" ? ours : rawTranscribe)(a.channels[0]!));
      best[which] = Math.min(best[which], (performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      cpu[which] = Math.min(cpu[which], (c.user + c.system) / 1e6);
      texts[which] = out;
    }
  }
  const w = (t: string[]) => wer(files.map((f) => refs[f]!).join(" "), t.join(" "));
  return { name, seconds, ours: { wer: w(texts.ours), time: best.ours, cpu: cpu.ours, text: texts.ours.join(" | ") }, raw: { wer: w(texts.raw), time: best.raw, cpu: cpu.raw, text: texts.raw.join(" | ") } };
}

// warm-up (first runs allocate)
await ours((await load("harvard-01.wav")).channels[0]!);
await rawTranscribe((await load("harvard-01.wav")).channels[0]!);

const rows: Row[] = [];
const clips = Array.from({ length: 10 }, (_, i) => `harvard-${String(i + 1).padStart(2, "0")}.wav`);
rows.push(await measure("harvard-01..10", clips));
if (!skipLong) rows.push(await measure("long-harvard", ["long-harvard.wav"]));

const pct = (x: number) => (100 * x).toFixed(1).padStart(5) + "%";
console.log(`\nWhisper tiny.en int8, onnxruntime-node CPU, best of ${runs} run(s)${words ? ", ours with word timestamps" : ""}`);
console.log("set                audio s | ours: WER    time s   RTF   | raw graph: WER  time s   RTF   | time ours/raw | CPU s ours/raw");
for (const r of rows) {
  console.log(
    `${r.name.padEnd(18)} ${r.seconds.toFixed(1).padStart(7)} | ${pct(r.ours.wer)} ${r.ours.time.toFixed(2).padStart(8)} ${(r.ours.time / r.seconds).toFixed(3).padStart(6)} | ${pct(r.raw.wer)} ${r.raw.time.toFixed(2).padStart(8)} ${(r.raw.time / r.seconds).toFixed(3).padStart(6)} | ${(r.ours.time / r.raw.time).toFixed(2)}x         | ${r.ours.cpu.toFixed(1)}/${r.raw.cpu.toFixed(1)} = ${(r.ours.cpu / r.raw.cpu).toFixed(2)}x`,
  );
}
console.log(`ours, cumulative: ${JSON.stringify(model.stats)}`);
if (args.includes("--text")) for (const r of rows) console.log(`\n[${r.name}] ours: ${r.ours.text}\n[${r.name}] raw:  ${r.raw.text}`);
