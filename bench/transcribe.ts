// Whisper bench: WER and speed of our transcriber vs the raw shipped graph (BeamSearch greedy in
// naive 30 s windows, BpeDecoder stripped, token ids decoded by our tokenizer), side by side.
// Usage: bun bench/transcribe.ts [--runs N] [--skip-long] [--words] [--text] [--activations int8|float]
// (--activations float: ours with float activations, src/whisper/float-matmul.ts; the raw graph stays int8)
// Each system runs in its own child process, as the server would run it alone: two onnxruntime
// thread pools in one process on 2 cores slow each other down (measured: ours 1.65x slower on
// long-harvard beside an idle raw session). The model is loaded and warmed up before the clock
// starts. Timings on a shared 2-core machine are noisy: each figure is the best of N runs
// (default 2), and the two systems alternate run by run (which goes first alternates too) so
// they see similar load; the ratio of each back-to-back pair is printed with its median.
import { spawnSync } from "node:child_process";
import { SERVER_ENV } from "../src/config";
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { decodeAudio } from "../src/audio/decode";
import { quietContext } from "../src/core/work";
import { stripBpeDecoder } from "../src/whisper/derive";
import { loadDefaultWhisperModel, shippedWhisperModelPath } from "../src/whisper/node";
import { transcribe } from "../src/whisper/transcribe";
import { wer } from "../src/whisper/wer";

const SPEECH = "/work/shared/fixtures/speech";
const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(flag("--runs")) > 0 ? Number(flag("--runs")) : 2;
const words = args.includes("--words");
const activations = flag("--activations") === "float" ? "float" : "int8";
const CLIPS = Array.from({ length: 10 }, (_, i) => `harvard-${String(i + 1).padStart(2, "0")}.wav`);
const SETS: Record<string, string[]> = { "harvard-01..10": CLIPS, "long-harvard": ["long-harvard.wav"] };

interface ChildResult { time: number; cpu: number; texts: string[]; stats?: unknown }

async function load(f: string) {
  const a = await decodeAudio(new Uint8Array(readFileSync(`${SPEECH}/${f}`)));
  if (a.sampleRate !== 16000 || a.channels.length !== 1) throw new Error(`${f}: expected 16 kHz mono`);
  return a.channels[0]!;
}

/** Child: load one system, warm it up, transcribe one set once, print a JSON line. */
async function child(which: "ours" | "raw", set: string): Promise<void> {
  const audio = await Promise.all(SETS[set]!.map(load));
  const model = await loadDefaultWhisperModel("models", which === "ours" ? activations : "int8");
  let run: (x: Float32Array) => Promise<string>;
  if (which === "ours") {
    run = async (x) => (await transcribe(model, { sampleRate: 16000, channels: [x] }, { wordTimestamps: words }, quietContext())).text;
  } else {
    const raw = await ort.InferenceSession.create(stripBpeDecoder(new Uint8Array(readFileSync(shippedWhisperModelPath()))), {
      executionProviders: ["cpu"], intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: "all", logSeverityLevel: 3,
    });
    const i32 = (v: number) => new ort.Tensor("int32", Int32Array.from([v]), [1]);
    const f32 = (v: number) => new ort.Tensor("float32", Float32Array.from([v]), [1]);
    run = async (x) => {
      let text = "";
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
    };
  }
  await run(await load("harvard-01.wav")); // warm-up: first runs allocate
  const statsBefore = { ...model.stats };
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const texts: string[] = [];
  for (const x of audio) texts.push(await run(x));
  const c = process.cpuUsage(c0);
  const time = (performance.now() - t0) / 1000;
  const stats = which === "ours" ? Object.fromEntries(Object.entries(model.stats).map(([k, v]) => [k, Math.round((v - (statsBefore as Record<string, number>)[k]!) * 10) / 10])) : undefined;
  console.log(JSON.stringify({ time, cpu: (c.user + c.system) / 1e6, texts, stats } satisfies ChildResult));
}

