// Whisper's log-mel spectrogram (openai/whisper audio.py), computed once for the whole audio:
// STFT n_fft=400 hop=160 (centered, reflect-padded), mel power, log10, clamp to max-8,
// (x+4)/4. The audio is extended by 30 s of zeros as openai does, so the last frames and the
// global maximum match. Framing and normalisation here; the DFT and filterbank run in mel.onnx.
import { throwIfAborted } from "../core/work";
import type { WhisperModel } from "./model";

export const N_FFT = 400;
export const HOP = 160;
const CHUNK = 3000; // frames per onnxruntime call

export interface LogMel {
  /** [nMels][frames] row-major, normalised as openai/whisper. */
  data: Float32Array;
  nMels: number;
  frames: number;
  /** The normalised value of digital silence in this spectrogram ((max - 8 + 4) / 4). */
  silence: number;
}

/** Log-mel of `samples` (16 kHz mono): `floor(n / 160)` frames (openai's content frames). */
export async function logMelSpectrogram(model: WhisperModel, samples: Float32Array, signal?: AbortSignal): Promise<LogMel> {
  const n = samples.length;
  const frames = Math.floor(n / HOP);
  const nMels = model.config.nMels ?? 80;
  const data = new Float32Array(nMels * frames);
  const at = (j: number) => (j >= 0 && j < n ? samples[j]! : 0); // zero-extended (30 s of zeros)
  let max = -Infinity;
  const buf = new Float32Array(Math.min(CHUNK, Math.max(frames, 1)) * N_FFT);
  for (let f0 = 0; f0 < frames; f0 += CHUNK) {
    if (signal) throwIfAborted(signal);
    const F = Math.min(CHUNK, frames - f0);
    const fr = buf.subarray(0, F * N_FFT);
    for (let f = 0; f < F; f++) {
      const start = (f0 + f) * HOP - N_FFT / 2;
      const o = f * N_FFT;
      if (start >= 0 && start + N_FFT <= n) {
        fr.set(samples.subarray(start, start + N_FFT), o);
      } else {
        for (let i = 0; i < N_FFT; i++) {
          const j = start + i;
          fr[o + i] = j < 0 ? at(-j) : at(j); // reflect at the start (no edge repeat)
        }
      }
    }
    const t0 = performance.now();
    const out = await model.exclusive(() => model.mel.run({ frames: new model.ort.Tensor("float32", fr, [F, N_FFT]) }));
    model.stats.melMs += performance.now() - t0;
    const m = out.log10_mel!.data as Float32Array; // [F, nMels]
    for (let f = 0; f < F; f++) {
      for (let k = 0; k < nMels; k++) {
        const v = m[f * nMels + k]!;
        if (v > max) max = v;
        data[k * frames + f0 + f] = v;
      }
    }
  }
  // The 30 s zero padding contributes log10(1e-10) = -10 frames to the maximum.
  if (max < -10) max = -10;
  const floor = max - 8;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]! < floor ? floor : data[i]!;
    data[i] = (v + 4) / 4;
  }
  return { data, nMels, frames, silence: (floor + 4) / 4 };
}

/** Frames [seek, seek+size) as an encoder input [1, nMels, 3000], padded with `padValue`. */
export function melWindow(mel: LogMel, seek: number, size: number, padValue = 0, N = 3000): Float32Array {
  const out = new Float32Array(mel.nMels * N);
  if (padValue !== 0) out.fill(padValue);
  for (let k = 0; k < mel.nMels; k++) {
    out.set(mel.data.subarray(k * mel.frames + seek, k * mel.frames + seek + Math.min(size, N)), k * N);
  }
  return out;
}
