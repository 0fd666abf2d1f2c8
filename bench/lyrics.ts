// Lyric timing and WER of the music pipeline on the synthetic song: separation → Whisper with word
// timing on the vocal stem → lyric lines, against the song's true line starts. Prints figures.
//   npx bun bench/lyrics.ts [--stem vocals|true-vocals] [--beam N]
// `true-vocals` transcribes the fixture's true vocal stem, isolating Whisper from separation.
import { join } from "node:path";
import { decodeWav } from "../src/audio/wav";
import { linesFromSegments } from "../src/formats/lyrics";
import { separate } from "../src/separation";
import { loadDemucsNode } from "../src/separation/node";
import { loadDefaultWhisperModel } from "../src/whisper/node";
import { transcribe } from "../src/whisper/transcribe";
import { wer } from "../src/whisper/wer";

const SONG = join(import.meta.dir, "../../shared/fixtures/song");
const useTrue = process.argv.includes("true-vocals");
const truth = (await Bun.file(join(SONG, "lyrics.json")).json()) as { lines: { time: number; text: string }[] };
const read = async (n: string) => decodeWav(new Uint8Array(await Bun.file(join(SONG, n)).arrayBuffer()));
const quiet = (label: string) => ({
  signal: new AbortController().signal,
  progress: (f: number) => process.stderr.write(`\r${label} ${(f * 100).toFixed(0)}%   `),
});

const t0 = performance.now();
let vocals;
if (useTrue) vocals = await read("vocals.wav");
else {
  const demucs = await loadDemucsNode();
  vocals = (await separate(demucs, await read("mixture.wav"), {}, quiet("separating"))).vocals;
  await demucs.dispose();
}
const t1 = performance.now();
const whisper = await loadDefaultWhisperModel(join(import.meta.dir, "../models"));
const beamArg = process.argv.indexOf("--beam");
const beamSize = beamArg > 0 ? Number(process.argv[beamArg + 1]) : 1;
const out = await transcribe(whisper, vocals, { wordTimestamps: true, beamSize }, quiet("transcribing"));
const t2 = performance.now();
process.stderr.write("\n");

const lines = linesFromSegments(out.segments);
// Match each true line to the detected line whose start is nearest (one-to-one in time order).
const errors: number[] = [];
for (const l of truth.lines) {
  const best = lines.reduce((b, d) => (Math.abs(d.start - l.time) < Math.abs(b.start - l.time) ? d : b), lines[0] ?? { start: Infinity });
  errors.push(Math.abs(best.start - l.time));
}
const sorted = [...errors].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
const lyricsWer = wer(truth.lines.map((l) => l.text).join(" "), out.text);

console.log(`source: ${useTrue ? "true vocal stem" : "separated vocal stem (HTDemucs)"}`);
console.log(`true lines: ${truth.lines.length}, detected lines: ${lines.length}`);
console.log(`line start |error|: median ${median.toFixed(3)} s, mean ${(errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(3)} s, max ${Math.max(...errors).toFixed(3)} s`);
console.log(`lyrics WER: ${(100 * lyricsWer).toFixed(1)}% (beam size ${beamSize})`);
console.log(`time: separation ${((t1 - t0) / 1000).toFixed(1)} s, transcription ${((t2 - t1) / 1000).toFixed(1)} s`);
for (const l of lines) console.log(`  [${l.start.toFixed(2)}] ${l.text}`);
if (process.argv.includes("--words"))
  for (const l of lines) console.log(l.words.map((w) => `${w.word}@${w.start.toFixed(2)}-${w.end.toFixed(2)}`).join(" "));
