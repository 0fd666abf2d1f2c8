// MP3 encoding (LAME via @breezystack/lamejs, LGPL-3.0: see README) in blocks, yielding between
// blocks so a long encode reports progress and keeps the event loop responsive.
import { Mp3Encoder } from "@breezystack/lamejs";
import type { PcmAudio } from "./pcm";
import { throwIfAborted, type WorkContext } from "../core/work";

const BLOCK = 1152 * 64;

function toInt16(x: Float32Array, from: number, to: number): Int16Array {
  const out = new Int16Array(to - from);
  for (let i = from; i < to; i++) {
    const s = Math.max(-1, Math.min(1, x[i]!));
    out[i - from] = s < 0 ? s * 32768 : s * 32767;
  }
  return out;
}

export async function encodeMp3(a: PcmAudio, kbps = 192, ctx?: WorkContext): Promise<Uint8Array> {
  const stereo = a.channels.length > 1;
  const enc = new Mp3Encoder(stereo ? 2 : 1, a.sampleRate, kbps);
  const n = a.channels[0]?.length ?? 0;
  const parts: Uint8Array[] = [];
  for (let at = 0; at < n; at += BLOCK) {
    if (ctx) throwIfAborted(ctx.signal);
    const end = Math.min(n, at + BLOCK);
    parts.push(enc.encodeBuffer(toInt16(a.channels[0]!, at, end), stereo ? toInt16(a.channels[1]!, at, end) : undefined));
    ctx?.progress(end / n);
    await new Promise((r) => setTimeout(r, 0));
  }
  parts.push(enc.flush());
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let w = 0;
  for (const p of parts) { out.set(p, w); w += p.length; }
  return out;
}
