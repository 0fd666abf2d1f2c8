// Loads htdemucs.onnx into an onnxruntime session. The onnxruntime module is injected
// (onnxruntime-node or onnxruntime-web), as are the model bytes or path/URL, so this file has no
// Node, Bun or DOM dependency.
import { CancelledError, throwIfAborted } from "../core/work";
import { fuseAttentionIn } from "./attention";
import { rewriteConvTransposeIn } from "./conv-transpose";
import { ModelProto } from "./onnx-proto";
import { splitModel, type GraphIO, type SplitGraph } from "./split";
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

/** A model already split (and rewritten) by ./split.ts, each part as bytes or a path/URL. */
export interface PresplitModel {
  parts: { model: Uint8Array | string; inputs: string[]; outputs: string[] }[];
  inputs: GraphIO[];
  outputs: GraphIO[];
}

/** htdemucs.onnx decoded, with the attention and/or ConvTranspose rewrites applied (a ModelProto
 * object, for splitModel or re-encoding). */
export function rewrittenDemucs(bytes: Uint8Array, opts: { fuse: boolean; convTr: boolean }): any {
  const decoded: any = ModelProto.decode(bytes);
  if (opts.fuse) fuseAttentionIn(decoded);
  if (opts.convTr) rewriteConvTransposeIn(decoded);
  return decoded;
}

function toPresplit(g: SplitGraph): PresplitModel {
  return { parts: g.parts.map((p) => ({ model: p.bytes, inputs: p.inputs, outputs: p.outputs })), inputs: g.inputs, outputs: g.outputs };
}

export interface LoadDemucsOptions {
  ort: OrtLike;
  /**
   * Model bytes, or a path (onnxruntime-node) / URL (onnxruntime-web), or a model split ahead of time
   * (split, fuseAttention and rewriteConvTranspose are then what was done when it was split).
   */
  model: Uint8Array | string | PresplitModel;
  /** Merged over DEFAULT_SESSION_OPTIONS. */
  sessionOptions?: Record<string, unknown>;
  /**
   * Run the graph as 8 consecutive sub-graphs (./split.ts) instead of one: peak memory ~1.1 GB
   * instead of ~2.3 GB, and a cancel is seen between parts (a fraction of a second) instead of
   * after the whole 7.8 s segment. Needs the model as bytes. Default: true when bytes are given.
   */
  split?: boolean;
  /**
   * Replace the transformer's MatMul/Softmax/MatMul attention by com.microsoft MultiHeadAttention
   * (./attention.ts; same output within float rounding). Needs the model as bytes. Default: true
   * when bytes are given.
   */
  fuseAttention?: boolean;
  /** Rewrite the decoder's ConvTranspose layers as a 2-tap Conv + interleave (./conv-transpose.ts;
   * same output within float rounding, ~15% less time a segment). Needs the model as bytes.
   * Default: true when bytes are given. */
  rewriteConvTranspose?: boolean;
  /** Minimum nodes a part when splitting (default DEMUCS_PART_NODES; tests use small graphs). */
  partNodes?: number;
}

/**
 * Session options that keep CPU memory low: no arena (it keeps the peak of every run reserved) and no
 * memory-pattern planning (it preallocates one big block per run). "extended" graph optimisation
 * fuses the 56 exported GELUs (Div/Erf/Add/Mul/Mul, five passes over big tensors) into one op:
 * the song's separation 20.2 s vs 21.5 s with "basic" (mean of 4 alternating runs, CPU 35.5 vs
 * 38.3 s), same SDR to 4 decimals; "all" adds NCHWc layout reorders that cost more than they save.
 * Given `extra` is merged one level deep with the caller's.
 */
export const DEFAULT_SESSION_OPTIONS: Record<string, unknown> = {
  graphOptimizationLevel: "extended",
  enableCpuMemArena: false,
  enableMemPattern: false,
  executionMode: "sequential",
  interOpNumThreads: 1,
  // Idle pool threads sleep instead of spinning: on a shared 2-core box spinning burned ~1.7x the CPU
  // for the same work (measured 5.6 vs 3.3 s user CPU per segment).
  extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
};

/** Minimum nodes a part when splitting (see the measurements in loadDemucs): 8 parts for htdemucs. */
export const DEMUCS_PART_NODES = 400;

const HTDEMUCS = { sampleRate: 44100, segmentLength: 343980, frames: 336 };

interface Part {
  session: OrtSessionLike;
  inputs: string[];
  outputs: string[];
}

