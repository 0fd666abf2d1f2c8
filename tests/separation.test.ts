// Demucs separation core: DSP exactness, overlap-add, progress, cancellation, input formats — against
// generated tiny models — plus one short real-model excerpt for separation quality.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { CancelledError, type WorkContext } from "../src/core/work";
import { decodeWav } from "../src/audio/wav";
import type { PcmAudio } from "../src/audio/pcm";
import {
  framesFor,
  loadDemucs,
  separate,
  stereoISpecAdd,
  stereoSpec,
  STEMS,
  transitionWeights,
  DEFAULT_TRANSITION_POWER,
  type DemucsModel,
  type StemName,
} from "../src/separation";
import { findJemalloc } from "../src/separation/jemalloc";
import { defaultModelPath, f32bytes, FrameReader, frameHeader, loadDemucsIsolated, loadDemucsNode, MSG_ERROR, MSG_INFER } from "../src/separation/node";
import { fuseAttention } from "../src/separation/attention";
import { rewriteConvTransposeIn } from "../src/separation/conv-transpose";
import { ModelProto } from "../src/separation/onnx-proto";
import { DEMUCS_PARTS_DIR_NAME, readDemucsParts } from "../src/separation/parts-cache";
import { TINY_SPEC_SCALE, TINY_WAVE_SCALE, tinyDemucsModel } from "./fixtures-gen/tiny-demucs";

const RATE = 44100;
const GAIN: Record<StemName, number> = Object.fromEntries(
  STEMS.map((s, i) => [s, TINY_SPEC_SCALE[i]! + TINY_WAVE_SCALE[i]!]),
) as Record<StemName, number>;

function tone(n: number, rate: number, parts: [number, number, number][]): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const [amp, hz, ph] of parts) v += amp * Math.sin((2 * Math.PI * hz * i) / rate + ph);
    x[i] = v;
  }
  return x;
}

function snrDb(ref: Float32Array, est: Float32Array, from = 0, to = ref.length): number {
  let num = 0;
  let den = 0;
  for (let i = from; i < to; i++) {
    num += ref[i]! * ref[i]!;
    den += (ref[i]! - est[i]!) ** 2;
  }
  return 10 * Math.log10(num / Math.max(den, 1e-30));
}

function ctxWith(signal = new AbortController().signal, onProgress?: (f: number, m?: string) => void): WorkContext {
  return { signal, progress: (f, m) => onProgress?.(f, m) };
}

function scaled(x: Float32Array, k: number): Float32Array {
  return x.map((v) => v * k);
}

