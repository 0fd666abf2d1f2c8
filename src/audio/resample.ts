// Band-limited resampling with libsamplerate (WASM), one channel at a time in 1 s blocks so a long
// file reports progress and never needs a second interleaved copy.
import { create, ConverterType } from "@alexanderolsen/libsamplerate-js";
import type { PcmAudio } from "./pcm";
import { throwIfAborted, type WorkContext } from "../core/work";

export async function resample(a: PcmAudio, rate: number, ctx?: WorkContext): Promise<PcmAudio> {
  if (a.sampleRate === rate) return a;
  const ratio = rate / a.sampleRate;
  const n = a.channels[0]?.length ?? 0;
  const outLen = Math.round(n * ratio);
  const block = a.sampleRate;
  const channels: Float32Array[] = [];
  for (let c = 0; c < a.channels.length; c++) {
    const src = await create(1, a.sampleRate, rate, { converterType: ConverterType.SRC_SINC_MEDIUM_QUALITY });
    try {
      const out = new Float32Array(outLen);
      let w = 0;
      const input = a.channels[c]!;
      for (let at = 0; at < n; at += block) {
        if (ctx) throwIfAborted(ctx.signal);
        const y = src.full(input.subarray(at, at + block));
        out.set(y.subarray(0, Math.max(0, outLen - w)), w);
        w += y.length;
        ctx?.progress((c * n + Math.min(n, at + block)) / (n * a.channels.length));
      }
      channels.push(out);
    } finally {
      src.destroy();
    }
  }
  return { sampleRate: rate, channels };
}
