// WAV read/write. Reading is strict: header fields are checked against the bytes actually present,
// so a header that lies about its size or rate is reported, not trusted.
import { AudioError } from "./errors";
import type { PcmAudio } from "./pcm";

interface WavFormat { format: number; channels: number; rate: number; bits: number; align: number }

/** The fmt fields and the sample bytes of a WAV, every header field checked; no samples converted. */
function wavLayout(bytes: Uint8Array): { fmt: WavFormat; data: Uint8Array } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new AudioError("corrupt", "not a RIFF/WAVE file");
  let fmt: WavFormat | null = null;
  let pos = 12;
  while (pos + 8 <= bytes.length) {
    const id = tag(pos);
    const size = v.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === "fmt ") {
      if (size < 16 || body + 16 > bytes.length) throw new AudioError("corrupt", "WAV fmt chunk is truncated");
      let format = v.getUint16(body, true);
      if (format === 0xfffe && size >= 40) format = v.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE sub-format
      fmt = {
        format,
        channels: v.getUint16(body + 2, true),
        rate: v.getUint32(body + 4, true),
        align: v.getUint16(body + 12, true),
        bits: v.getUint16(body + 14, true),
      };
    } else if (id === "data") {
      if (!fmt) throw new AudioError("corrupt", "WAV data chunk comes before its fmt chunk");
      const available = bytes.length - body;
      if (size > available + 1) {
        throw new AudioError("corrupt", `WAV header claims ${size} bytes of audio but the file holds only ${available}`);
      }
      checkFormat(fmt);
      return { fmt, data: bytes.subarray(body, body + Math.min(size, available)) };
    }
    pos = body + size + (size & 1);
  }
  throw new AudioError("corrupt", fmt ? "WAV file has no data chunk" : "WAV file has no fmt chunk");
}

function checkFormat(f: WavFormat) {
  if (f.rate < 1 || f.rate > 768_000) throw new AudioError("corrupt", `WAV header gives an invalid sample rate of ${f.rate} Hz`);
  if (f.channels < 1 || f.channels > 64) throw new AudioError("corrupt", `WAV header gives ${f.channels} channels`);
  const width = f.bits / 8;
  const isFloat = f.format === 3;
  if (!(f.format === 1 || isFloat) || ![1, 2, 3, 4, 8].includes(width) || (isFloat && width < 4)) {
    throw new AudioError("unsupported_codec", `WAV encoding ${f.format} with ${f.bits}-bit samples is not supported (PCM or float only)`);
  }
}

/** Rate, channels and length of a WAV from its header alone (checked as strictly as decodeWav). */
export function wavInfo(bytes: Uint8Array): { sampleRate: number; channels: number; frames: number } {
  const { fmt, data } = wavLayout(bytes);
  return { sampleRate: fmt.rate, channels: fmt.channels, frames: frameCount(data, fmt) };
}

const frameCount = (data: Uint8Array, f: WavFormat) => Math.floor(data.length / ((f.bits / 8) * f.channels));

export function decodeWav(bytes: Uint8Array): PcmAudio {
  const { fmt, data } = wavLayout(bytes);
  return pcmFrom(data, fmt);
}

function pcmFrom(data: Uint8Array, f: WavFormat): PcmAudio {
  const width = f.bits / 8;
  const isFloat = f.format === 3;
  const frame = width * f.channels;
  const n = frameCount(data, f);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const channels = Array.from({ length: f.channels }, () => new Float32Array(n));
  for (let c = 0; c < f.channels; c++) {
    const out = channels[c]!;
    for (let i = 0, at = c * width; i < n; i++, at += frame) {
      out[i] = isFloat
        ? width === 4 ? v.getFloat32(at, true) : v.getFloat64(at, true)
        : width === 2 ? v.getInt16(at, true) / 32768
        : width === 1 ? (data[at]! - 128) / 128
        : width === 3 ? ((data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16)) << 8 >> 8) / 8388608
        : v.getInt32(at, true) / 2147483648;
    }
  }
  return { sampleRate: f.rate, channels };
}

/** Float samples in [-1, 1] to interleaved 16-bit PCM (one channel gives a plain copy). */
export function interleave16(channels: Float32Array[]): Int16Array {
  const k = channels.length;
  const n = channels[0]?.length ?? 0;
  const out = new Int16Array(n * k);
  for (let c = 0; c < k; c++) {
    const x = channels[c]!;
    for (let i = 0; i < n; i++) {
      const s = Math.max(-1, Math.min(1, x[i]!));
      out[i * k + c] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
    }
  }
  return out;
}

/** The 44-byte header of a 16-bit PCM WAV holding `frames` frames (streaming writers put it first). */
export function wavHeader(sampleRate: number, channels: number, frames: number): Uint8Array {
  const dataBytes = frames * channels * 2;
  const h = new Uint8Array(44);
  const v = new DataView(h.buffer);
  const put = (at: number, s: string) => { for (let i = 0; i < 4; i++) h[at + i] = s.charCodeAt(i); };
  put(0, "RIFF"); v.setUint32(4, 36 + dataBytes, true); put(8, "WAVE");
  put(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true); v.setUint32(28, sampleRate * channels * 2, true);
  v.setUint16(32, channels * 2, true); v.setUint16(34, 16, true);
  put(36, "data"); v.setUint32(40, dataBytes, true);
  return h;
}

/** 16-bit PCM WAV (what players and the karaoke downloads expect). */
export function encodeWav(a: PcmAudio): Uint8Array {
  const pcm = interleave16(a.channels);
  const out = new Uint8Array(44 + pcm.byteLength);
  out.set(wavHeader(a.sampleRate, a.channels.length, a.channels[0]?.length ?? 0));
  out.set(new Uint8Array(pcm.buffer), 44);
  return out;
}
