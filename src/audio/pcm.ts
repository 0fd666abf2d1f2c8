// Planar PCM audio: the one shape every stage (decode, resample, Whisper, Demucs) passes around.
// Plain typed arrays only, so the same code runs under Bun and in a browser worker.
export interface PcmAudio {
  sampleRate: number;
  /** One Float32Array per channel, all the same length, samples in [-1, 1]. */
  channels: Float32Array[];
}

export function durationOf(a: PcmAudio): number {
  return a.channels.length ? a.channels[0]!.length / a.sampleRate : 0;
}

/** Average of all channels (a new array; mono input is copied). */
export function toMono(a: PcmAudio): Float32Array {
  const n = a.channels[0]?.length ?? 0;
  const out = new Float32Array(n);
  const k = a.channels.length;
  for (const ch of a.channels) for (let i = 0; i < n; i++) out[i]! += ch[i]! / k;
  return out;
}
