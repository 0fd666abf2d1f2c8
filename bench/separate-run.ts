// One side of bench/separate.ts: separates a WAV file with our core and streams the four stems to
// <outdir>/<stem>.wav. Run as its own process so its wall time and peak RSS can be measured.
//   bun bench/separate-run.ts <input.wav> <outdir> [--isolated] [--shifts N] [--overlap X] [--models-dir D | --in-memory]
// The split graph is read from --models-dir (default ./models, as the server does; written there
// first if missing) unless --in-memory splits it at load instead.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { decodeWav } from "../src/audio/wav";
import { separate } from "../src/separation";
import { loadDemucsIsolated, loadDemucsNode } from "../src/separation/node";
import { wavFileSink } from "../src/separation/wav-sink";

const { values, positionals } = parseArgs({
  options: {
    isolated: { type: "boolean" },
    shifts: { type: "string" },
    overlap: { type: "string" },
    "models-dir": { type: "string" },
    "in-memory": { type: "boolean" },
  },
  allowPositionals: true,
});
const [input, outdir] = positionals;
if (!input || !outdir) throw new Error("usage: separate-run.ts <input.wav> <outdir> [--isolated]");
const t0 = performance.now();
const opts = { modelsDir: values["in-memory"] ? undefined : (values["models-dir"] ?? "models") };
const model = values.isolated ? await loadDemucsIsolated(opts) : await loadDemucsNode(opts);
const tLoad = performance.now();
const mix = decodeWav(readFileSync(input));
const sink = wavFileSink(outdir);
try {
  await separate(
    model,
    mix,
    { shifts: Number(values.shifts ?? 0), overlap: Number(values.overlap ?? 0.25) },
    { signal: new AbortController().signal, progress: (_f, m) => process.stderr.write(`\r${m}   `) },
    sink,
  );
} finally {
  sink.close();
  await model.dispose();
}
process.stderr.write("\n");
const hwmMB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024;
console.log(JSON.stringify({ loadS: (tLoad - t0) / 1000, separateS: (performance.now() - tLoad) / 1000, thisProcessPeakMB: Math.round(hwmMB), allocator: "allocator" in model ? model.allocator : "this process's" }));
