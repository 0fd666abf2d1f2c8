// The rewritten, split htdemucs graph (./attention.ts, ./conv-transpose.ts, ./split.ts) written once to
// the models directory, so that each separation process loads 8 part files with onnxruntime instead of
// decoding, rewriting and re-encoding 170 MB of protobuf in JavaScript at every start. Besides the
// ~1 s saved a start, that keeps ~230 MB of JavaScript garbage out of a process whose allocator is
// told to keep freed pages (see MALLOC_ENV in ./node.ts). Node/Bun only.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sourceStamp, writeFileAtomic } from "../derived-files";
import { DEMUCS_PART_NODES, rewrittenDemucs, type PresplitModel } from "./model";
import { splitModel, type GraphIO } from "./split";

export const DEMUCS_PARTS_DIR_NAME = "htdemucs-parts";
/** Bump when the rewrites or the split change what is written. */
const PARTS_VERSION = 1;

interface PartsIndex {
  stamp: string;
  inputs: GraphIO[];
  outputs: GraphIO[];
  parts: { file: string; inputs: string[]; outputs: string[] }[];
}

const stampOf = (sourcePath: string) => sourceStamp(sourcePath, { version: PARTS_VERSION, nodes: DEMUCS_PART_NODES });

/** The parts written for `sourcePath`, or null when they are missing or stale. Cheap (a stat and a read). */
export function readDemucsParts(modelsDir: string, sourcePath: string): PresplitModel | null {
  const dir = join(modelsDir, DEMUCS_PARTS_DIR_NAME);
  const indexPath = join(dir, "parts.json");
  if (!existsSync(indexPath)) return null;
  let index: PartsIndex;
  try {
    index = JSON.parse(readFileSync(indexPath, "utf8"));
  } catch {
    return null;
  }
  if (index.stamp !== stampOf(sourcePath) || !index.parts.every((p) => existsSync(join(dir, p.file)))) return null;
  return fromIndex(dir, index);
}

function fromIndex(dir: string, index: PartsIndex): PresplitModel {
  return {
    parts: index.parts.map((p) => ({ model: join(dir, p.file), inputs: p.inputs, outputs: p.outputs })),
    inputs: index.inputs,
    outputs: index.outputs,
  };
}

/**
 * Returns the split parts of `sourcePath` under `modelsDir/htdemucs-parts`, writing them first when
 * they are missing or stale (~2 s and ~1 GB of transient memory for htdemucs; run it in a process of
 * its own where that matters). Files are written via temp files + rename, the index last, so
 * concurrent writers and a crash mid-way leave either the old set or the new one.
 */
export function ensureDemucsParts(modelsDir: string, sourcePath: string): PresplitModel {
  const ready = readDemucsParts(modelsDir, sourcePath);
  if (ready) return ready;
  const dir = join(modelsDir, DEMUCS_PARTS_DIR_NAME);
  mkdirSync(dir, { recursive: true });
  const graph = splitModel(rewrittenDemucs(new Uint8Array(readFileSync(sourcePath)), { fuse: true, convTr: true }), DEMUCS_PART_NODES);
  const put = (name: string, data: Uint8Array | string) => writeFileAtomic(dir, name, data);
  const index: PartsIndex = { stamp: stampOf(sourcePath), inputs: graph.inputs, outputs: graph.outputs, parts: [] };
  graph.parts.forEach((p, i) => {
    const file = `part${i}.onnx`;
    put(file, p.bytes);
    index.parts.push({ file, inputs: p.inputs, outputs: p.outputs });
  });
  put("parts.json", JSON.stringify(index, null, 1));
  return fromIndex(dir, index);
}
