// The audio API later stages consume: bytes in, PCM at the rate and channel count a model wants.
// Pure TypeScript + WASM, so the browser worker uses exactly this too.
import { decodeAudio, headerSeconds, SUPPORTED_FORMATS, tooLong } from "./decode";
import { AudioError } from "./errors";
import { durationOf, toMono, type PcmAudio } from "./pcm";
import { resample } from "./resample";
import { sniffFormat, type AudioFormat } from "./sniff";
import type { WorkContext } from "../core/work";

export { decodeAudio, resample, durationOf, toMono, AudioError, sniffFormat };
export type { PcmAudio, AudioFormat };
export { encodeWav, decodeWav } from "./wav";

export interface PrepareOptions {
  /** Resample to this rate (default: keep the file's rate). */
  sampleRate?: number;
  /** Average the channels into one. */
  mono?: boolean;
  /** Refuse audio longer than this (AudioError "too_long"), as soon as decoding passes it. */
  maxSeconds?: number;
}

/** Decode, then downmix/resample; decoding is the first 60% of the reported progress. */
export async function prepareAudio(bytes: Uint8Array, opts: PrepareOptions, ctx: WorkContext): Promise<PcmAudio> {
  const decoded = await decodeAudio(bytes, { signal: ctx.signal, progress: (f, m) => ctx.progress(0.6 * f, m && `decoding: ${m}`) }, { maxSeconds: opts.maxSeconds });
  let pcm = opts.mono && decoded.channels.length > 1 ? { sampleRate: decoded.sampleRate, channels: [toMono(decoded)] } : decoded;
  if (opts.sampleRate && opts.sampleRate !== pcm.sampleRate) {
    const from = pcm.sampleRate;
    pcm = await resample(pcm, opts.sampleRate, { signal: ctx.signal, progress: (f) => ctx.progress(0.6 + 0.4 * f, `resampling ${from} Hz to ${opts.sampleRate} Hz`) });
  }
  ctx.progress(1, `audio ready: ${durationOf(pcm).toFixed(1)} s at ${pcm.sampleRate} Hz`);
  return pcm;
}

/**
 * Cheap check that an upload is audio we can decode, done before a job is accepted:
 * sniff the container, and decode the head of compressed files to see real samples. With
 * `maxSeconds`, a WAV or M4A whose header gives a length over it is refused, and so is another
 * compressed file whose length, extrapolated from its head's bitrate, is over twice it (variable
 * bitrates make that a guess; decoding then enforces the limit exactly).
 */
export async function probeAudio(bytes: Uint8Array, maxSeconds = 0): Promise<AudioFormat> {
  if (bytes.length === 0) throw new AudioError("empty", "the file is empty (0 bytes)");
  const format = sniffFormat(bytes);
  if (!format) throw new AudioError("unsupported_format", `not a recognised audio file; supported formats: ${SUPPORTED_FORMATS}`);
  const max = maxSeconds > 0 ? maxSeconds : Infinity;
  // A WAV's header is checked here (no samples converted); an M4A needs the whole file to decode.
  const seconds = headerSeconds(bytes, format);
  if (seconds !== null) {
    if (seconds > max) throw tooLong(max, seconds);
  } else if (format !== "mp4") {
    const headBytes = Math.min(bytes.length, 256 * 1024);
    const head = await decodeAudio(bytes.subarray(0, headBytes));
    const estimate = (durationOf(head) * bytes.length) / headBytes;
    if (estimate > 2 * max) throw tooLong(max, estimate, true);
  }
  return format;
}
