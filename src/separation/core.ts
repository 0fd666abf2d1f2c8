// The Demucs separation loop (demucs/apply.py `apply_model` with `split=True`, plus the mix
// normalisation of demucs/separate.py), in plain TypeScript: no Bun, Node or DOM APIs.
//
// - The mix is normalised by the mean/std of its mono downmix (applied on the fly, no copy) and the
//   stems are de-normalised with `* std + mean / sources`: demucs adds the whole mean to every source,
//   so its stems sum to the mix plus 3x its DC offset; sharing it keeps the stems summing to the mix.
//   On the song (mean 8.3e-4, all of it in the drums) that is +0.004 / +0.022 / +0.018 / +0.059 dB SDR
//   for drums / bass / other / vocals.
// - Segments of `segment` seconds start every (1 - overlap) * segment; each is fed to the model with
//   real audio as context up to the model's 7.8 s (demucs' TensorChunk.padded), and the centre of the
//   output is overlap-added with demucs' triangular transition weights raised to `transitionPower`
//   (0.25 here, 1 in demucs: see SeparateOptions), normalised by the weight sum.
// - `shifts` runs that many passes, each starting a random 0..0.5 s earlier on zero-padded input
//   (demucs' random shift trick), and averages them. Passes are interleaved in time order so output
//   still streams.
// - Stems are finalised as soon as no later segment can touch them and handed to the StemSink (or
//   copied into preallocated arrays), so memory holds one segment of accumulators per pass, not four
//   full stems.
import type { PcmAudio } from "../audio/pcm";
import { resample } from "../audio/resample";
import { throwIfAborted, type WorkContext } from "../core/work";
import { stereoISpecAdd, stereoSpec } from "./dsp";
import { STEMS, type DemucsModel, type PartProgress, type SeparateOptions, type StemName, type StemSink, type Stems } from "./types";

/** See SeparateOptions.transitionPower. */
export const DEFAULT_TRANSITION_POWER = 0.25;

/** demucs' transition weights: 1..n/2 then (n - n/2)..1, divided by the max, to the power `power`. */
export function transitionWeights(n: number, power = 1): Float32Array {
  const w = new Float32Array(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < half; i++) w[i] = i + 1;
  for (let i = half; i < n; i++) w[i] = n - i;
  let max = 0;
  for (let i = 0; i < n; i++) if (w[i]! > max) max = w[i]!;
  for (let i = 0; i < n; i++) w[i] = (w[i]! / max) ** power; // x ** 1 is x exactly
  return w;
}

/** Mean and (unbiased, as torch) standard deviation of the channel-average of a stereo signal. */
export function mixStats(x0: Float32Array, x1: Float32Array): { mean: number; std: number } {
  const n = x0.length;
  if (n === 0) return { mean: 0, std: 1 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (x0[i]! + x1[i]!) * 0.5;
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = (x0[i]! + x1[i]!) * 0.5 - mean;
    ss += d * d;
  }
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return { mean, std };
}

interface Pass {
  /** Start of the next segment, in input samples (negative for a shifted pass's first segments). */
  next: number;
  acc: Float32Array[]; // [source * 2 + channel], indexed by (position - emitted)
  wsum: Float32Array;
}

/**
 * One segment through the model, as time-domain sources planar [sources][2][segmentLength]: the
 * waveform branch plus the iSTFT of the spectrogram branch. `wave` is the (normalised) segment,
 * planar [2][segmentLength]. Uses the model's own `inferSources` when it has one.
 */
export async function segmentSources(
  model: DemucsModel,
  wave: Float32Array,
  signal?: AbortSignal,
  specBuf?: Float32Array,
  into?: Float32Array,
  onPart?: PartProgress,
): Promise<Float32Array> {
  if (model.inferSources) return model.inferSources(wave, signal, into, onPart);
  const SEG = model.segmentLength;
  const spec = stereoSpec(wave.subarray(0, SEG), wave.subarray(SEG, 2 * SEG), specBuf);
  const out = await model.infer(wave, spec, signal, onPart);
  const nSrc = model.sources.length;
  const res = into ?? new Float32Array(nSrc * 2 * SEG);
  for (let s = 0; s < nSrc; s++) {
    const o0 = res.subarray(2 * s * SEG, (2 * s + 1) * SEG);
    const o1 = res.subarray((2 * s + 1) * SEG, (2 * s + 2) * SEG);
    o0.set(out.wave.subarray(2 * s * SEG, (2 * s + 1) * SEG));
    o1.set(out.wave.subarray((2 * s + 1) * SEG, (2 * s + 2) * SEG));
    stereoISpecAdd(out.spec, s * 4 * 2048 * model.frames, model.frames, o0, o1);
  }
  return res;
}

