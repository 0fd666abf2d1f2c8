// How the overlap-add's transition power (demucs' `transition_power`) affects SDR, on remixes of the
// fixture song's true stems that bench/separate.ts does not use, so that the default is not chosen
// on the bench itself. Prints per-stem SDR for each power and remix.
//   npx bun bench/transition-power.ts [--powers 1,0.5,0.25]
// R1: the stems circularly shifted against each other; R2: drums/bass/other with 32 s of
// long-harvard's speech (resampled) as the vocal, at the vocal stem's energy; R3: other shifts and
// per-stem gains. Each remix is its stems' exact sum.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { decodeWav } from "../src/audio/wav";
import { prepareAudio } from "../src/audio";
import { quietContext } from "../src/core/work";
import { separate, STEMS } from "../src/separation";
import { loadDemucsIsolated } from "../src/separation/node";

const { values } = parseArgs({ options: { powers: { type: "string" } } });
const powers = (values.powers ?? "1,0.5,0.25").split(",").map(Number);
const SONG = "/work/shared/fixtures/song/";
const SR = 44100;
const stems = STEMS.map((s) => decodeWav(readFileSync(`${SONG}${s}.wav`)).channels);
const N = stems[0]![0]!.length;

const shifted = (c: Float32Array, seconds: number, gain = 1) => {
  const k = Math.round(seconds * SR);
  return Float32Array.from({ length: c.length }, (_, i) => c[(((i - k) % c.length) + c.length) % c.length]! * gain);
};
const speech = (await prepareAudio(new Uint8Array(readFileSync("/work/shared/fixtures/speech/long-harvard.wav")), { sampleRate: SR }, quietContext())).channels[0]!.subarray(20 * SR, 20 * SR + N);
const energy = (x: Float32Array) => x.reduce((a, v) => a + v * v, 0);
const g = Math.sqrt(energy(stems[3]![0]!) / energy(speech));

const remixes: Record<string, Float32Array[][]> = {
  "R1 shifted": stems.map((st, k) => st.map((c) => shifted(c, [-1.3, 0.7, 3.1, 2.5][k]!))),
  "R2 speech vocal": [...stems.slice(0, 3), [speech.map((v) => v * g), speech.map((v) => v * g * 0.9)]],
  "R3 shifts+gains": stems.map((st, k) => st.map((c) => shifted(c, [4.2, -2.2, 1.1, -5.5][k]!, [0.7, 1.6, 1.2, 0.5][k]!))),
};

function sdr(ref: Float32Array[], est: Float32Array[]): number {
  let num = 0, den = 0;
  for (let c = 0; c < ref.length; c++) for (let i = 0; i < ref[c]!.length; i++) {
    num += ref[c]![i]! ** 2;
    den += (ref[c]![i]! - est[c]![i]!) ** 2;
  }
  return 10 * Math.log10(num / den);
}

const model = await loadDemucsIsolated({ modelsDir: "models" });
try {
  console.log(`SDR in dB (${STEMS.join(" / ")}) by transition power`);
  for (const [name, truth] of Object.entries(remixes)) {
    const mix = [0, 1].map((ch) => Float32Array.from({ length: N }, (_, i) => truth.reduce((a, st) => a + st[ch]![i]!, 0)));
    for (const p of powers) {
      const out = await separate(model, { sampleRate: SR, channels: mix }, { transitionPower: p }, quietContext());
      console.log(`${name.padEnd(16)} power ${String(p).padEnd(5)} ${STEMS.map((s, k) => sdr(truth[k]!, out[s].channels).toFixed(4)).join(" / ")}`);
    }
  }
} finally {
  await model.dispose();
}