describe("HTDemucs spectrogram", () => {
  test("STFT -> iSTFT round trip is exact away from the two ends", () => {
    for (const L of [343980, 100_003]) {
      const x0 = tone(L, RATE, [[0.4, 220, 0], [0.2, 3520.5, 1], [0.1, 15000, 2]]);
      const x1 = tone(L, RATE, [[0.3, 97, 0.5], [0.2, 8000, 0]]);
      const spec = stereoSpec(x0, x1);
      expect(spec.length).toBe(4 * 2048 * framesFor(L));
      const y0 = new Float32Array(L);
      const y1 = new Float32Array(L);
      stereoISpecAdd(spec, 0, framesFor(L), y0, y1);
      // HTDemucs' _ispec sees two empty frames past each end, so the first/last ~2.5k samples are
      // attenuated by design; everywhere else reconstruction is float-exact.
      expect(snrDb(x0, y0, 3072, L - 3072)).toBeGreaterThan(100);
      expect(snrDb(x1, y1, 3072, L - 3072)).toBeGreaterThan(100);
    }
  });

  test("complex-as-channels layout: [re ch0, im ch0, re ch1, im ch1], bins of 44100/4096 Hz", () => {
    const L = 343980;
    const T = framesFor(L);
    const x0 = tone(L, RATE, [[1, (100 * RATE) / 4096, Math.PI / 2]]); // cosine at bin 100
    const x1 = tone(L, RATE, [[1, (300 * RATE) / 4096, Math.PI / 2]]); // cosine at bin 300
    const spec = stereoSpec(x0, x1);
    const plane = 2048 * T;
    const k = 100; // a middle frame
    const at = (p: number, f: number) => spec[p * plane + f * T + k]!;
    const peak = (p: number) => {
      let best = 0;
      for (let f = 1; f < 2048; f++) if (Math.abs(at(p, f)) > Math.abs(at(p, best))) best = f;
      return best;
    };
    expect(peak(0)).toBe(100);
    expect(peak(2)).toBe(300);
    // windowed cosine, normalized stft: |X| = sum(w)/2/sqrt(N) = N/4/sqrt(N) = 16 at the bin
    expect(Math.hypot(at(0, 100), at(1, 100))).toBeCloseTo(16, 1);
    expect(Math.hypot(at(2, 300), at(3, 300))).toBeCloseTo(16, 1);
    expect(Math.abs(at(2, 100))).toBeLessThan(1e-3);
  });

  test("transition weights are demucs' triangle, to transition_power", () => {
    const f32 = (a: number[]) => Float32Array.from(a);
    expect(transitionWeights(10)).toEqual(f32([1, 2, 3, 4, 5, 5, 4, 3, 2, 1].map((v) => v / 5)));
    expect(transitionWeights(7)).toEqual(f32([1, 2, 3, 4, 3, 2, 1].map((v) => v / 4))); // 7 // 2 = 3, then 4..1
    expect(transitionWeights(7, 0.5)).toEqual(f32([1, 2, 3, 4, 3, 2, 1].map((v) => Math.sqrt(v / 4))));
    expect(transitionWeights(4, 0)).toEqual(f32([1, 1, 1, 1]));
  });

  test("the overlap-add cross-fades with the transition weights to the chosen power (default 0.25)", async () => {
    // A stand-in whose every source is the number of the call: where two segments overlap, the
    // output is their weighted mean, which tells the weights apart.
    const SEG = 1000;
    let calls = 0;
    const counting: DemucsModel = {
      sampleRate: RATE, audioChannels: 2, segmentLength: SEG, frames: 1, sources: STEMS,
      infer: () => { throw new Error("unused"); },
      inferSources: async () => new Float32Array(4 * 2 * SEG).fill(++calls),
      dispose: async () => {},
    };
    const x = new Float32Array(1750).fill(0.5);
    const at = 850; // segments start at 0 and 750: in both, 150 samples into the second
    for (const [opts, power] of [[{}, DEFAULT_TRANSITION_POWER], [{ transitionPower: 1 }, 1], [{ transitionPower: 0 }, 0]] as const) {
      calls = 0;
      const out = await separate(counting, { sampleRate: RATE, channels: [x, x] }, { ...opts, normalize: false }, ctxWith());
      const w = transitionWeights(SEG, power);
      const expected = (w[at]! * 1 + w[at - 750]! * 2) / (w[at]! + w[at - 750]!);
      expect(out.drums.channels[0]![at]!).toBeCloseTo(expected, 5);
      expect(out.vocals.channels[1]![100]!).toBe(1); // only the first segment there
    }
    expect(DEFAULT_TRANSITION_POWER).toBe(0.25);
    // 0.25 sits between demucs' linear cross-fade and a plain mean
    const lin = transitionWeights(SEG, 1), quarter = transitionWeights(SEG, 0.25);
    const mean = (w: Float32Array) => (w[at]! + 2 * w[at - 750]!) / (w[at]! + w[at - 750]!);
    expect(mean(quarter)).toBeGreaterThan(mean(lin));
    expect(mean(quarter)).toBeLessThan(1.5);
    await expect(separate(counting, { sampleRate: RATE, channels: [x, x] }, { transitionPower: -1 }, ctxWith())).rejects.toThrow("transitionPower must be in [0, 10]");
  });
});

