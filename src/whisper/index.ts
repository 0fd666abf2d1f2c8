// Whisper transcription core (browser-safe: no fs, no Bun/DOM-only APIs; onnxruntime injected).
// Node-side helpers (model derivation on disk, cached default loader) live in ./node.
export { transcribe, WhisperOptionError } from "./transcribe";
export type { TranscribeOptions, TranscriptionResult, Segment, Word } from "./transcribe";
export { loadWhisperModel, DEFAULT_SESSION_OPTIONS } from "./model";
export type { WhisperModel, WhisperModelSources, OrtModule, ModelSource, WhisperStats } from "./model";
export { WhisperTokenizer } from "./tokenizer";
export { deriveWhisperAssets, stripBpeDecoder } from "./derive";
export type { DerivedWhisperAssets, WhisperVocabFile, WhisperConfigFile } from "./derive";
export { wer, normalizeText } from "./wer";
