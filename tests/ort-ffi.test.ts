// onnxruntime's C API through bun:ffi (src/whisper/ort-ffi.ts): tensors, chaining outputs back in
// without reading them, errors, and exact parity with onnxruntime-node on real transcriptions.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeAudio } from "../src/audio/decode";
import { quietContext } from "../src/core/work";
import { loadWhisperModel, type OrtModule, type WhisperModel } from "../src/whisper/model";
import { ensureWhisperModel, loadDefaultWhisperModel } from "../src/whisper/node";
import * as W from "../src/whisper/onnx-wire";
import { loadOrtFfi } from "../src/whisper/ort-ffi";
import { transcribe } from "../src/whisper/transcribe";

const MODELS = join(import.meta.dir, "../models");
const FIX = "/work/shared/fixtures";

/** y = a + a, s = Shape(a) (int64), c = Cast(a) to int32. */
function tinyModel(): Uint8Array {
  return W.modelRecord([
    W.stringField(2, "tiny"),
    W.nodeRecord("Add", ["a", "a"], ["y"], "add"),
    W.nodeRecord("Shape", ["a"], ["s"], "shape"),
    W.nodeRecord("Cast", ["a"], ["c"], "cast", [W.attrIntRecord("to", 6)]),
    W.valueInfoRecord(11, "a", 1),
    W.valueInfoRecord(12, "y", 1),
    W.valueInfoRecord(12, "s", 7),
    W.valueInfoRecord(12, "c", 6),
  ]);
}

let ffi: OrtModule;
beforeAll(() => {
  const m = loadOrtFfi();
  if (!m) throw new Error("bun:ffi onnxruntime did not load");
  ffi = m;
});

describe("onnxruntime through bun:ffi", () => {
  test("runs a model from bytes: names, types, shapes and values", async () => {
    const s = await ffi.InferenceSession.create(tinyModel(), { intraOpNumThreads: 1, graphOptimizationLevel: "all", extra: { session: { intra_op: { allow_spinning: "0" } } } });
    expect(s.inputNames).toEqual(["a"]);
    expect(s.outputNames).toEqual(["y", "s", "c"]);
    const a = new ffi.Tensor("float32", Float32Array.from([1.5, -2, 3.25, 4, 5, 6]), [2, 3]);
    const out = await s.run({ a });
    expect(out.y!.type).toBe("float32");
    expect(out.y!.dims).toEqual([2, 3]);
    expect(Array.from(out.y!.data as Float32Array)).toEqual([3, -4, 6.5, 8, 10, 12]);
    expect(out.s!.type).toBe("int64");
    expect(Array.from(out.s!.data as BigInt64Array)).toEqual([2n, 3n]);
    expect(out.c!.type).toBe("int32");
    expect(Array.from(out.c!.data as Int32Array)).toEqual([1, -2, 3, 4, 5, 6]);
    // only the fetched outputs
    expect(Object.keys(await s.run({ a }, ["s"]))).toEqual(["s"]);
    await s.release?.();
  });

  test("an output goes back in without being read, and a JavaScript input is read at run time", async () => {
    const s = await ffi.InferenceSession.create(tinyModel());
    const buf = Float32Array.from([1, 2, 3]);
    const a = new ffi.Tensor("float32", buf, [3]);
    let y = (await s.run({ a }, ["y"])).y!;
    for (let i = 0; i < 3; i++) {
      const next = (await s.run({ a: y }, ["y"])).y!;
      y.dispose?.();
      y = next;
    }
    expect(Array.from(y.data as Float32Array)).toEqual([16, 32, 48]);
    // read once, then fed again: the JavaScript copy is wrapped
    expect(Array.from((await s.run({ a: y }, ["y"])).y!.data as Float32Array)).toEqual([32, 64, 96]);
    buf[0] = 10; // the same tensor object sees its array's new contents
    expect(Array.from((await s.run({ a }, ["y"])).y!.data as Float32Array)).toEqual([20, 4, 6]);
    const gone = (await s.run({ a }, ["y"])).y!;
    gone.dispose?.();
    expect(() => gone.data).toThrow(/disposed/);
    await s.release?.();
  });

  test("bad input is a JavaScript error, and the session keeps working", async () => {
    const s = await ffi.InferenceSession.create(tinyModel());
    await expect(s.run({ a: new ffi.Tensor("int32", Int32Array.from([1, 2]), [2]) })).rejects.toThrow(/onnxruntime: .*(type|Unexpected)/i);
    await expect(s.run({ nope: new ffi.Tensor("float32", Float32Array.from([1]), [1]) })).rejects.toThrow(/onnxruntime: /);
    expect(() => new ffi.Tensor("float32", Float32Array.from([1, 2, 3]), [2, 2])).toThrow(/elements/);
    await expect(ffi.InferenceSession.create(new Uint8Array([1, 2, 3]))).rejects.toThrow(/onnxruntime: /);
    await expect(ffi.InferenceSession.create("/nonexistent/model.onnx")).rejects.toThrow(/onnxruntime: /);
    const out = await s.run({ a: new ffi.Tensor("float32", Float32Array.from([2]), [1]) });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([4]);
  });
});

describe("Whisper on bun:ffi vs onnxruntime-node", () => {
  let viaNode: WhisperModel;
  let viaFfi: WhisperModel;
  beforeAll(async () => {
    viaFfi = await loadDefaultWhisperModel(MODELS);
    const dir = ensureWhisperModel(MODELS);
    const ort = (await import("onnxruntime-node")) as unknown as OrtModule;
    const json = (f: string) => JSON.parse(readFileSync(join(dir, f), "utf8"));
    viaNode = await loadWhisperModel({
      ort, mel: join(dir, "mel.onnx"), encoder: "", decoder: "", combined: join(dir, "combined.onnx"),
      tokenizer: json("tokenizer.json"), config: json("config.json"),
    });
  }, 120_000);

  test("the server's default model runs on bun:ffi", () => {
    expect(viaFfi.ort).toBe(loadOrtFfi()!);
  });

  test("transcripts, log-probabilities and word times are identical", async () => {
    const a = await decodeAudio(new Uint8Array(readFileSync(join(FIX, "speech/long-harvard.wav"))));
    // 65 s: three windows with prompts, timestamp seeking, and a fallback-prone start
    const clip = { sampleRate: a.sampleRate, channels: [a.channels[0]!.subarray(0, a.sampleRate * 65)] };
    for (const opts of [{}, { wordTimestamps: true }, { beamSize: 3 }]) {
      const [f, n] = [await transcribe(viaFfi, clip, opts, quietContext()), await transcribe(viaNode, clip, opts, quietContext())];
      expect(f.segments.length).toBeGreaterThan(3);
      expect(JSON.stringify(f)).toBe(JSON.stringify(n));
    }
    await viaNode.release();
  }, 180_000);
});