function spawnChild(which: string, set: string): ChildResult {
  const r = spawnSync(process.execPath, [import.meta.path, "--child", which, "--set", set, ...(words ? ["--words"] : []), "--activations", activations], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 << 20,
    // both systems with the allocator setting `npm start` gives the server
    env: { ...SERVER_ENV, ...process.env },
  });
  if (r.status !== 0) throw new Error(`${which} child failed (${r.status})`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

if (flag("--child")) {
  await child(flag("--child") as "ours" | "raw", flag("--set")!);
  process.exit(0);
}

const refs: Record<string, string> = JSON.parse(readFileSync(`${SPEECH}/transcripts.json`, "utf8"));
interface Side { wer: number; time: number; cpu: number; text: string; stats?: unknown }
const rows: { name: string; seconds: number; ours: Side; raw: Side; ratios: number[] }[] = [];
for (const [name, files] of Object.entries(SETS)) {
  if (args.includes("--skip-long") && name === "long-harvard") continue;
  const seconds = (await Promise.all(files.map(load))).reduce((s, a) => s + a.length / 16000, 0);
  const side = {} as Record<"ours" | "raw", Side>;
  // each run's ours/raw ratio: the two ran back to back, so slow drifts of the machine cancel
  const ratios: number[] = [];
  for (let r = 0; r < runs; r++) {
    const pair: Partial<Record<"ours" | "raw", number>> = {};
    for (const which of (r % 2 ? ["ours", "raw"] : ["raw", "ours"]) as ("ours" | "raw")[]) {
      const res = spawnChild(which, name);
      const text = res.texts.join(" | ");
      const w = wer(files.map((f) => refs[f]!).join(" "), res.texts.join(" "));
      const prev = side[which];
      if (!prev || res.time < prev.time) side[which] = { wer: w, time: res.time, cpu: Math.min(res.cpu, prev?.cpu ?? Infinity), text, stats: res.stats };
      else prev.cpu = Math.min(prev.cpu, res.cpu);
      process.stderr.write(`  ${name} run ${r + 1}/${runs} ${which}: ${res.time.toFixed(2)} s\n`);
      pair[which] = res.time;
    }
    ratios.push(pair.ours! / pair.raw!);
  }
  rows.push({ name, seconds, ...side, ratios });
}

const pct = (x: number) => (100 * x).toFixed(1).padStart(5) + "%";
console.log(`\nWhisper tiny.en int8, onnxruntime CPU (ours: ${process.env.STEMSCRIBE_ORT === "node" ? "onnxruntime-node" : "C API via bun:ffi"}; raw graph: onnxruntime-node), each system alone in its own process, best of ${runs} run(s)${words ? ", ours with word timestamps" : ""}, ours with ${activations} activations`);
console.log("set                audio s | ours: WER    time s   RTF   | raw graph: WER  time s   RTF   | time ours/raw | CPU s ours/raw");
for (const r of rows) {
  console.log(
    `${r.name.padEnd(18)} ${r.seconds.toFixed(1).padStart(7)} | ${pct(r.ours.wer)} ${r.ours.time.toFixed(2).padStart(8)} ${(r.ours.time / r.seconds).toFixed(3).padStart(6)} | ${pct(r.raw.wer)} ${r.raw.time.toFixed(2).padStart(8)} ${(r.raw.time / r.seconds).toFixed(3).padStart(6)} | ${(r.ours.time / r.raw.time).toFixed(2)}x         | ${r.ours.cpu.toFixed(1)}/${r.raw.cpu.toFixed(1)} = ${(r.ours.cpu / r.raw.cpu).toFixed(2)}x`,
  );
}
for (const r of rows) {
  const q = r.ratios.slice().sort((a, b) => a - b);
  const median = q.length % 2 ? q[q.length >> 1]! : (q[q.length / 2 - 1]! + q[q.length / 2]!) / 2;
  console.log(`${r.name}: ours/raw run by run ${r.ratios.map((x) => x.toFixed(2)).join(" ")} (median ${median.toFixed(2)}x)`);
}
for (const r of rows) console.log(`ours on ${r.name} (best run): ${JSON.stringify(r.ours.stats)}`);
if (args.includes("--text")) for (const r of rows) console.log(`\n[${r.name}] ours: ${r.ours.text}\n[${r.name}] raw:  ${r.raw.text}`);
