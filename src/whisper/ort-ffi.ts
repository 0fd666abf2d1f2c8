// onnxruntime's C API through bun:ffi, shaped as the OrtModule the Whisper core takes (server side,
// Bun only; the browser keeps onnxruntime-web). It uses the libonnxruntime that onnxruntime-node
// ships, so the kernels and results are the same.
// Why: onnxruntime-node copies every output of every run into a fresh JavaScript buffer (a decoder
// step's whole self-attention cache, ~3 MB at 250 positions, and its logits), and its N-API
// binding costs Bun more per call than a JIT-compiled FFI call. Here an output stays in
// onnxruntime's memory until JavaScript reads `.data` (then it is copied once and freed), so a
// decoder step's cache goes back into the next step without ever entering JavaScript.
import { CFunction, CString, dlopen, FFIType, ptr, read, toArrayBuffer } from "bun:ffi";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { OrtModule, OrtSession, OrtTensor } from "./model";

type Ptr = number;
const P = FFIType.ptr, U64 = FFIType.u64, I32 = FFIType.i32, VOID = FFIType.void;

// OrtApi is a table of function pointers that onnxruntime only ever appends to: these are the
// slots of onnxruntime_c_api.h (stable since API version 1; AddSessionConfigEntry since 2).
const SLOTS = {
  GetErrorMessage: [2, [P], FFIType.cstring],
  CreateEnv: [3, [I32, P, P], P],
  CreateSession: [7, [P, P, P, P], P],
  CreateSessionFromArray: [8, [P, P, U64, P, P], P],
  Run: [9, [P, P, P, P, U64, P, U64, P], P],
  CreateSessionOptions: [10, [P], P],
  SetSessionExecutionMode: [13, [P, I32], P],
  SetSessionLogSeverityLevel: [22, [P, I32], P],
  SetSessionGraphOptimizationLevel: [23, [P, I32], P],
  SetIntraOpNumThreads: [24, [P, I32], P],
  SetInterOpNumThreads: [25, [P, I32], P],
  SessionGetInputCount: [30, [P, P], P],
  SessionGetOutputCount: [31, [P, P], P],
  SessionGetInputName: [36, [P, U64, P, P], P],
  SessionGetOutputName: [37, [P, U64, P, P], P],
  CreateTensorWithDataAsOrtValue: [49, [P, P, U64, P, U64, I32, P], P],
  GetTensorMutableData: [51, [P, P], P],
  GetTensorElementType: [60, [P, P], P],
  GetDimensionsCount: [61, [P, P], P],
  GetDimensions: [62, [P, P, U64], P],
  GetTensorTypeAndShape: [65, [P, P], P],
  CreateCpuMemoryInfo: [69, [I32, I32, P], P],
  AllocatorFree: [76, [P, P], P],
  GetAllocatorWithDefaultOptions: [78, [P], P],
  ReleaseStatus: [93, [P], VOID],
  ReleaseMemoryInfo: [94, [P], VOID],
  ReleaseSession: [95, [P], VOID],
  ReleaseValue: [96, [P], VOID],
  ReleaseTensorTypeAndShapeInfo: [99, [P], VOID],
  ReleaseSessionOptions: [100, [P], VOID],
  AddSessionConfigEntry: [130, [P, P, P], P],
} as const;
type Api = { [K in keyof typeof SLOTS]: (...args: any[]) => any };

type Typed = Float32Array | Float64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

// ONNX element types <-> onnxruntime-common's type names and typed arrays
const ELEMENT: Record<string, [number, (new (b: ArrayBuffer) => Typed) & { BYTES_PER_ELEMENT: number }]> = {
  float32: [1, Float32Array], uint8: [2, Uint8Array], int8: [3, Int8Array], uint16: [4, Uint16Array],
  int16: [5, Int16Array], int32: [6, Int32Array], int64: [7, BigInt64Array], bool: [9, Uint8Array],
  float64: [11, Float64Array], uint32: [12, Uint32Array], uint64: [13, BigUint64Array],
};
const TYPE_NAME = new Map(Object.entries(ELEMENT).map(([name, [code]]) => [code, name] as const).reverse());

/** The libonnxruntime shipped inside onnxruntime-node, or undefined. */
function findLibrary(): string | undefined {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve("onnxruntime-node/package.json"));
    const bin = join(dir, "bin", "napi-v6", process.platform, process.arch);
    if (!existsSync(bin)) return undefined;
    const name = readdirSync(bin).find((f) => /^(lib)?onnxruntime(\.so\.\d+|\.\d.*\.dylib|\.dylib|\.dll)$/.test(f));
    return name ? join(bin, name) : undefined;
  } catch {
    return undefined;
  }
}