describe("separate() with a generated tiny model", () => {
  let dir: string;
  let model: DemucsModel;
  const L = Math.round(RATE * 20.3);
  const x0 = tone(L, RATE, [[0.3, 110, 0], [0.2, 1234, 1], [0.05, 9000, 0.3]]);
  const x1 = tone(L, RATE, [[0.25, 440, 0.2], [0.1, 5000, 2]]);
  const mix: PcmAudio = { sampleRate: RATE, channels: [x0, x1] };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sep-test-"));
    writeFileSync(join(dir, "tiny.onnx"), tinyDemucsModel());
    writeFileSync(join(dir, "slow.onnx"), tinyDemucsModel({ slowMatMuls: 16 }));
    model = await loadDemucs({ ort: ort as any, model: tinyDemucsModel() });
  });
  afterAll(async () => {
    await model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  function expectScaledCopies(stems: Record<StemName, PcmAudio>, src: Float32Array[], minDb: number) {
    for (const s of STEMS) {
      expect(stems[s].sampleRate).toBe(RATE);
      expect(stems[s].channels.length).toBe(src.length);
      for (let c = 0; c < src.length; c++) {
        const ref = scaled(src[c]!, GAIN[s]);
        expect(stems[s].channels[c]!.length).toBe(ref.length);
        // skip the track's first/last 3072 samples (HTDemucs' iSTFT edge, see above)
        expect(snrDb(ref, stems[s].channels[c]!, 3072, ref.length - 3072)).toBeGreaterThan(minDb);
      }
    }
  }

  test("overlap-add of an identity-like model reconstructs the input (several overlaps/segments)", async () => {
    for (const opts of [{}, { overlap: 0.5 }, { overlap: 0, segment: 3.3 }]) {
      const stems = await separate(model, mix, opts, ctxWith());
      expectScaledCopies(stems, [x0, x1], 45);
    }
  }, 60_000);

  test("random shifts average to the same result (shift-invariant model)", async () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const n = Math.round(RATE * 9);
    const stems = await separate(model, { sampleRate: RATE, channels: [x0.slice(0, n), x1.slice(0, n)] }, { shifts: 2, random }, ctxWith());
    expectScaledCopies(stems, [x0.slice(0, n), x1.slice(0, n)], 45);
  }, 60_000);

  test("progress is monotonic, one report per segment, ends at 1", async () => {
    const seen: [number, string | undefined][] = [];
    await separate(model, mix, { overlap: 0.25 }, ctxWith(undefined, (f, m) => seen.push([f, m])));
    const total = Math.ceil(L / Math.floor(0.75 * 343980));
    expect(seen.length).toBe(total + 1);
    seen.forEach(([f, m], i) => {
      expect(f).toBeCloseTo(i / total, 10);
      expect(m).toBe(`segment ${i}/${total}`);
    });
  }, 60_000);

  test("within a segment, a split model reports progress after each graph part (equal shares, then measured ones)", async () => {
    // 4 slow MatMuls named as modules, split 3 nodes a part: 4 parts, so 3 reports inside each run.
    const split = await loadDemucs({ ort: ort as any, model: tinyDemucsModel({ slowMatMuls: 4 }), partNodes: 3 });
    try {
      const n = Math.round(RATE * 8);
      const total = Math.ceil(n / Math.floor(0.75 * 343980));
      expect(total).toBe(2);
      const seen: [number, string][] = [];
      const stems = await separate(split, { sampleRate: RATE, channels: [x0.slice(0, n), x1.slice(0, n)] }, {}, ctxWith(undefined, (f, m) => seen.push([f, m!])));
      expectScaledCopies(stems, [x0.slice(0, n), x1.slice(0, n)], 45);
      for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).toBeGreaterThanOrEqual(seen[i - 1]![0]);
      const within = seen.filter(([, m]) => /^segment \d+\/2: \d+%$/.test(m));
      expect(within.length).toBe(2 * 3);
      // the first run has no timings yet: equal shares
      expect(within.slice(0, 3).map(([f]) => f)).toEqual([0.125, 0.25, 0.375]);
      for (const [f, m] of within) {
        const k = Number(/^segment (\d+)\//.exec(m)![1]);
        expect(f).toBeGreaterThan((k - 1) / total);
        expect(f).toBeLessThan(k / total);
      }
      expect(seen.filter(([, m]) => /^segment \d+\/2$/.test(m))).toEqual([[0, "segment 0/2"], [0.5, "segment 1/2"], [1, "segment 2/2"]]);
    } finally {
      await split.dispose();
    }
  }, 60_000);

  test("a StemSink receives consecutive chunks equal to the returned stems", async () => {
    const whole = await separate(model, mix, {}, ctxWith());
    const got: Record<string, Float32Array[][]> = {};
    let next = 0;
    let info: any;
    const empty = await separate(model, mix, {}, ctxWith(), {
      begin(i) {
        info = i;
      },
      write(start, stems) {
        expect(start).toBe(next);
        next += stems.drums[0]!.length;
        for (const s of STEMS) (got[s] ??= []).push(stems[s]);
      },
    });
    expect(info).toEqual({ sampleRate: RATE, channels: 2, length: L });
    expect(next).toBe(L);
    expect(empty.vocals.channels[0]!.length).toBe(0);
    for (const s of STEMS)
      for (let c = 0; c < 2; c++) {
        const joined = new Float32Array(L);
        let at = 0;
        for (const chunk of got[s]!) {
          joined.set(chunk[c]!, at);
          at += chunk[c]!.length;
        }
        expect(Array.from(joined)).toEqual(Array.from(whole[s].channels[c]!));
      }
  }, 60_000);

  test("the stems sum to the mix, DC offset included (the mix's mean is given back once, not once per source)", async () => {
    // the tiny model's four gains sum to 1, so a consistent de-normalisation gives back the mix
    const n = Math.round(RATE * 12);
    const a = tone(n, RATE, [[0.3, 220, 0]]).map((v) => v + 0.3);
    const b = tone(n, RATE, [[0.2, 330, 1]]).map((v) => v + 0.3);
    const stems = await separate(model, { sampleRate: RATE, channels: [a, b] }, {}, ctxWith());
    for (const [c, x] of [a, b].entries()) {
      const sum = new Float32Array(n);
      for (const st of STEMS) stems[st].channels[c]!.forEach((v, i) => (sum[i]! += v));
      expect(snrDb(x, sum, 5000, n - 5000)).toBeGreaterThan(60);
    }
  }, 60_000);

  test("mono input gives mono stems", async () => {
    const stems = await separate(model, { sampleRate: RATE, channels: [x0] }, {}, ctxWith());
    expectScaledCopies(stems, [x0], 45);
  }, 60_000);

  test("48 kHz input is resampled; stems come out at 44.1 kHz", async () => {
    const n48 = 48000 * 10;
    const y = tone(n48, 48000, [[0.3, 110, 0], [0.2, 1234, 1]]);
    const stems = await separate(model, { sampleRate: 48000, channels: [y, y] }, {}, ctxWith());
    const n = Math.round((n48 * RATE) / 48000);
    const ref = tone(n, RATE, [[0.3, 110, 0], [0.2, 1234, 1]]);
    expect(stems.bass.sampleRate).toBe(RATE);
    expect(stems.bass.channels[0]!.length).toBe(n);
    // the resampler's filter delay is small; compare loosely
    expect(snrDb(scaled(ref, GAIN.bass), stems.bass.channels[0]!, 4096, n - 4096)).toBeGreaterThan(20);
  }, 60_000);

  test("empty input gives empty stems", async () => {
    const stems = await separate(model, { sampleRate: RATE, channels: [new Float32Array(0)] }, {}, ctxWith());
    expect(stems.other.channels[0]!.length).toBe(0);
  });

  test("cancel between segments (in-process): rejects, no more segments", async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    let abortedAt = 0;
    const p = separate(model, mix, {}, ctxWith(ac.signal, (f) => {
      seen.push(f);
      if (seen.length === 3) {
        abortedAt = performance.now();
        ac.abort();
      }
    }));
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    expect(seen.length).toBe(3);
  }, 60_000);

  test("an isolated child (STFT/iSTFT in the child, only audio over the pipe, split graph read from a models dir) gives the in-process stems", async () => {
    const modelsDir = join(dir, "models");
    const src = join(dir, "tiny.onnx");
    expect(readDemucsParts(modelsDir, src)).toBeNull();
    const iso = await loadDemucsIsolated({ modelPath: src, modelsDir, sessionOptions: { intraOpNumThreads: 1 } });
    try {
      // the parts were written by a separate process before the child started, and are current
      const parts = readDemucsParts(modelsDir, src)!;
      expect(parts.parts.length).toBeGreaterThan(0);
      expect(existsSync(join(modelsDir, DEMUCS_PARTS_DIR_NAME, "part0.onnx"))).toBe(true);
      expect(typeof iso.inferSources).toBe("function");
      const n = Math.round(RATE * 12);
      const part: PcmAudio = { sampleRate: RATE, channels: [x0.slice(0, n), x1.slice(0, n)] };
      const [a, b] = [await separate(model, part, {}, ctxWith()), await separate(iso, part, {}, ctxWith())];
      for (const s of STEMS) for (let c = 0; c < 2; c++) expect(b[s].channels[c]).toEqual(a[s].channels[c]!);
      expectScaledCopies(b, [x0.slice(0, n), x1.slice(0, n)], 45);
      // inferSources writes into the buffer it is given
      const into = new Float32Array(4 * 2 * 343980);
      expect(await iso.inferSources!(new Float32Array(2 * 343980).fill(0.25), undefined, into)).toBe(into);
      expect(into.some((v) => v !== 0)).toBe(true);
    } finally {
      await iso.dispose();
    }
    // a changed source file makes the written parts stale
    const later = new Date(Date.now() + 5000);
    utimesSync(src, later, later);
    expect(readDemucsParts(modelsDir, src)).toBeNull();
  }, 60_000);

  test("an isolated child whose models dir cannot be written splits the graph in memory instead", async () => {
    const notADir = join(dir, "tiny.onnx"); // a file: mkdir under it fails
    const iso = await loadDemucsIsolated({ modelPath: join(dir, "tiny.onnx"), modelsDir: notADir, sessionOptions: { intraOpNumThreads: 1 } });
    try {
      const out = await iso.inferSources!(new Float32Array(2 * 343980).fill(0.25));
      expect(out.length).toBe(4 * 2 * 343980);
      expect(out.some((v) => v !== 0)).toBe(true);
    } finally {
      await iso.dispose();
    }
  }, 60_000);

  test("the isolated child runs on jemalloc when the system has it (npm test installs it), else on glibc", async () => {
    const maps = (pid: number) => readFileSync(`/proc/${pid}/maps`, "utf8");
    const je = findJemalloc();
    const a = await loadDemucsIsolated({ modelPath: join(dir, "tiny.onnx"), sessionOptions: { intraOpNumThreads: 1 } });
    const b = await loadDemucsIsolated({ modelPath: join(dir, "tiny.onnx"), sessionOptions: { intraOpNumThreads: 1 }, jemalloc: false });
    try {
      expect(a.allocator).toBe(je ?? "glibc");
      expect(b.allocator).toBe("glibc");
      if (process.platform === "linux") {
        if (je) expect(maps(a.pid!)).toContain("libjemalloc");
        expect(maps(b.pid!)).not.toContain("libjemalloc");
      }
      // same output either way
      const x = new Float32Array(2 * 343980).fill(0.25);
      expect(await a.inferSources!(x)).toEqual(await b.inferSources!(x));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  }, 60_000);

  test("cancel during a model run (isolated child): the child is killed within a second", async () => {
    const iso = await loadDemucsIsolated({ modelPath: join(dir, "slow.onnx"), sessionOptions: { intraOpNumThreads: 1 } });
    try {
      // how long one slow run takes here
      const t = performance.now();
      await iso.infer(new Float32Array(2 * 343980), new Float32Array(4 * 2048 * 336));
      const runMs = performance.now() - t;
      const pid = iso.pid!;
      const ac = new AbortController();
      const p = separate(iso, mix, {}, ctxWith(ac.signal));
      await Bun.sleep(Math.min(runMs / 2, 1500)); // in the middle of the first segment's run
      const t0 = performance.now();
      ac.abort();
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      const stopMs = performance.now() - t0;
      await Bun.sleep(100);
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      expect(alive).toBe(false);
      expect(stopMs).toBeLessThan(1000);
      expect(runMs).toBeGreaterThan(stopMs);
      // and the model still works afterwards (a fresh child)
      const out = await iso.infer(new Float32Array(2 * 343980), new Float32Array(4 * 2048 * 336));
      expect(out.wave.length).toBe(4 * 2 * 343980);
      expect(iso.pid).not.toBe(pid);
    } finally {
      await iso.dispose();
    }
  }, 60_000);
});

