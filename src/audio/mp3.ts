// MP3 encoding (LAME via @breezystack/lamejs, LGPL-3.0: see README) in blocks, yielding between
// blocks so a long encode reports progress and keeps the event loop responsive.
import { Mp3Encoder } from "@breezystack/lamejs";
import type { PcmAudio } from "./pcm";
import { interleave16 } from "./wav";
import { throwIfAborted, type WorkContext } from "../core/work";

const BLOCK = 1152 * 64;

export async function encodeMp3(a: PcmAudio, kbps = 192, ctx?: WorkContext): Promise<Uint8Array> {
  const stereo = a.channels.length > 1;
  const enc = new Mp3Encoder(stereo ? 2 : 1, a.sampleRate, kbps);
  const n = a.channels[0]?.length ?? 0;
  const parts: Uint8Array[] = [];
  for (let at = 0; at < n; at += BLOCK) {
    if (ctx) throwIfAborted(ctx.signal);
    const end = Math.min(n, at + BLOCK);
    const block = (c: number) => interleave16([a.channels[c]!.subarray(at, end)]);
    parts.push(enc.encodeBuffer(block(0), stereo ? block(1) : undefined));
    ctx?.progress(end / n);
    await new Promise((r) => setTimeout(r, 0));
  }
  parts.push(enc.flush());
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let w = 0;
  for (const p of parts) { out.set(p, w); w += p.length; }
  return out;
}
