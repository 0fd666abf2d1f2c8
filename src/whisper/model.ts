// Loads the derived Whisper sessions once; the result is shared by concurrent transcribe() calls.
// The onnxruntime module (onnxruntime-node or onnxruntime-web) and the model bytes/paths are
// injected, so this file has no fs and no Bun/DOM dependency.
import { COMBINED_MODE, COMBINED_PREFIX, combinedLayout, type WhisperConfigFile, type WhisperVocabFile } from "./derive";
import { WhisperTokenizer } from "./tokenizer";

/** The part of the onnxruntime API we use (satisfied by onnxruntime-node and onnxruntime-web). */
export interface OrtModule {
  InferenceSession: { create(model: any, options?: any): Promise<OrtSession> };
  Tensor: new (type: any, data: any, dims: readonly number[]) => OrtTensor;
}
export interface OrtTensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: any;
  dispose?(): void;
}
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[] | Record<string, any>, options?: any): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}

/** A model file: a path (onnxruntime-node) / URL (onnxruntime-web) or its bytes. */
export type ModelSource = string | Uint8Array;

export interface WhisperModelSources {
  ort: OrtModule;
  /** frames [F, 400] -> log10 mel [F, 80] (see derive.ts). */
  mel: ModelSource;
  encoder: ModelSource;
  decoder: ModelSource;
  /** Decoder variant that also outputs cross-attention logits (word timestamps); loaded on first use. */
  decoderAttn?: ModelSource;
  /** encoder + decoder + decoder-attn in one graph (derive.ts); when given, it replaces the three. */
  combined?: ModelSource;
  tokenizer: WhisperVocabFile;
  config: WhisperConfigFile;
  /** Extra onnxruntime session options (default: 2 intra-op threads, all graph optimisations). */
  sessionOptions?: Record<string, unknown>;
  /** Options for the decoder sessions, or for the combined one (default: see loadWhisperModel). */
  decoderSessionOptions?: Record<string, unknown>;
  /** Model name reported in results/logs. */
  name?: string;
}

export interface WhisperModel {
  readonly name: string;
  readonly ort: OrtModule;
  readonly tokenizer: WhisperTokenizer;
  readonly config: WhisperConfigFile;
  readonly mel: OrtSession;
  readonly encoder: OrtSession;
  readonly decoder: OrtSession;
  /** Resolves the cross-attention decoder (word timestamps), loading it once. */
  decoderAttn(): Promise<OrtSession>;
  /** Token ids always suppressed (openai/whisper suppress_tokens="-1"). */
  readonly suppressTokens: Int32Array;
  /** Runs `fn` with exclusive use of the CPU-bound sessions (keeps 2 cores from oversubscription). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  release(): Promise<void>;
  /** Cumulative counters (windows, decodes, tokens, ms per stage) for benches and logs. */
  readonly stats: WhisperStats;
}

export interface WhisperStats {
  windows: number;
  decodes: number;
  tokens: number;
  melMs: number;
  encoderMs: number;
  decoderMs: number;
  totalDecodeMs: number;
}

export function newStats(): WhisperStats {
  return { windows: 0, decodes: 0, tokens: 0, melMs: 0, encoderMs: 0, decoderMs: 0, totalDecodeMs: 0 };
}

export const DEFAULT_SESSION_OPTIONS = {
  executionProviders: ["cpu"],
  intraOpNumThreads: 2,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  logSeverityLevel: 3,
  // Four sessions share 2 cores: an idle pool spinning for work steals the CPU from the session
  // that runs next (bench: 1.6x the raw graph's time with spinning, 0.8x without).
  extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
};