// One short real-model excerpt (two segments) for separation quality. Skipped if the fixture or the
// model is missing.
const SONG = "/work/shared/fixtures/song/";
const haveReal = existsSync(SONG + "mixture.wav") && (() => {
  try {
    return existsSync(defaultModelPath());
  } catch {
    return false;
  }
})();

describe("isolated model wire format", () => {
  test("FrameReader reassembles frames from any chunking", () => {
    const w = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5);
    const x = Float32Array.from({ length: 7 }, (_, i) => -i);
    const msg = new TextEncoder().encode("boom");
    const bytes = Buffer.concat([frameHeader(MSG_INFER, 3, w.length, x.length), f32bytes(w), f32bytes(x), frameHeader(MSG_ERROR, 4, msg.length, 0), msg, frameHeader(MSG_INFER, 5, 0, 0)]);
    for (const size of [1, 3, 16, 17, 999, bytes.length]) {
      const got: [number, number, Uint8Array, Uint8Array][] = [];
      const r = new FrameReader((type, id, a, b) => got.push([type, id, a, b]));
      for (let at = 0; at < bytes.length; at += size) r.push(bytes.subarray(at, at + size));
      expect(got.map(([t, id]) => [t, id])).toEqual([[MSG_INFER, 3], [MSG_ERROR, 4], [MSG_INFER, 5]]);
      expect(Array.from(new Float32Array(got[0]![2].buffer))).toEqual(Array.from(w));
      expect(Array.from(new Float32Array(got[0]![3].buffer))).toEqual(Array.from(x));
      expect(new TextDecoder().decode(got[1]![2])).toBe("boom");
      expect(got[2]![2].length + got[2]![3].length).toBe(0);
    }
  });
});

