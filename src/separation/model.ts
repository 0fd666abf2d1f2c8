// Loads htdemucs.onnx into an onnxruntime session. The onnxruntime module is injected
// (onnxruntime-node or onnxruntime-web), as are the model bytes or path/URL, so this file has no
// Node, Bun or DOM dependency.
import { CancelledError, throwIfAborted } from "../core/work";
import { STEMS, type DemucsInferenceResult, type DemucsModel, type StemName } from "./types";

/** The subset of onnxruntime's module API this file uses (onnxruntime-node and -web both fit). */
export interface OrtLike {
  InferenceSession: {
    create(model: any, options?: any): Promise<OrtSessionLike>;
  };
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => any;
}
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly any[];
  readonly outputMetadata?: readonly any[];
  run(feeds: Record<string, any>, options?: any): Promise<Record<string, any>>;
  release(): Promise<void>;
}

export interface LoadDemucsOptions {
  ort: OrtLike;
  /** Model bytes, or a path (onnxruntime-node) / URL (onnxruntime-web). */
  model: Uint8Array | string;
  /** Merged over DEFAULT_SESSION_OPTIONS. */
  sessionOptions?: Record<string, unknown>;
}

/**
 * Session options that keep CPU memory low: no arena (it keeps the peak of every run reserved) and no
 * memory-pattern planning (it preallocates one big block per run). Basic graph optimisation measured
 * as fast as "all" here and loads faster.
 */
export const DEFAULT_SESSION_OPTIONS: Record<string, unknown> = {
  graphOptimizationLevel: "basic",
  enableCpuMemArena: false,
  enableMemPattern: false,
  executionMode: "sequential",
  interOpNumThreads: 1,
};

const HTDEMUCS = { sampleRate: 44100, segmentLength: 343980, frames: 336 };

function dims(meta: any): number[] | null {
  const shape = meta?.shape;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === "number")) return null;
  return shape;
}

export async function loadDemucs(opts: LoadDemucsOptions): Promise<DemucsModel> {
  const { ort } = opts;
  const session = await ort.InferenceSession.create(opts.model, {
    ...DEFAULT_SESSION_OPTIONS,
    ...opts.sessionOptions,
  });
  // Inputs: the waveform [1, 2, T] and the cac spectrogram [1, 4, 2048, F]; outputs: the spectrogram
  // branch [1, S, 4, 2048, F] and the waveform branch [1, S, 2, T]. Pick them by rank when the
  // metadata says, else by position (the order htdemucs.onnx has).
  const inMeta = session.inputMetadata ?? [];
  const outMeta = session.outputMetadata ?? [];
  const byRank = (names: readonly string[], meta: readonly any[], rank: number, fallback: number) => {
    const i = meta.findIndex((m) => dims(m)?.length === rank);
    return names[i >= 0 ? i : fallback]!;
  };
  const waveIn = byRank(session.inputNames, inMeta, 3, 0);
  const specIn = byRank(session.inputNames, inMeta, 4, 1);
  const specOut = byRank(session.outputNames, outMeta, 5, 0);
  const waveOut = byRank(session.outputNames, outMeta, 4, 1);
  const waveDims = dims(inMeta[session.inputNames.indexOf(waveIn)]);
  const specDims = dims(inMeta[session.inputNames.indexOf(specIn)]);
  const segmentLength = waveDims?.[2] ?? HTDEMUCS.segmentLength;
  const frames = specDims?.[3] ?? HTDEMUCS.frames;
  if (Math.ceil(segmentLength / 1024) !== frames)
    throw new Error(`unexpected model shapes: ${segmentLength} samples vs ${frames} frames`);

  const sources: readonly StemName[] = STEMS; // htdemucs: drums, bass, other, vocals
  let busy: Promise<unknown> = Promise.resolve();

  return {
    sampleRate: HTDEMUCS.sampleRate,
    audioChannels: 2,
    segmentLength,
    frames,
    sources,
    async infer(wave, spec, signal): Promise<DemucsInferenceResult> {
      if (wave.length !== 2 * segmentLength || spec.length !== 4 * 2048 * frames)
        throw new Error("infer: input sizes do not match the model");
      // One run at a time per session: a shared model serialises callers instead of oversubscribing
      // the CPU (and multiplying the activation memory).
      const prev = busy;
      let release!: () => void;
      busy = new Promise<void>((r) => (release = r));
      try {
        await prev;
        if (signal) throwIfAborted(signal);
        const res = await session.run({
          [waveIn]: new ort.Tensor("float32", wave, [1, 2, segmentLength]),
          [specIn]: new ort.Tensor("float32", spec, [1, 4, 2048, frames]),
        });
        // onnxruntime-node runs synchronously on this thread, so an abort during the run is only
        // seen here; the isolated model (./node) can stop a run midway.
        if (signal?.aborted) throw new CancelledError();
        const s = res[specOut].data as Float32Array;
        const w = res[waveOut].data as Float32Array;
        if (s.length !== sources.length * 4 * 2048 * frames || w.length !== sources.length * 2 * segmentLength)
          throw new Error("infer: unexpected output sizes");
        return { spec: s, wave: w };
      } finally {
        release();
      }
    },
    async dispose() {
      await session.release();
    },
  };
}
