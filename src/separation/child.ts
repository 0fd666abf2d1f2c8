// Child process behind loadDemucsIsolated (./node.ts): loads the model, then answers inference frames
// on stdin/stdout until stdin closes. Killed (SIGKILL) by the parent to cancel a running segment.
import { segmentSources } from "./core";
import { ensureDemucsParts } from "./parts-cache";
import { f32bytes, FrameReader, frameHeader, loadDemucsNode, MSG_ERROR, MSG_INFER, MSG_PROGRESS, MSG_READY, MSG_SOURCES } from "./node";

const out = process.stdout;
function send(parts: Uint8Array[]) {
  for (const p of parts) out.write(p);
}
function sendError(id: number, e: unknown) {
  const msg = new TextEncoder().encode(e instanceof Error ? e.message : String(e));
  send([frameHeader(MSG_ERROR, id, msg.length, 0), msg]);
}

if (process.env.DEMUCS_DERIVE_ONLY) {
  ensureDemucsParts(process.env.DEMUCS_MODELS_DIR!, process.env.DEMUCS_MODEL!);
  process.exit(0);
}

try {
  const model = await loadDemucsNode({
    modelPath: process.env.DEMUCS_MODEL!,
    modelsDir: process.env.DEMUCS_MODELS_DIR || undefined,
    split: process.env.DEMUCS_SPLIT !== "0",
    fuseAttention: process.env.DEMUCS_FUSE_ATTENTION !== "0",
    rewriteConvTranspose: process.env.DEMUCS_REWRITE_CONVTR !== "0",
    sessionOptions: JSON.parse(process.env.DEMUCS_SESSION_OPTIONS ?? "{}"),
  });
  send([frameHeader(MSG_READY, 0, 2, 0), f32bytes(new Float32Array([model.segmentLength, model.frames]))]);
  let queue = Promise.resolve();
  // The STFT buffer is reused across segments; each result gets a fresh array, because stdout may
  // still hold a reference to the previous one while it drains.
  const specBuf = new Float32Array(4 * 2048 * model.frames);
  const reader = new FrameReader((type, id, a, b) => {
    if (type !== MSG_INFER && type !== MSG_SOURCES) return;
    // progress after each graph part, so the parent's bar moves within a segment
    const onPart = (f: number) => send([frameHeader(MSG_PROGRESS, id, 1, 0), f32bytes(new Float32Array([f]))]);
    queue = queue.then(async () => {
      try {
        if (type === MSG_SOURCES) {
          const r = await segmentSources(model, new Float32Array(a.buffer), undefined, specBuf, undefined, onPart);
          send([frameHeader(MSG_SOURCES, id, r.length, 0), f32bytes(r)]);
        } else {
          const r = await model.infer(new Float32Array(a.buffer), new Float32Array(b.buffer), undefined, onPart);
          send([frameHeader(MSG_INFER, id, r.spec.length, r.wave.length), f32bytes(r.spec), f32bytes(r.wave)]);
        }
      } catch (e) {
        sendError(id, e);
      }
    });
  });
  process.stdin.on("data", (d: Uint8Array) => reader.push(d));
  process.stdin.on("end", async () => {
    await queue;
    await model.dispose();
    process.exit(0);
  });
} catch (e) {
  sendError(0, e);
  process.exit(1);
}