/**
 * Separates `audio` into drums, bass, other and vocals.
 *
 * Input: any sample rate (resampled to the model's 44.1 kHz first), mono (duplicated to stereo for the
 * model) or stereo (more channels: the first two are used). Output: stems at the model's 44.1 kHz
 * (not converted back to the input rate; resample afterwards if needed), with the input's channel
 * count (mono input gives mono stems, the model's two channels averaged), same length as the
 * (resampled) input.
 *
 * With a `sink`, stems are streamed to it in order and the returned stems have empty channel arrays;
 * without one, they are written into preallocated arrays and returned.
 *
 * Progress: `ctx.progress(done / total, "segment done/total")` after every model call, and in between
 * `(done + f) / total` as the model reports the fraction f of a run done (after each graph part of a
 * split model, weighted by the parts' measured times). Cancellation:
 * `ctx.signal` is checked before every segment and passed to `model.infer` (an isolated model kills
 * the running inference); rejects with CancelledError.
 */
export async function separate(
  model: DemucsModel,
  audio: PcmAudio,
  opts: SeparateOptions,
  ctx: WorkContext,
  sink?: StemSink,
): Promise<Stems> {
  const overlap = opts.overlap ?? 0.25;
  const shifts = Math.max(0, Math.floor(opts.shifts ?? 0));
  const power = opts.transitionPower ?? DEFAULT_TRANSITION_POWER;
  const random = opts.random ?? Math.random;
  if (!(overlap >= 0 && overlap < 1)) throw new RangeError(`overlap must be in [0, 1), got ${overlap}`);
  if (!(power >= 0 && power <= 10)) throw new RangeError(`transitionPower must be in [0, 10], got ${power}`);
  if (audio.channels.length === 0) throw new RangeError("audio has no channels");
  const rate = model.sampleRate;
  const SEG = model.segmentLength;
  const modelSeconds = SEG / rate;
  const segSeconds = opts.segment ?? modelSeconds;
  if (!(segSeconds > 0) || segSeconds > modelSeconds + 1e-9)
    throw new RangeError(`segment must be in (0, ${modelSeconds}] seconds, got ${segSeconds}`);
  const seglen = Math.min(SEG, Math.max(1, Math.floor(segSeconds * rate)));
  const stride = Math.max(1, Math.floor((1 - overlap) * seglen));

  throwIfAborted(ctx.signal);
  let input = audio;
  if (audio.sampleRate !== rate) input = await resample(audio, rate);
  throwIfAborted(ctx.signal);
  const x0 = input.channels[0]!;
  const x1 = input.channels[1] ?? x0;
  const L = x0.length;
  const outChannels = input.channels.length === 1 ? 1 : 2;

  let mean = 0;
  let std = 1;
  if (opts.normalize ?? true) {
    const s = mixStats(x0, x1);
    if (s.std > 1e-8) {
      mean = s.mean;
      std = s.std;
    }
  }
  const inv = 1 / std;

  const stems = {} as Stems;
  const full: Float32Array[][] = [];
  for (const name of STEMS) {
    const channels: Float32Array[] = [];
    for (let c = 0; c < outChannels; c++) channels.push(new Float32Array(sink ? 0 : L));
    stems[name] = { sampleRate: rate, channels };
    full.push(channels);
  }
  await sink?.begin?.({ sampleRate: rate, channels: outChannels, length: L });
  if (L === 0) {
    ctx.progress(1, "segment 0/0");
    return stems;
  }

  const nSrc = model.sources.length;
  const srcIndex = STEMS.map((name) => model.sources.indexOf(name));
  if (srcIndex.some((i) => i < 0)) throw new Error(`model sources ${model.sources.join(",")} lack a stem`);

  // Passes: one plain pass, or `shifts` passes starting 0..0.5 s early (demucs' max_shift).
  const maxShift = Math.floor(0.5 * rate);
  const passes: Pass[] = [];
  const starts = shifts > 0 ? Array.from({ length: shifts }, () => -Math.floor(random() * (maxShift + 1))) : [0];
  let total = 0;
  for (const a of starts) {
    total += Math.ceil((L - a) / stride);
    passes.push({
      next: a,
      acc: Array.from({ length: nSrc * 2 }, () => new Float32Array(seglen)),
      wsum: new Float32Array(seglen),
    });
  }
  const W = seglen;
  const weight = transitionWeights(seglen, power);

  const waveIn = new Float32Array(2 * SEG);
  const specIn = model.inferSources ? undefined : new Float32Array(4 * 2048 * model.frames);
  const sourcesBuf = new Float32Array(nSrc * 2 * SEG);
  let emitted = 0; // everything before this has been finalised
  let done = 0;
  ctx.progress(0, `segment 0/${total}`);

  for (;;) {
    // Next segment: the pass furthest behind, so output becomes final in order.
    let pass: Pass | null = null;
    for (const p of passes) if (p.next < L && (!pass || p.next < pass.next)) pass = p;
    if (!pass) break;
    throwIfAborted(ctx.signal);
    const g = pass.next;
    const len = Math.min(seglen, L - g);
    const trim = Math.floor((SEG - len) / 2);
    const from = g - trim; // input sample fed at model position 0
    for (let t = 0; t < SEG; t++) {
      const i = from + t;
      if (i >= 0 && i < L) {
        waveIn[t] = (x0[i]! - mean) * inv;
        waveIn[SEG + t] = (x1[i]! - mean) * inv;
      } else {
        waveIn[t] = 0;
        waveIn[SEG + t] = 0;
      }
    }
    const running = done;
    const onPart = (f: number) => {
      if (f > 0 && f < 1) ctx.progress((running + f) / total, `segment ${running + 1}/${total}: ${Math.floor(f * 100)}%`);
    };
    const sources = await segmentSources(model, waveIn, ctx.signal, specIn, sourcesBuf, onPart);
    throwIfAborted(ctx.signal);

    const t0 = Math.max(0, -g); // shifted passes start before the audio; skip that part
    for (let s = 0; s < nSrc; s++) {
      const tmp0 = sources.subarray(2 * s * SEG, (2 * s + 1) * SEG);
      const tmp1 = sources.subarray((2 * s + 1) * SEG, (2 * s + 2) * SEG);
      const a0 = pass.acc[2 * s]!;
      const a1 = pass.acc[2 * s + 1]!;
      for (let t = t0; t < len; t++) {
        const idx = g + t - emitted;
        const w = weight[t]!;
        a0[idx]! += w * tmp0[trim + t]!;
        a1[idx]! += w * tmp1[trim + t]!;
      }
    }
    for (let t = t0; t < len; t++) pass.wsum[g + t - emitted]! += weight[t]!;
    if (g + len - emitted > W) throw new Error("internal: overlap-add window overflow");
    pass.next += stride;
    done++;
    ctx.progress(done / total, `segment ${done}/${total}`);

    // Everything before the earliest pending segment start is final.
    let final = L;
    for (const p of passes) if (p.next < final) final = p.next;
    if (final > emitted) await emit(final);
  }
  return stems;

  async function emit(final: number) {
    const n = final - emitted;
    const chunk = {} as Record<StemName, Float32Array[]>;
    const scale = std / passes.length;
    const dc = mean / nSrc; // the mix's mean, given back once across the sources (see the top)
    for (let k = 0; k < STEMS.length; k++) {
      const s = srcIndex[k]!;
      const chans: Float32Array[] = [];
      const dst = full[k]!;
      for (let c = 0; c < outChannels; c++) chans.push(sink ? new Float32Array(n) : dst[c]!.subarray(emitted, final));
      for (let t = 0; t < n; t++) {
        let v0 = 0;
        let v1 = 0;
        for (const p of passes) {
          const iw = 1 / p.wsum[t]!;
          v0 += p.acc[2 * s]![t]! * iw;
          v1 += p.acc[2 * s + 1]![t]! * iw;
        }
        if (outChannels === 1) chans[0]![t] = (v0 + v1) * 0.5 * scale + dc;
        else {
          chans[0]![t] = v0 * scale + dc;
          chans[1]![t] = v1 * scale + dc;
        }
      }
      chunk[STEMS[k]!] = chans;
    }
    for (const p of passes) {
      for (const a of p.acc) {
        a.copyWithin(0, n);
        a.fill(0, W - n);
      }
      p.wsum.copyWithin(0, n);
      p.wsum.fill(0, W - n);
    }
    const start = emitted;
    emitted = final;
    if (sink) await sink.write(start, chunk);
  }
}
