// HTDemucs' spectrogram front end and back end (`_spec` / `_ispec` in demucs/htdemucs.py), in plain
// TypeScript so it runs unchanged under Bun, Node and in a browser worker.
//
// HTDemucs computes torch.stft(n_fft=4096, hop=1024, hann (periodic), normalized=True, center=True,
// reflect) on the signal reflect-padded by 1536 on the left and `1536 + le*1024 - L` on the right,
// drops the Nyquist bin and keeps frames 2 .. 2+le (le = ceil(L / 1024)). Working that through, the
// centre padding of torch.stft is never reached by the kept frames, so frame k simply windows
// x[k*1024 - 1536 .. k*1024 + 2560) with x reflected at both ends (x[-j] = x[j], x[L-1+j] = x[L-1-j]).
//
// `_ispec` zero-pads the Nyquist bin and two empty frames on each side, runs torch.istft with
// length le*1024 + 3072 and crops 1536 from the start. Every output sample is covered by four frames,
// so the istft window envelope (sum of squared Hann windows at hop N/4) is exactly 1.5 everywhere, and
// output sample m gets frame k's sample n where m = k*1024 - 1536 + n.
//
// Complex-as-channels layout (the model's `_magnitude` with cac=True): for stereo audio the spectrogram
// is planar [4][2048][T] = [re(ch0), im(ch0), re(ch1), im(ch1)].
//
// Two real channels share one complex FFT (x0 + i*x1), which halves the FFT work both ways.
import FFT from "fft.js";

export const N_FFT = 4096;
export const HOP = 1024;
export const N_BINS = N_FFT / 2; // Nyquist bin dropped
const PAD = (HOP / 2) * 3; // 1536

/** Number of spectrogram frames HTDemucs uses for a signal of `length` samples. */
export function framesFor(length: number): number {
  return Math.ceil(length / HOP);
}

let shared: { fft: FFT; window: Float64Array; buf: Float64Array; out: Float64Array } | null = null;
function state() {
  if (!shared) {
    const window = new Float64Array(N_FFT);
    for (let n = 0; n < N_FFT; n++) window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
    shared = {
      fft: new FFT(N_FFT),
      window,
      buf: new Float64Array(2 * N_FFT),
      out: new Float64Array(2 * N_FFT),
    };
  }
  return shared;
}

function reflectIndex(i: number, length: number): number {
  if (i < 0) return -i;
  if (i >= length) return 2 * (length - 1) - i;
  return i;
}

/**
 * Spectrogram of a stereo signal exactly as HTDemucs' `_spec` + `_magnitude` (cac) lay it out.
 * `out` (optional, reused) must hold 4 * 2048 * framesFor(length) floats; planar [4][2048][T].
 */
export function stereoSpec(x0: Float32Array, x1: Float32Array, out?: Float32Array): Float32Array {
  const L = x0.length;
  if (x1.length !== L) throw new Error("stereoSpec: channel lengths differ");
  if (L <= PAD + HOP) throw new Error(`stereoSpec: signal too short (${L} samples)`);
  const T = framesFor(L);
  const spec = out ?? new Float32Array(4 * N_BINS * T);
  if (spec.length !== 4 * N_BINS * T) throw new Error("stereoSpec: output has the wrong size");
  const { fft, window, buf, out: y } = state();
  const scale = 1 / Math.sqrt(N_FFT);
  const plane = N_BINS * T;
  for (let k = 0; k < T; k++) {
    const start = k * HOP - PAD;
    if (start >= 0 && start + N_FFT <= L) {
      for (let n = 0; n < N_FFT; n++) {
        const w = window[n]!;
        buf[2 * n] = x0[start + n]! * w;
        buf[2 * n + 1] = x1[start + n]! * w;
      }
    } else {
      for (let n = 0; n < N_FFT; n++) {
        const i = reflectIndex(start + n, L);
        const w = window[n]!;
        buf[2 * n] = x0[i]! * w;
        buf[2 * n + 1] = x1[i]! * w;
      }
    }
    fft.transform(y, buf);
    // Split Y = X0 + i X1: X0[f] = (Y[f] + conj Y[N-f]) / 2, X1[f] = (Y[f] - conj Y[N-f]) / 2i.
    const h = scale * 0.5;
    for (let f = 0; f < N_BINS; f++) {
      const g = f === 0 ? 0 : N_FFT - f;
      const yr = y[2 * f]!, yi = y[2 * f + 1]!, zr = y[2 * g]!, zi = y[2 * g + 1]!;
      const at = f * T + k;
      spec[at] = (yr + zr) * h;
      spec[plane + at] = (yi - zi) * h;
      spec[2 * plane + at] = (yi + zi) * h;
      spec[3 * plane + at] = (zr - yr) * h;
    }
  }
  return spec;
}

/**
 * Inverse of `stereoSpec` for one source, as HTDemucs' `_mask` (cac) + `_ispec`: reads the planar
 * [4][2048][T] block starting at `offset` of `spec` and ADDS the waveform, times `gain`, into
 * out0/out1 (length L, with framesFor(L) === T).
 */
export function stereoISpecAdd(
  spec: Float32Array,
  offset: number,
  T: number,
  out0: Float32Array,
  out1: Float32Array,
  gain = 1,
): void {
  const L = out0.length;
  if (framesFor(L) !== T) throw new Error("stereoISpecAdd: frame count does not match length");
  const { fft, window, buf, out: y } = state();
  // fft.js' inverse divides by N (irfft's convention); torch's normalized istft multiplies by sqrt(N);
  // the squared-window envelope is 1.5 everywhere.
  const c = (Math.sqrt(N_FFT) / 1.5) * gain;
  const plane = N_BINS * T;
  for (let k = 0; k < T; k++) {
    // Y = X0 + i X1 over the full (Hermitian-extended) spectrum.
    for (let f = 0; f < N_BINS; f++) {
      const at = offset + f * T + k;
      const a0 = spec[at]!, b0 = spec[plane + at]!, a1 = spec[2 * plane + at]!, b1 = spec[3 * plane + at]!;
      if (f === 0) {
        // irfft ignores the imaginary part of the DC bin
        buf[0] = a0;
        buf[1] = a1;
        continue;
      }
      buf[2 * f] = a0 - b1;
      buf[2 * f + 1] = b0 + a1;
      const g = N_FFT - f;
      buf[2 * g] = a0 + b1;
      buf[2 * g + 1] = a1 - b0;
    }
    buf[2 * N_BINS] = 0; // Nyquist bin (zero-padded by _ispec)
    buf[2 * N_BINS + 1] = 0;
    fft.inverseTransform(y, buf);
    const start = k * HOP - PAD;
    const n0 = Math.max(0, -start);
    const n1 = Math.min(N_FFT, L - start);
    for (let n = n0; n < n1; n++) {
      const w = window[n]! * c;
      out0[start + n]! += y[2 * n]! * w;
      out1[start + n]! += y[2 * n + 1]! * w;
    }
  }
}
