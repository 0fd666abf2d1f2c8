// The transcription job: decode to 16 kHz mono, run Whisper with live per-token progress,
// and store the transcript in every format the endpoints serve.
import { durationOf, prepareAudio } from "../audio";
import type { Job } from "../core/engine";
import { slice, transcriptOutputs } from "./steps";
import type { JobFiles } from "../server/files";
import type { PcmAudio } from "../audio";
import type { WorkContext } from "../core/work";
import type { Segment, TranscribeOptions, TranscriptionResult } from "../whisper/transcribe";

/** A loaded speech model: the embedded Whisper, or an optional Hub model. */
export type Transcriber = (pcm16kMono: PcmAudio, opts: TranscribeOptions, ctx: WorkContext) => Promise<TranscriptionResult>;

export interface TranscriptionRequest {
  language?: string;
  prompt?: string;
  temperature?: number;
  beamSize?: number;
  wordTimestamps?: boolean;
  onTextDelta?: (delta: string) => void;
}

export interface TranscriptResult {
  text: string;
  job_id: string;
  segments: Segment[];
  language: string;
  duration: number;
}

export async function runTranscription(
  job: Job,
  bytes: Uint8Array,
  req: TranscriptionRequest,
  deps: { load: (ctx: WorkContext) => Promise<Transcriber>; files: JobFiles; maxSeconds?: number },
): Promise<TranscriptResult> {
  const pre = job.stage("preprocessing", "decoding audio");
  const pcm = await prepareAudio(bytes, { sampleRate: 16000, mono: true, maxSeconds: deps.maxSeconds }, slice(pre, 0, 0.5));
  // Loading is instant for the embedded model once warm; a Hub model reports its download here.
  const run = await deps.load(slice(pre, 0.5, 1));
  const duration = Math.round(durationOf(pcm) * 1000) / 1000;
  job.setMeta("duration", duration);

  const ctx = job.stage("transcribing", `transcribing ${duration.toFixed(1)} s of audio`);
  const opts: TranscribeOptions = {
    language: req.language, prompt: req.prompt, temperature: req.temperature, beamSize: req.beamSize,
    wordTimestamps: req.wordTimestamps, onTextDelta: req.onTextDelta,
  };
  const out = await run(pcm, opts, ctx);

  const fin = job.stage("finalizing", "writing transcript files");
  const result: TranscriptResult = { text: out.text, job_id: job.id, segments: out.segments, language: out.language, duration };
  for (const o of transcriptOutputs(result)) await deps.files.save(job, o.name, o.name, o.data, o.contentType);
  fin.progress(1);
  job.setMeta("result", result);
  return result;
}
