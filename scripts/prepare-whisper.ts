// Derives the standalone Whisper models from the shipped all-in-one graph (idempotent).
// Usage: bun scripts/prepare-whisper.ts [modelsDir=models]
import { ensureWhisperModel } from "../src/whisper/node";
const t0 = performance.now();
const dir = ensureWhisperModel(process.argv[2] ?? "models");
console.log(`whisper model ready in ${dir} (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
