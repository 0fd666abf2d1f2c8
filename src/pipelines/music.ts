// The music job (seed 001): separation → lyrics transcription of the vocal stem → karaoke files.
// Each stage reports its own 0-100 as in seed 001: it starts at 10 once its inputs are ready.
import { durationOf, prepareAudio } from "../audio";
import type { Job } from "../core/engine";
import type { JobFiles } from "../server/files";
import { separate, STEMS, type DemucsModel, type SeparateOptions } from "../separation";
import type { WhisperModel } from "../whisper/model";
import { renderKaraoke, slice, transcribeVocals } from "./steps";

export interface MusicDeps {
  /** A separation model for this job alone until `release()`; `signal` cancels its loading. */
  demucs: (signal?: AbortSignal) => Promise<{ model: DemucsModel; release(): Promise<void> }>;
  whisper: () => Promise<WhisperModel>;
  files: JobFiles;
  /** Longest audio accepted, in seconds (0 or absent: no limit). */
  maxSeconds?: number;
}

export async function runMusic(job: Job, bytes: Uint8Array, opts: SeparateOptions, deps: MusicDeps) {
  // Separation: decode/resample (0-10), then one unit per model segment (10-100), in steps of graph parts.
  const sep = job.stage("separation", "decoding audio");
  const mix = await prepareAudio(bytes, { sampleRate: 44100, maxSeconds: deps.maxSeconds }, slice(sep, 0, 0.1, "decoding"));
  job.setMeta("duration", Math.round(durationOf(mix) * 1000) / 1000);
  const lease = await deps.demucs(job.signal);
  let stems;
  try {
    sep.progress(0.1, "separating");
    stems = await separate(lease.model, mix, opts, slice(sep, 0.1, 1, "separating"));
  } finally {
    await lease.release();
  }

  // Lyrics from the vocal stem, then the karaoke files (each stage 10-100 after its set-up).
  const tr = job.stage("transcription", "loading Whisper");
  const { transcript, lines } = await transcribeVocals(await deps.whisper(), stems.vocals, tr);
  job.setMeta("lyrics", { text: transcript.text, lines: lines.length });

  const k = job.stage("karaoke", "mixing the instrumental");
  await renderKaraoke(stems, lines, k, (o) => deps.files.save(job, o.name, o.name, o.data, o.contentType));
  job.setMeta("result", { job_id: job.id, stems: [...STEMS], lyrics: { text: transcript.text, lines }, duration: job.state.meta.duration });
}
