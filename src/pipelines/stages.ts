// Stage plans: each stage's slice of the overall 0-100.
import type { StageSpec } from "../core/types";

export const INTAKE_STAGES: StageSpec[] = [
  { name: "uploading", from: 0, to: 20 },
  { name: "preprocessing", from: 20, to: 100 },
];

export const TRANSCRIBE_STAGES: StageSpec[] = [
  { name: "uploading", from: 0, to: 10 },
  { name: "preprocessing", from: 10, to: 30 },
  { name: "transcribing", from: 30, to: 90 },
  { name: "finalizing", from: 90, to: 100 },
];

/** Seed 001's music pipeline; the done stage is called "complete". */
export const MUSIC_STAGES: StageSpec[] = [
  { name: "uploading", from: 0, to: 5 },
  { name: "separation", from: 5, to: 70 },
  { name: "transcription", from: 70, to: 90 },
  { name: "karaoke", from: 90, to: 100 },
];