// Generated test graphs: a float value info, and a graph encoded as an opset-17 model.
const f = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const encodeGraph = (graph: object): Uint8Array =>
  ModelProto.encode(ModelProto.fromObject({ irVersion: 8, opsetImport: [{ domain: "", version: 17 }], graph })).finish();

describe("fuseAttention", () => {
  // htdemucs' exported attention: heads already split as [1, 8, S, 64], q and kᵀ each scaled by
  // d^-1/4, then MatMul → Softmax → MatMul. The rewrite must give the same output.
  function attentionGraph(S: number, L: number): Uint8Array {
    const c = (name: string, v: number) => ({ name, dims: [], dataType: 1, floatData: [v] });
    const s4 = Math.pow(64, -0.25);
    return encodeGraph({
      name: "attn",
      node: [
        { name: "qs", opType: "Mul", input: ["q", "s"], output: ["q_s"] },
        { name: "kt", opType: "Transpose", input: ["k"], output: ["k_t"], attribute: [{ name: "perm", type: 7, ints: [0, 1, 3, 2] }] },
        { name: "ks", opType: "Mul", input: ["k_t", "s"], output: ["k_s"] },
        { name: "mm1", opType: "MatMul", input: ["q_s", "k_s"], output: ["scores"] },
        { name: "sm", opType: "Softmax", input: ["scores"], output: ["probs"], attribute: [{ name: "axis", type: 2, i: -1 }] },
        { name: "mm2", opType: "MatMul", input: ["probs", "v"], output: ["ctx"] },
        { name: "out", opType: "Add", input: ["ctx", "one"], output: ["y"] },
      ],
      initializer: [c("s", s4), c("one", 1)],
      input: [f("q", [1, 8, S, 64]), f("k", [1, 8, L, 64]), f("v", [1, 8, L, 64])],
      output: [f("y", [1, 8, S, 64])],
    });
  }

  test("rewrites the pattern into MultiHeadAttention with the same output", async () => {
    const S = 96;
    const L = 40;
    const bytes = attentionGraph(S, L);
    const fused = fuseAttention(bytes);
    expect(fused.fused).toBe(1);
    const m: any = ModelProto.decode(fused.bytes);
    expect(m.graph.node.map((n: any) => n.opType)).toContain("MultiHeadAttention");
    expect(m.graph.node.map((n: any) => n.opType)).not.toContain("Softmax");
    let seed = 7;
    const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 4);
    const feeds = {
      q: new ort.Tensor("float32", rnd(8 * S * 64), [1, 8, S, 64]),
      k: new ort.Tensor("float32", rnd(8 * L * 64), [1, 8, L, 64]),
      v: new ort.Tensor("float32", rnd(8 * L * 64), [1, 8, L, 64]),
    };
    const run = async (b: Uint8Array) => {
      const s = await ort.InferenceSession.create(b);
      try {
        return (await s.run(feeds)).y!.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    const [a, b] = [await run(bytes), await run(fused.bytes)];
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    expect(maxDiff).toBeLessThan(1e-4);
    // a wrong head layout or scale would be far off
    expect(Math.abs(a[123]! - 1)).toBeGreaterThan(1e-3);
  });

  test("leaves a graph without the pattern alone", () => {
    const tiny = tinyDemucsModel();
    const r = fuseAttention(tiny);
    expect(r.fused).toBe(0);
    expect(r.bytes).toBe(tiny);
  });
});

describe("rewriteConvTranspose", () => {
  // htdemucs' decoder upsampling: ConvTranspose kernel 8 / stride 4 along frequency ([8, 1] on
  // [B, C, F, T]) and along time (1D), no padding, with bias.
  function convTrGraph(): Uint8Array {
    let seed = 11;
    const rnd = (n: number) => Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 2);
    const w = (name: string, dims: number[]) => ({ name, dims, dataType: 1, floatData: rnd(dims.reduce((a, b) => a * b, 1)) });
    const attrs = (k: number[], s: number[]) => [
      { name: "kernel_shape", type: 7, ints: k },
      { name: "strides", type: 7, ints: s },
      { name: "pads", type: 7, ints: [...k.map(() => 0), ...k.map(() => 0)] },
    ];
    return encodeGraph({
      name: "convtr",
      node: [
        { name: "/decoder.0/conv_tr/ConvTranspose", opType: "ConvTranspose", input: ["x2", "w2", "b2"], output: ["y2"], attribute: attrs([8, 1], [4, 1]) },
        { name: "/tdecoder.0/conv_tr/ConvTranspose", opType: "ConvTranspose", input: ["x1", "w1", "b1"], output: ["y1"], attribute: attrs([8], [4]) },
      ],
      initializer: [w("w2", [6, 5, 8, 1]), w("b2", [5]), w("w1", [6, 3, 8]), w("b1", [3])],
      input: [f("x2", [1, 6, 7, 9]), f("x1", [1, 6, 11])],
      output: [f("y2", [1, 5, 32, 9]), f("y1", [1, 3, 48])],
    });
  }

  test("a 2-tap Conv + interleave gives ConvTranspose's output, 2D and 1D", async () => {
    const bytes = convTrGraph();
    const m: any = ModelProto.decode(bytes);
    expect(rewriteConvTransposeIn(m)).toBe(2);
    expect(m.graph.node.map((n: any) => n.opType)).not.toContain("ConvTranspose");
    expect(m.graph.initializer.map((t: any) => t.name)).not.toContain("w2"); // replaced weights dropped
    const rewritten = ModelProto.encode(ModelProto.fromObject(m)).finish();
    let seed = 5;
    const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 2);
    const feeds = { x2: new ort.Tensor("float32", rnd(6 * 7 * 9), [1, 6, 7, 9]), x1: new ort.Tensor("float32", rnd(6 * 11), [1, 6, 11]) };
    const run = async (b: Uint8Array) => {
      const s = await ort.InferenceSession.create(b);
      try {
        const out = await s.run(feeds);
        return { y2: out.y2!, y1: out.y1! };
      } finally {
        await s.release();
      }
    };
    const [a, b] = [await run(bytes), await run(rewritten)];
    for (const k of ["y2", "y1"] as const) {
      expect(b[k].dims).toEqual(a[k].dims);
      const x = a[k].data as Float32Array;
      const y = b[k].data as Float32Array;
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < x.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(x[i]!));
      }
      expect(maxAbs).toBeGreaterThan(1); // not a trivially zero output
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });

  test("leaves other ConvTranspose shapes and graphs without one alone", () => {
    const m: any = ModelProto.decode(convTrGraph());
    m.graph.node[0].attribute[1].ints = [2, 1]; // stride 2 with kernel 8: not the K = 2·stride form
    expect(rewriteConvTransposeIn(m)).toBe(1);
    expect(m.graph.node.filter((n: any) => n.opType === "ConvTranspose").length).toBe(1);
    expect(rewriteConvTransposeIn(ModelProto.decode(tinyDemucsModel()))).toBe(0);
  });
});

