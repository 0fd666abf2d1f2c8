import { readFileSync } from "node:fs";
import * as W from "./src/whisper/onnx-wire";
import { shippedWhisperModelPath } from "./src/whisper/node";
const m = W.parseModel(new Uint8Array(readFileSync(shippedWhisperModelPath())));
const g = m.graph;
for (const n of g.nodes) if (n.opType !== "Constant") console.log(n.opType, JSON.stringify(n.inputs), "->", JSON.stringify(n.outputs));
const beam = g.nodes.find((n) => n.opType === "BeamSearch")!;
for (const [k, v] of beam.attributes) if (k !== "encoder" && k !== "decoder") console.log("attr", k, W.attrInt(v), W.attrString?.(v));
console.log(g.fields.filter(f=>f.field===11).map(f=>W.str(W.readFields(f.bytes!).find(x=>x.field===1)?.bytes)));
