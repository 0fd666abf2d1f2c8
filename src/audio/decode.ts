// Decode any supported upload to planar PCM, feeding the codec in chunks so progress reflects
// bytes actually decoded and cancellation is honoured between chunks.
// Codecs are MIT/BSD WASM builds from the @audio/* family; AAC (FAAD2) is GPL and optional: see README.
import { AudioError } from "./errors";
import type { PcmAudio } from "./pcm";
import { sniffFormat, type AudioFormat } from "./sniff";
import { mp4Seconds } from "./mp4";
import { decodeWav, wavInfo } from "./wav";
import { throwIfAborted, type WorkContext } from "../core/work";

interface Decoded { channelData: Float32Array[]; sampleRate: number }
interface ChunkDecoder {
  decode(chunk: Uint8Array): Decoded | Promise<Decoded>;
  flush?(): Decoded | Promise<Decoded>;
  free(): void;
}

const CHUNK = 256 * 1024;

async function openDecoder(format: Exclude<AudioFormat, "wav">): Promise<ChunkDecoder> {
  switch (format) {
    case "mp3": return (await import("@audio/decode-mp3")).decoder();
    case "flac":
    case "ogg-flac": return (await import("@audio/decode-flac")).decoder();
    case "ogg-vorbis": return (await import("@audio/decode-vorbis")).decoder();
    case "ogg-opus": return (await import("@audio/decode-opus")).decoder();
    case "mp4":
    case "aac": {
      try {
        const mod = format === "mp4" ? await import("@audio/decode-mp4") : await import("@audio/decode-aac");
        return (await mod.decoder()) as ChunkDecoder;
      } catch (e) {
        if (e instanceof AudioError) throw e;
        throw new AudioError("unsupported_codec", "M4A/AAC decoding is not installed (the optional GPL @audio/decode-aac package was omitted)");
      }
    }
  }
}

export const SUPPORTED_FORMATS = "WAV, MP3, FLAC, Ogg Vorbis, Opus, M4A/AAC";

export interface DecodeLimits {
  /** Refuse audio longer than this many seconds (AudioError "too_long"), checked as it decodes. */
  maxSeconds?: number;
}

/** The error for audio over the limit; `seconds` when the whole length is known (or estimated). */
export function tooLong(maxSeconds: number, seconds?: number, estimated = false): AudioError {
  const length = seconds === undefined ? "longer than that" : `${estimated ? "about " : ""}${fmtDuration(seconds)} long`;
  return new AudioError("too_long", `audio is limited to ${fmtDuration(maxSeconds)} here; this file is ${length}`);
}
function fmtDuration(s: number): string {
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : m > 0 ? `${m} min ${Math.floor(s - m * 60)} s` : `${s.toFixed(1)} s`;
}

/**
 * The length a file's header states: a WAV's from its data size (the header checked as strictly as
 * decodeWav does), an M4A's from its movie header. Null where only decoding tells (MP3, FLAC, Ogg,
 * ADTS, or an M4A without a readable header).
 */
export function headerSeconds(bytes: Uint8Array, format: AudioFormat): number | null {
  if (format === "wav") {
    const info = wavInfo(bytes);
    return info.frames / info.sampleRate;
  }
  return format === "mp4" ? mp4Seconds(bytes) : null;
}

export async function decodeAudio(bytes: Uint8Array, ctx?: WorkContext, limits: DecodeLimits = {}): Promise<PcmAudio> {
  if (bytes.length === 0) throw new AudioError("empty", "the file is empty (0 bytes)");
  const format = sniffFormat(bytes);
  if (!format) throw new AudioError("unsupported_format", `not a recognised audio file; supported formats: ${SUPPORTED_FORMATS}`);
  const max = limits.maxSeconds && limits.maxSeconds > 0 ? limits.maxSeconds : Infinity;
  if (max < Infinity) {
    // Before any samples exist where the header tells (the M4A decoder returns them all at once).
    const seconds = headerSeconds(bytes, format);
    if (seconds !== null && seconds > max) throw tooLong(max, seconds);
  }
  if (format === "wav") {
    const pcm = decodeWav(bytes);
    ctx?.progress(1);
    return checked(pcm, format);
  }
  const dec = await openDecoder(format);
  const parts: Decoded[] = [];
  let seconds = 0;
  try {
    for (let at = 0; at < bytes.length; at += CHUNK) {
      if (ctx) throwIfAborted(ctx.signal);
      const part = await dec.decode(bytes.subarray(at, at + CHUNK));
      parts.push(part);
      // Stop as soon as the limit is passed: memory never holds more than the limit's worth of audio.
      if (part?.sampleRate > 0) seconds += (part.channelData?.[0]?.length ?? 0) / part.sampleRate;
      if (seconds > max) throw tooLong(max);
      ctx?.progress(Math.min(1, (at + CHUNK) / bytes.length), `decoded ${Math.min(bytes.length, at + CHUNK) >> 10} of ${bytes.length >> 10} KiB`);
      // Yield so a long decode never starves the server's event loop (progress, other requests).
      await new Promise((r) => setTimeout(r, 0));
    }
    if (dec.flush) parts.push(await dec.flush());
  } catch (e) {
    if (e instanceof AudioError || (e as Error)?.name === "CancelledError") throw e;
    throw new AudioError("corrupt", `the ${label(format)} data could not be decoded: ${(e as Error)?.message ?? e}`);
  } finally {
    dec.free();
  }
  return checked(join(parts), format);
}

function label(f: AudioFormat): string {
  return { wav: "WAV", mp3: "MP3", flac: "FLAC", "ogg-flac": "Ogg FLAC", "ogg-vorbis": "Ogg Vorbis", "ogg-opus": "Opus", mp4: "M4A", aac: "AAC" }[f];
}

function join(parts: Decoded[]): PcmAudio {
  const withAudio = parts.filter((p) => p && p.channelData?.length && p.channelData[0]!.length);
  const sampleRate = withAudio[0]?.sampleRate ?? parts.find((p) => p?.sampleRate)?.sampleRate ?? 0;
  const nch = Math.max(0, ...withAudio.map((p) => p.channelData.length));
  const total = withAudio.reduce((s, p) => s + p.channelData[0]!.length, 0);
  const channels = Array.from({ length: nch }, () => new Float32Array(total));
  let at = 0;
  for (const p of withAudio) {
    for (let c = 0; c < nch; c++) channels[c]!.set(p.channelData[Math.min(c, p.channelData.length - 1)]!, at);
    at += p.channelData[0]!.length;
  }
  return { sampleRate, channels };
}

function checked(pcm: PcmAudio, format: AudioFormat): PcmAudio {
  if (!pcm.channels.length || !pcm.channels[0]!.length) {
    throw new AudioError("corrupt", `the ${label(format)} file contains no decodable audio`);
  }
  if (!(pcm.sampleRate > 0)) throw new AudioError("corrupt", `the ${label(format)} file has no valid sample rate`);
  return pcm;
}