export async function loadWhisperModel(src: WhisperModelSources): Promise<WhisperModel> {
  const opts = { ...DEFAULT_SESSION_OPTIONS, ...(src.sessionOptions ?? {}) };
  const create = (m: ModelSource, o: Record<string, unknown> = opts) => src.ort.InferenceSession.create(m, o);
  // The decoders run hundreds of tiny steps back to back, so their pool spins between steps
  // (quiet 2-core bench, long-harvard: 4.75 s with it, 6.65 s without); the others stay quiet.
  // The combined session gets the same: its one pool serves the encoder too.
  const decOpts = src.decoderSessionOptions ? { ...opts, ...src.decoderSessionOptions } : src.sessionOptions ? opts : { ...opts, extra: { session: { intra_op: { allow_spinning: "1" }, inter_op: { allow_spinning: "0" } } } };
  const tokenizer = new WhisperTokenizer(src.tokenizer);
  let attn: Promise<OrtSession> | undefined;
  let mel: OrtSession, encoder: OrtSession, decoder: OrtSession;
  let combined: OrtSession | undefined;
  if (src.combined) {
    [mel, combined] = await Promise.all([create(src.mel), create(src.combined, decOpts)]);
    const views = combinedViews(src.ort, combined, src.config);
    ({ encoder, decoder } = views);
    attn = Promise.resolve(views.decoderAttn);
  } else {
    [mel, encoder, decoder] = await Promise.all([create(src.mel), create(src.encoder), create(src.decoder, decOpts)]);
  }
  let chain: Promise<unknown> = Promise.resolve();
  return {
    name: src.name ?? "whisper-tiny.en",
    ort: src.ort,
    tokenizer,
    config: src.config,
    mel,
    encoder,
    decoder,
    decoderAttn() {
      if (attn) return attn;
      if (!src.decoderAttn) return Promise.reject(new Error("this Whisper model has no cross-attention decoder (word timestamps)"));
      attn = create(src.decoderAttn, decOpts);
      return attn;
    },
    suppressTokens: Int32Array.from(tokenizer.defaultSuppressTokens()),
    stats: newStats(),
    exclusive<T>(fn: () => Promise<T>): Promise<T> {
      const next = chain.then(fn, fn);
      chain = next.catch(() => {});
      return next;
    },
    async release() {
      const all = combined ? [mel, combined] : [mel, encoder, decoder, ...(attn ? [await attn] : [])];
      for (const s of all) await s.release?.();
    },
  };
}

/** The combined session seen as the three sessions decoding.ts expects: each view adds `mode`
 * and placeholder tensors for the other modes' inputs, fetches only its own If's outputs and
 * names them. */
function combinedViews(ort: OrtModule, combined: OrtSession, config: WhisperConfigFile) {
  const layout = combinedLayout(config.numLayers, config.attnLayers);
  const H = config.numHeads;
  const D = config.headDim;
  const emptyKV = new ort.Tensor("float32", new Float32Array(0), [1, H, 0, D]);
  const placeholders: Record<string, OrtTensor> = {
    encoder_input_ids: new ort.Tensor("float32", new Float32Array(0), [1, 0, 3000]),
    decoder_input_ids: new ort.Tensor("int32", Int32Array.from([config.sot]), [1, 1]),
    input_ids: new ort.Tensor("int32", Int32Array.from([config.eos]), [1, 1]),
  };
  for (const name of combined.inputNames) if (name.startsWith("past_")) placeholders[name] = emptyKV;
  const view = (which: keyof typeof COMBINED_MODE, inputs: string[]): OrtSession => {
    const names = layout[which];
    const fetches = names.map((_, k) => `${COMBINED_PREFIX[which]}_${k}`);
    const modeTensor = new ort.Tensor("int64", BigInt64Array.from([BigInt(COMBINED_MODE[which])]), []);
    return {
      inputNames: inputs,
      outputNames: names,
      async run(feeds) {
        const out = await combined.run({ ...placeholders, ...feeds, mode: modeTensor }, fetches);
        const named: Record<string, OrtTensor> = {};
        names.forEach((n, k) => (named[n] = out[fetches[k]!]!));
        return named;
      },
    };
  };
  const decoderInputs = combined.inputNames.filter((n) => n === "input_ids" || n.startsWith("past_"));
  return {
    encoder: view("encoder", ["encoder_input_ids", "decoder_input_ids"]),
    decoder: view("decoder", decoderInputs),
    decoderAttn: view("decoderAttn", decoderInputs),
  };
}