describe.skipIf(!haveReal)("real htdemucs.onnx", () => {
  test("the split graph read from the models dir runs exactly like the graph split in memory", async () => {
    const seg = 343980;
    const mix = decodeWav(readFileSync(SONG + "mixture.wav"));
    const wave = new Float32Array(2 * seg);
    wave.set(mix.channels[0]!.subarray(RATE, RATE + seg));
    wave.set(mix.channels[1]!.subarray(RATE, RATE + seg), seg);
    const spec = stereoSpec(wave.subarray(0, seg), wave.subarray(seg));
    const outs = [];
    for (const opts of [{ modelsDir: "models" }, {}]) {
      const model = await loadDemucsNode(opts);
      try {
        outs.push(await model.infer(wave, spec));
      } finally {
        await model.dispose();
      }
    }
    expect(readDemucsParts("models", defaultModelPath())).not.toBeNull();
    expect(outs[0]!.wave).toEqual(outs[1]!.wave);
    expect(outs[0]!.spec).toEqual(outs[1]!.spec);
  }, 120_000);

  test("10 s excerpt separates with sensible SDR on every stem", async () => {
    const from = 6 * RATE;
    const n = 10 * RATE;
    const cut = (a: PcmAudio): PcmAudio => ({ sampleRate: a.sampleRate, channels: a.channels.map((c) => c.slice(from, from + n)) });
    const mix = cut(decodeWav(readFileSync(SONG + "mixture.wav")));
    const model = await loadDemucsNode();
    try {
      const stems = await separate(model, mix, {}, ctxWith());
      for (const s of STEMS) {
        const ref = cut(decodeWav(readFileSync(`${SONG}${s}.wav`)));
        let num = 0;
        let den = 0;
        for (let c = 0; c < 2; c++)
          for (let i = 0; i < n; i++) {
            num += ref.channels[c]![i]! ** 2;
            den += (ref.channels[c]![i]! - stems[s].channels[c]![i]!) ** 2;
          }
        const sdr = 10 * Math.log10(num / den);
        console.log(`real excerpt SDR ${s}: ${sdr.toFixed(2)} dB`);
        // measured here: drums 17.75, bass 17.03, other 11.08, vocals 13.87
        expect(sdr).toBeGreaterThan({ drums: 15, bass: 15, other: 9, vocals: 11.5 }[s]);
      }
      // in-process cancel in the middle of a segment: seen between graph parts, well within ~1 s
      const ac = new AbortController();
      const p = separate(model, mix, {}, ctxWith(ac.signal));
      await Bun.sleep(1500);
      const t0 = performance.now();
      ac.abort();
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      const stopMs = performance.now() - t0;
      console.log(`real model in-process cancel took ${stopMs.toFixed(0)} ms`);
      expect(stopMs).toBeLessThan(2500); // one graph part at most; ~1.5 s worst case seen on 2 busy cores
    } finally {
      await model.dispose();
    }
  }, 120_000);
});
