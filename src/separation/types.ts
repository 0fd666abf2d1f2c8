// Types shared by the Demucs separation core and its model back ends. No runtime code.
import type { PcmAudio } from "../audio/pcm";

export const STEMS = ["drums", "bass", "other", "vocals"] as const;
export type StemName = (typeof STEMS)[number];
export type Stems = Record<StemName, PcmAudio>;

/** Raw model outputs for one segment (what the ONNX graph returns, batch dimension dropped). */
export interface DemucsInferenceResult {
  /** Spectrogram branch, planar [sources][4][2048][frames] (complex-as-channels, already de-normalised). */
  spec: Float32Array;
  /** Waveform branch, planar [sources][2][samples]. */
  wave: Float32Array;
}

/** Fraction (0..1, exclusive of 1) of one model run done so far. */
export type PartProgress = (fraction: number) => void;

/**
 * A loaded HTDemucs model. `separate` only needs `infer`, so the graph can run in-process
 * (`loadDemucs`) or somewhere killable (`loadDemucsIsolated` in ./node).
 */
export interface DemucsModel {
  readonly sampleRate: number; // 44100
  readonly audioChannels: number; // 2
  /** Samples per model call (the training segment, 343980 = 7.8 s for htdemucs). */
  readonly segmentLength: number;
  /** Spectrogram frames per model call (336). */
  readonly frames: number;
  /** Source names in the order the graph emits them. */
  readonly sources: readonly StemName[];
  /**
   * Runs the graph on one segment: `wave` is planar [2][segmentLength], `spec` is planar
   * [4][2048][frames]. Must reject with CancelledError (soon) if `signal` aborts. `onPart`, if the
   * back end runs the graph in steps, hears the fraction of the run done after each step (< 1).
   */
  infer(wave: Float32Array, spec: Float32Array, signal?: AbortSignal, onPart?: PartProgress): Promise<DemucsInferenceResult>;
  /**
   * Optional: one segment straight to time-domain sources, planar [sources][2][segmentLength]
   * (waveform branch + iSTFT of the spectrogram branch; see `segmentSources` in ./core). Offered by
   * back ends that run elsewhere, so that only audio crosses the boundary: 11 MB a segment instead
   * of the 55 MB of raw outputs, and the STFT/iSTFT run where the model runs. With `into` (of that
   * size) the result is written there and `into` is returned.
   */
  inferSources?(wave: Float32Array, signal?: AbortSignal, into?: Float32Array, onPart?: PartProgress): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface SeparateOptions {
  /** Fraction of each segment shared with the next (demucs' default 0.25). In [0, 1). */
  overlap?: number;
  /** Number of random time shifts (0..0.5 s) to average, as demucs' `shifts` (default 0 = one pass). */
  shifts?: number;
  /** Segment length in seconds, at most the model's 7.8 s (default: the model's). */
  segment?: number;
  /**
   * Exponent of the overlap-add's transition weights, as demucs' `transition_power` (demucs' default
   * 1, its triangle). Default here DEFAULT_TRANSITION_POWER (0.25): a flatter cross-fade averages the
   * two overlapping segments' estimates over more of the overlap, +0.005-0.04 dB SDR on every stem of
   * three remixes of the fixture song held out from the bench (bench/NOTES.md, session 11).
   */
  transitionPower?: number;
  /** Random source for `shifts` (default Math.random); give a seeded one for reproducible output. */
  random?: () => number;
  /**
   * Normalise the mix by its mean/std before the model and undo it after, as demucs' `separate`
   * does (default true).
   */
  normalize?: boolean;
}

/**
 * Receives finished stem audio in order, so a caller can stream it out (e.g. into WAV files) instead
 * of holding four full stems. `start` is the index (at `sampleRate`) of the chunk's first sample;
 * chunks are consecutive and cover the whole output exactly once. The arrays are fresh and may be kept.
 */
export interface StemSink {
  /** Called once before the first chunk. */
  begin?(info: { sampleRate: number; channels: number; length: number }): void | Promise<void>;
  write(start: number, stems: Record<StemName, Float32Array[]>): void | Promise<void>;
}
