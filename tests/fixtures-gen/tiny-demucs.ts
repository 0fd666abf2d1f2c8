// Writes tiny ONNX stand-ins for htdemucs.onnx: same input/output names and shapes, trivial compute,
// so separation plumbing (STFT/iSTFT, overlap-add, normalisation, progress, cancel) is testable in
// milliseconds without the 174 MB model.
//
//   output ("output", spectrogram branch) [1,4,4,2048,F] = specScale[s] * input spectrogram
//   "5073" (waveform branch)               [1,4,2,T]      = waveScale[s] * input waveform
//
// So source s of a separation is (specScale[s] + waveScale[s]) * mix, up to HTDemucs' iSTFT edge
// effects and its dropped Nyquist bin. `slowMatMuls` adds that many [2048x336]x[336x2048] MatMuls per
// head (4 heads) whose result is multiplied by zero, to make a run take seconds (cancellation tests);
// each is named as a module of its own ("/slow.k/MatMul"), so the splitter can cut the graph there.
//
// Usage: bun tests/fixtures-gen/tiny-demucs.ts out.onnx [slowMatMuls]
import { writeFileSync } from "node:fs";
import { AttrType, ModelProto, TensorType } from "./onnx-schema";

export interface TinyDemucsOptions {
  specScale?: number[];
  waveScale?: number[];
  slowMatMuls?: number;
  segmentLength?: number;
  frames?: number;
}

export const TINY_SPEC_SCALE = [0.05, 0.1, 0.15, 0.2];
export const TINY_WAVE_SCALE = [0.05, 0.1, 0.15, 0.2];

function floatTensor(name: string, dims: number[], values: number[]) {
  return { name, dims, dataType: TensorType.FLOAT, floatData: values };
}
function valueInfo(name: string, dims: number[]) {
  return {
    name,
    type: { tensorType: { elemType: TensorType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  };
}

export function tinyDemucsModel(opts: TinyDemucsOptions = {}): Uint8Array {
  const T = opts.segmentLength ?? 343980;
  const F = opts.frames ?? Math.ceil(T / 1024);
  const a = opts.specScale ?? TINY_SPEC_SCALE;
  const b = opts.waveScale ?? TINY_WAVE_SCALE;
  const nodes: any[] = [];
  const inits: any[] = [floatTensor("spec_scale", [1, 4, 1, 1, 1], a), floatTensor("wave_scale", [1, 4, 1, 1], b)];
  let specOut = "spec_scaled";
  nodes.push({ name: "spec_mul", opType: "Mul", input: ["onnx::ReduceMean_1", "spec_scale"], output: [specOut] });
  const slow = opts.slowMatMuls ?? 0;
  if (slow > 0) {
    inits.push(floatTensor("zero", [], [0]));
    const sums: string[] = [];
    nodes.push({
      name: "slow_t",
      opType: "Transpose",
      input: ["onnx::ReduceMean_1"],
      output: ["slow_specT"],
      attribute: [{ name: "perm", type: AttrType.INTS, ints: [0, 1, 3, 2] }],
    });
    for (let k = 0; k < slow; k++) {
      // a different input per MatMul so nothing is shared or folded
      inits.push(floatTensor(`slow_c${k}`, [], [1 + k]));
      nodes.push({ name: `/slow.${k}/Mul`, opType: "Mul", input: ["onnx::ReduceMean_1", `slow_c${k}`], output: [`slow_x${k}`] });
      nodes.push({ name: `/slow.${k}/MatMul`, opType: "MatMul", input: [`slow_x${k}`, "slow_specT"], output: [`slow_y${k}`] });
      nodes.push({
        name: `/slow.${k}/ReduceMax`,
        opType: "ReduceMax",
        input: [`slow_y${k}`],
        output: [`slow_m${k}`],
        attribute: [{ name: "keepdims", type: AttrType.INT, i: 0 }],
      });
      sums.push(`slow_m${k}`);
    }
    nodes.push({ name: "slow_sum", opType: "Sum", input: sums, output: ["slow_total"] });
    nodes.push({ name: "slow_zero", opType: "Mul", input: ["slow_total", "zero"], output: ["slow_nothing"] });
    nodes.push({ name: "slow_add", opType: "Add", input: [specOut, "slow_nothing"], output: ["spec_slow"] });
    specOut = "spec_slow";
  }
  nodes.push({ name: "spec_id", opType: "Identity", input: [specOut], output: ["output"] });
  nodes.push({ name: "wave_mul", opType: "Mul", input: ["input", "wave_scale"], output: ["5073"] });

  const model = {
    irVersion: 8,
    producerName: "stemscribe-tests",
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "tiny_htdemucs",
      node: nodes,
      initializer: inits,
      input: [valueInfo("input", [1, 2, T]), valueInfo("onnx::ReduceMean_1", [1, 4, 2048, F])],
      output: [valueInfo("output", [1, 4, 4, 2048, F]), valueInfo("5073", [1, 4, 2, T])],
    },
  };
  const msg = ModelProto.fromObject(model);
  return ModelProto.encode(msg).finish();
}

if (import.meta.main) {
  const out = process.argv[2] ?? "tiny-demucs.onnx";
  const bytes = tinyDemucsModel({ slowMatMuls: Number(process.argv[3] ?? 0) });
  writeFileSync(out, bytes);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