class Runtime {
  readonly api: Api;
  readonly env: Ptr;
  readonly cpu: Ptr;
  readonly allocator: Ptr;
  // One out-parameter cell and one dims buffer, reused (calls are synchronous).
  private readonly cell = new BigUint64Array(1);
  readonly cellPtr: Ptr;
  private dims = new BigInt64Array(8);
  private readonly names = new Map<string, { buf: Buffer; ptr: Ptr }>();
  /** Stands in for the data pointer of empty tensors (ptr() refuses empty arrays). */
  private readonly dummy = new Float64Array(1);

  constructor(libPath: string) {
    const lib = dlopen(libPath, { OrtGetApiBase: { args: [], returns: P } });
    const base = lib.symbols.OrtGetApiBase();
    if (!base) throw new Error("OrtGetApiBase returned null");
    const getApi = CFunction({ ptr: read.ptr(base, 0) as any, args: [FFIType.u32], returns: P });
    const table = getApi(16); // any onnxruntime >= 1.16 serves version 16's (prefix of the) table
    if (!table) throw new Error("this onnxruntime does not serve C API version 16");
    const api: Record<string, unknown> = {};
    for (const [name, [slot, args, returns]] of Object.entries(SLOTS)) {
      api[name] = CFunction({ ptr: read.ptr(table, slot * 8) as any, args: [...args], returns });
    }
    this.api = api as Api;
    this.cellPtr = ptr(this.cell);
    this.check(this.api.CreateEnv(3, this.name("stemscribe"), this.cellPtr));
    this.env = this.out();
    this.check(this.api.CreateCpuMemoryInfo(0, 0, this.cellPtr)); // device allocator, default mem type
    this.cpu = this.out();
    this.check(this.api.GetAllocatorWithDefaultOptions(this.cellPtr));
    this.allocator = this.out();
  }

  /** The out-parameter just written. */
  out(): Ptr {
    return Number(this.cell[0]);
  }

  check(status: Ptr | null): void {
    if (!status) return;
    const msg = String(this.api.GetErrorMessage(status));
    this.api.ReleaseStatus(status);
    throw new Error(`onnxruntime: ${msg}`);
  }

  /** A NUL-terminated copy of `s` that lives as long as the runtime (names are few). */
  name(s: string): Ptr {
    let n = this.names.get(s);
    if (!n) {
      const buf = Buffer.from(`${s}\0`, "utf8");
      n = { buf, ptr: ptr(buf) };
      this.names.set(s, n);
    }
    return n.ptr;
  }

  takeString(p: Ptr): string {
    const s = new CString(p as any).toString();
    this.check(this.api.AllocatorFree(this.allocator, p));
    return s;
  }

  /** An OrtValue over JavaScript memory (no copy; the array must outlive it). */
  wrap(type: string, data: Typed, dims: readonly number[]): Ptr {
    const el = ELEMENT[type];
    if (!el) throw new Error(`onnxruntime (ffi): unsupported tensor type ${type}`);
    if (this.dims.length < dims.length + 1) this.dims = new BigInt64Array(dims.length + 1);
    for (let i = 0; i < dims.length; i++) this.dims[i] = BigInt(dims[i]!);
    const p = data.byteLength > 0 ? ptr(data) : ptr(this.dummy);
    this.check(this.api.CreateTensorWithDataAsOrtValue(this.cpu, p, data.byteLength, ptr(this.dims), dims.length, el[0], this.cellPtr));
    return this.out();
  }

  /** Element type and shape of an OrtValue. */
  describe(value: Ptr): { type: string; dims: number[] } {
    const a = this.api;
    this.check(a.GetTensorTypeAndShape(value, this.cellPtr));
    const info = this.out();
    try {
      this.check(a.GetTensorElementType(info, this.cellPtr));
      const code = Number(this.cell[0]! & 0xffffffffn);
      this.check(a.GetDimensionsCount(info, this.cellPtr));
      const n = this.out();
      if (this.dims.length < n + 1) this.dims = new BigInt64Array(n + 1);
      this.check(a.GetDimensions(info, ptr(this.dims), n));
      const type = TYPE_NAME.get(code);
      if (!type) throw new Error(`onnxruntime (ffi): unsupported output element type ${code}`);
      return { type, dims: Array.from(this.dims.subarray(0, n), Number) };
    } finally {
      a.ReleaseTensorTypeAndShapeInfo(info);
    }
  }

