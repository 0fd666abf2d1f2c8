// Demucs (HTDemucs v4) source separation: browser-safe entry point. Node-only helpers (loading the
// model file, the killable child-process model) live in ./node.
export { separate, transitionWeights, mixStats, DEFAULT_TRANSITION_POWER } from "./core";
export { loadDemucs, DEFAULT_SESSION_OPTIONS } from "./model";
export type { LoadDemucsOptions, OrtLike, OrtSessionLike } from "./model";
export { stereoSpec, stereoISpecAdd, framesFor, N_FFT, HOP } from "./dsp";
export { STEMS } from "./types";
export type { StemName, Stems, StemSink, SeparateOptions, DemucsModel, DemucsInferenceResult } from "./types";