export async function loadDemucs(opts: LoadDemucsOptions): Promise<DemucsModel> {
  const { ort } = opts;
  const sessionOptions: Record<string, any> = { ...DEFAULT_SESSION_OPTIONS, ...opts.sessionOptions };
  if (opts.sessionOptions?.extra)
    sessionOptions.extra = { ...(DEFAULT_SESSION_OPTIONS.extra as object), ...(opts.sessionOptions.extra as object) };
  const presplit = typeof opts.model === "object" && !(opts.model instanceof Uint8Array) ? opts.model : null;
  const bytes = opts.model instanceof Uint8Array;
  const split = opts.split !== false && bytes;
  const fuse = opts.fuseAttention !== false && bytes;
  const convTr = opts.rewriteConvTranspose !== false && bytes;
  // Inputs: the waveform [1, 2, T] and the cac spectrogram [1, 4, 2048, F]; outputs: the spectrogram
  // branch [1, S, 4, 2048, F] and the waveform branch [1, S, 2, T]. Pick them by rank when the
  // shapes are known, else by position (the order htdemucs.onnx has).
  let parts: Part[] = [];
  let inputs: { name: string; dims: (number | null)[] | null }[];
  let outputs: { name: string; dims: (number | null)[] | null }[];
  // Decoded once and rewritten in place, then split (or re-encoded for one session).
  const decoded = split || fuse || convTr ? rewrittenDemucs(opts.model as Uint8Array, { fuse, convTr }) : undefined;
  // At least 400 nodes a part: 8 parts. Measured on the song in-process (fused attention and
  // ConvTranspose): 8 parts 18.0-18.4 s at 1.12-1.13 GB, 32 parts (60 nodes) 19.9-20.3 s at
  // 1.03-1.11 GB, 3-4 parts no faster, 1 part 16.6-17.0 s but 2.27 GB. Fewer parts means fewer
  // per-session thread pools woken and fewer outputs copied out to JS between parts.
  const graph: PresplitModel | null =
    presplit ?? (split ? toPresplit(splitModel(decoded, opts.partNodes ?? DEMUCS_PART_NODES)) : null);
  if (graph) {
    try {
      for (const p of graph.parts) {
        parts.push({ session: await ort.InferenceSession.create(p.model, sessionOptions), inputs: p.inputs, outputs: p.outputs });
      }
    } catch (e) {
      for (const p of parts) await p.session.release();
      throw e;
    }
    inputs = graph.inputs;
    outputs = graph.outputs;
  } else {
    const model = decoded ? ModelProto.encode(ModelProto.fromObject(decoded)).finish() : (opts.model as Uint8Array | string);
    const session = await ort.InferenceSession.create(model, sessionOptions);
    const meta = (names: readonly string[], md: readonly any[] | undefined) =>
      names.map((name, i) => ({ name, dims: (md?.[i]?.shape as any[] | undefined)?.map((d) => (typeof d === "number" ? d : null)) ?? null }));
    inputs = meta(session.inputNames, session.inputMetadata);
    outputs = meta(session.outputNames, session.outputMetadata);
    parts = [{ session, inputs: session.inputNames.slice(), outputs: session.outputNames.slice() }];
  }
  const byRank = (list: typeof inputs, rank: number, fallback: number) => list.find((v) => v.dims?.length === rank) ?? list[fallback]!;
  const waveInfo = byRank(inputs, 3, 0);
  const specInfo = byRank(inputs, 4, 1);
  const waveIn = waveInfo.name;
  const specIn = specInfo.name;
  const specOut = byRank(outputs, 5, 0).name;
  const waveOut = byRank(outputs, 4, 1).name;
  const segmentLength = waveInfo.dims?.[2] ?? HTDEMUCS.segmentLength;
  const frames = specInfo.dims?.[3] ?? HTDEMUCS.frames;
  if (Math.ceil(segmentLength / 1024) !== frames) {
    for (const p of parts) await p.session.release();
    throw new Error(`unexpected model shapes: ${segmentLength} samples vs ${frames} frames`);
  }

  // after which part each tensor can be dropped
  const lastUse = new Map<string, number>();
  parts.forEach((p, i) => p.inputs.forEach((x) => lastUse.set(x, i)));
  lastUse.set(specOut, parts.length);
  lastUse.set(waveOut, parts.length);

  const sources: readonly StemName[] = STEMS; // htdemucs: drums, bass, other, vocals
  let busy: Promise<unknown> = Promise.resolve();
  // Each part's share of a run, for progress within a segment: equal until a run has been timed,
  // then the last run's measured times (htdemucs' attention parts cost more than its convolutions).
  let share = parts.map(() => 1 / parts.length);
  const partMs = parts.map(() => 0);

  return {
    sampleRate: HTDEMUCS.sampleRate,
    audioChannels: 2,
    segmentLength,
    frames,
    sources,
    async infer(wave, spec, signal, onPart): Promise<DemucsInferenceResult> {
      if (wave.length !== 2 * segmentLength || spec.length !== 4 * 2048 * frames)
        throw new Error("infer: input sizes do not match the model");
      // One run at a time per model: a shared model serialises callers instead of oversubscribing
      // the CPU (and multiplying the activation memory).
      const prev = busy;
      let release!: () => void;
      busy = new Promise<void>((r) => (release = r));
      try {
        await prev;
        const values = new Map<string, any>([
          [waveIn, new ort.Tensor("float32", wave, [1, 2, segmentLength])],
          [specIn, new ort.Tensor("float32", spec, [1, 4, 2048, frames])],
        ]);
        let doneShare = 0;
        for (let i = 0; i < parts.length; i++) {
          // onnxruntime-node runs synchronously on this thread; between parts the event loop turns
          // and an abort is seen here.
          if (signal) throwIfAborted(signal);
          const part = parts[i]!;
          const feeds: Record<string, any> = {};
          for (const x of part.inputs) feeds[x] = values.get(x);
          const t0 = performance.now();
          const res = await part.session.run(feeds);
          partMs[i] = performance.now() - t0;
          for (const x of part.inputs) if (lastUse.get(x) === i) values.delete(x);
          for (const o of part.outputs) values.set(o, res[o]);
          doneShare += share[i]!;
          if (onPart && i < parts.length - 1) onPart(Math.min(doneShare, 0.999));
        }
        const totalMs = partMs.reduce((a, b) => a + b, 0);
        if (totalMs > 0) share = partMs.map((ms) => ms / totalMs);
        if (signal?.aborted) throw new CancelledError();
        const s = values.get(specOut).data as Float32Array;
        const w = values.get(waveOut).data as Float32Array;
        if (s.length !== sources.length * 4 * 2048 * frames || w.length !== sources.length * 2 * segmentLength)
          throw new Error("infer: unexpected output sizes");
        return { spec: s, wave: w };
      } finally {
        release();
      }
    },
    async dispose() {
      for (const p of parts) await p.session.release();
    },
  };
}