  /** A JavaScript copy of an OrtValue's data. */
  copyOut(value: Ptr, type: string, dims: readonly number[]): Typed {
    const Ctor = ELEMENT[type]![1];
    const count = dims.reduce((x, y) => x * y, 1);
    const bytes = count * Ctor.BYTES_PER_ELEMENT;
    const copy = new Uint8Array(bytes);
    if (bytes > 0) {
      this.check(this.api.GetTensorMutableData(value, this.cellPtr));
      copy.set(new Uint8Array(toArrayBuffer(this.out() as any, 0, bytes)));
    }
    return new Ctor(copy.buffer);
  }
}

/** OrtValues a tensor holds: `native` (onnxruntime's memory, until JavaScript reads it) and `wrapped`
 * (a view of the JavaScript data, made when the tensor is first fed). */
interface Handles { native: Ptr; wrapped: Ptr }

const YIELD_EVERY_MS = 4;
let lastYield = 0;

function makeModule(rt: Runtime): OrtModule {
  const release = (h: Handles) => {
    if (h.native) rt.api.ReleaseValue(h.native);
    if (h.wrapped) rt.api.ReleaseValue(h.wrapped);
    h.native = h.wrapped = 0;
  };
  // Tensors nobody disposed give their OrtValues back when they are collected.
  const registry = new FinalizationRegistry<Handles>(release);

  class Tensor implements OrtTensor {
    readonly type: string;
    readonly dims: readonly number[];
    #data: Typed | undefined;
    readonly #h: Handles = { native: 0, wrapped: 0 };

    constructor(type: string, data: Typed | number[], dims: readonly number[]) {
      this.type = type;
      this.dims = dims;
      if (data === undefined) return; // fromNative
      const el = ELEMENT[type];
      if (!el) throw new Error(`onnxruntime (ffi): unsupported tensor type ${type}`);
      const typed: Typed = Array.isArray(data) ? new (el[1] as any)(data) : data;
      const count = dims.reduce((x, y) => x * y, 1);
      if (typed.length !== count) throw new Error(`tensor data has ${typed.length} elements, dims [${dims}] need ${count}`);
      this.#data = typed;
    }

    static fromNative(value: Ptr): Tensor {
      const { type, dims } = rt.describe(value);
      const t = new Tensor(type, undefined as never, dims);
      t.#h.native = value;
      registry.register(t, t.#h, t);
      return t;
    }

    get data(): any {
      if (!this.#data) {
        if (!this.#h.native) throw new Error("tensor was disposed");
        this.#data = rt.copyOut(this.#h.native, this.type, this.dims);
        // Read once: JavaScript owns the data now; feeding it again wraps the copy.
        rt.api.ReleaseValue(this.#h.native);
        this.#h.native = 0;
      }
      return this.#data;
    }

    /** The OrtValue to feed. */
    value(): Ptr {
      if (this.#h.native) return this.#h.native;
      if (!this.#h.wrapped) {
        if (!this.#data) throw new Error("tensor was disposed");
        this.#h.wrapped = rt.wrap(this.type, this.#data, this.dims);
        registry.register(this, this.#h, this);
      }
      return this.#h.wrapped;
    }

    dispose(): void {
      registry.unregister(this);
      release(this.#h);
      this.#data = undefined;
    }
  }

  class Session implements OrtSession {
    readonly inputNames: string[];
    readonly outputNames: string[];
    #handle: Ptr;
    // scratch pointer arrays for run(), grown as needed
    #names = new BigUint64Array(64);
    #values = new BigUint64Array(64);
    #outNames = new BigUint64Array(64);
    #outs = new BigUint64Array(64);

    constructor(handle: Ptr) {
      this.#handle = handle;
      const list = (count: (s: Ptr, out: Ptr) => Ptr, get: (s: Ptr, i: number, al: Ptr, out: Ptr) => Ptr) => {
        rt.check(count(handle, rt.cellPtr));
        const n = rt.out();
        const names: string[] = [];
        for (let i = 0; i < n; i++) {
          rt.check(get(handle, i, rt.allocator, rt.cellPtr));
          names.push(rt.takeString(rt.out()));
        }
        return names;
      };
      this.inputNames = list(rt.api.SessionGetInputCount, rt.api.SessionGetInputName);
      this.outputNames = list(rt.api.SessionGetOutputCount, rt.api.SessionGetOutputName);
    }

    async run(feeds: Record<string, OrtTensor>, fetches?: readonly string[] | Record<string, unknown>): Promise<Record<string, OrtTensor>> {
      // A run blocks the thread (as onnxruntime-node's does, which yields with setImmediate before
      // every run). Yield to the event loop every few ms, so progress events, SSE and other requests
      // keep flowing during hundreds of back-to-back decoder steps.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      if (!this.#handle) throw new Error("session was released");
      const wanted = fetches === undefined ? this.outputNames : Array.isArray(fetches) ? (fetches as readonly string[]) : Object.keys(fetches);
      const keys = Object.keys(feeds);
      if (this.#names.length < keys.length) { this.#names = new BigUint64Array(keys.length); this.#values = new BigUint64Array(keys.length); }
      if (this.#outNames.length < wanted.length) { this.#outNames = new BigUint64Array(wanted.length); this.#outs = new BigUint64Array(wanted.length); }
      keys.forEach((k, i) => {
        const t = feeds[k];
        if (!(t instanceof Tensor)) throw new Error(`input '${k}' is not a tensor of this onnxruntime module`);
        this.#names[i] = BigInt(rt.name(k));
        this.#values[i] = BigInt(t.value());
      });
      wanted.forEach((k, i) => { this.#outNames[i] = BigInt(rt.name(k)); this.#outs[i] = 0n; });
      rt.check(rt.api.Run(this.#handle, null, ptr(this.#names), ptr(this.#values), keys.length, ptr(this.#outNames), wanted.length, ptr(this.#outs)));
      const result: Record<string, OrtTensor> = {};
      wanted.forEach((k, i) => (result[k] = Tensor.fromNative(Number(this.#outs[i]))));
      return result;
    }

    async release(): Promise<void> {
      if (this.#handle) rt.api.ReleaseSession(this.#handle);
      this.#handle = 0;
    }
  }

  const create = async (model: string | Uint8Array, options: Record<string, any> = {}): Promise<OrtSession> => {
    const a = rt.api;
    rt.check(a.CreateSessionOptions(rt.cellPtr));
    const so = rt.out();
    try {
      if (options.intraOpNumThreads !== undefined) rt.check(a.SetIntraOpNumThreads(so, options.intraOpNumThreads));
      if (options.interOpNumThreads !== undefined) rt.check(a.SetInterOpNumThreads(so, options.interOpNumThreads));
      const levels: Record<string, number> = { disabled: 0, basic: 1, extended: 2, all: 99 };
      if (options.graphOptimizationLevel !== undefined) rt.check(a.SetSessionGraphOptimizationLevel(so, levels[options.graphOptimizationLevel] ?? 99));
      if (options.executionMode !== undefined) rt.check(a.SetSessionExecutionMode(so, options.executionMode === "parallel" ? 1 : 0));
      if (options.logSeverityLevel !== undefined) rt.check(a.SetSessionLogSeverityLevel(so, options.logSeverityLevel));
      for (const ep of options.executionProviders ?? []) {
        if ((typeof ep === "string" ? ep : ep.name) !== "cpu") throw new Error(`onnxruntime (ffi): only the cpu execution provider (got ${JSON.stringify(ep)})`);
      }
      // onnxruntime-node's `extra` option: nested keys, flattened to config entries ("session.intra_op.allow_spinning")
      const flat = (o: Record<string, unknown>, prefix: string): void => {
        for (const [k, v] of Object.entries(o)) {
          if (v && typeof v === "object") flat(v as Record<string, unknown>, `${prefix}${k}.`);
          else rt.check(a.AddSessionConfigEntry(so, rt.name(`${prefix}${k}`), rt.name(String(v))));
        }
      };
      if (options.extra) flat(options.extra, "");
      if (typeof model === "string") rt.check(a.CreateSession(rt.env, rt.name(model), so, rt.cellPtr));
      else rt.check(a.CreateSessionFromArray(rt.env, ptr(model), model.byteLength, so, rt.cellPtr));
      return new Session(rt.out());
    } finally {
      a.ReleaseSessionOptions(so);
    }
  };

  return { InferenceSession: { create }, Tensor: Tensor as unknown as OrtModule["Tensor"] };
}

let loaded: OrtModule | null | undefined;

/** onnxruntime through bun:ffi, or undefined where that cannot work (no library, or it refuses). */
export function loadOrtFfi(): OrtModule | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null; // (importing this file already needs Bun: bun:ffi)
  const lib = findLibrary();
  if (!lib) return undefined;
  try {
    loaded = makeModule(new Runtime(lib));
  } catch {
    loaded = null;
  }
  return loaded ?? undefined;
}
