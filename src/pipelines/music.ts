// The music job (seed 001): separation → lyrics transcription of the vocal stem → karaoke files.
// Each stage reports its own 0-100 as in seed 001: it starts at 10 once its inputs are ready.
import { durationOf, encodeWav, prepareAudio, resample, toMono, type PcmAudio } from "../audio";
import { encodeMp3 } from "../audio/mp3";
import type { Job } from "../core/engine";
import type { WorkContext } from "../core/work";
import { allLyricFormats, linesFromSegments } from "../formats/lyrics";
import type { JobFiles } from "../server/files";
import { separate, STEMS, type DemucsModel, type SeparateOptions, type StemName } from "../separation";
import type { WhisperModel } from "../whisper/model";
import { transcribe } from "../whisper/transcribe";

export interface MusicDeps {
  /** A separation model for this job alone until `release()`. */
  demucs: () => Promise<{ model: DemucsModel; release(): Promise<void> }>;
  whisper: () => Promise<WhisperModel>;
  files: JobFiles;
}

/** A sub-range [from, to] of a stage context, so one stage can report several phases. */
function slice(ctx: WorkContext, from: number, to: number, prefix?: string): WorkContext {
  return { signal: ctx.signal, progress: (f, m) => ctx.progress(from + (to - from) * f, prefix && m ? `${prefix}: ${m}` : m ?? prefix) };
}

export async function runMusic(job: Job, bytes: Uint8Array, opts: SeparateOptions, deps: MusicDeps) {
  // Separation: decode/resample (0-10), then one unit per model segment (10-100).
  const sep = job.stage("separation", "decoding audio");
  const mix = await prepareAudio(bytes, { sampleRate: 44100 }, slice(sep, 0, 0.1, "decoding"));
  job.setMeta("duration", Math.round(durationOf(mix) * 1000) / 1000);
  const lease = await deps.demucs();
  let stems;
  try {
    sep.progress(0.1, "separating");
    stems = await separate(lease.model, mix, opts, slice(sep, 0.1, 1, "separating"));
  } finally {
    await lease.release();
  }

  // Lyrics: the vocal stem at 16 kHz mono, transcribed with word timing (10-100).
  const tr = job.stage("transcription", "loading Whisper");
  const whisper = await deps.whisper();
  const vocals16k = await resample({ sampleRate: stems.vocals.sampleRate, channels: [toMono(stems.vocals)] }, 16000, slice(tr, 0, 0.1, "resampling vocals"));
  const transcript = await transcribe(whisper, vocals16k, { wordTimestamps: true }, slice(tr, 0.1, 1));
  const lines = linesFromSegments(transcript.segments);
  job.setMeta("lyrics", { text: transcript.text, lines: lines.length });

  // Karaoke: instrumental, then every stem as WAV + MP3, then the lyric formats (10-100).
  const k = job.stage("karaoke", "mixing the instrumental");
  const instrumental = sumOf([stems.drums, stems.bass, stems.other]);
  k.progress(0.1, "instrumental mixed");
  const tracks: [string, PcmAudio][] = [["instrumental", instrumental], ...STEMS.map((s: StemName) => [s, stems[s]] as [string, PcmAudio])];
  const per = 0.85 / tracks.length;
  for (let i = 0; i < tracks.length; i++) {
    const [name, pcm] = tracks[i]!;
    const at = 0.1 + i * per;
    await deps.files.save(job, `${name}.wav`, `${name}.wav`, encodeWav(pcm), "audio/wav");
    const mp3 = await encodeMp3(pcm, 192, slice(k, at + per * 0.2, at + per, `encoding ${name}.mp3`));
    await deps.files.save(job, `${name}.mp3`, `${name}.mp3`, mp3, "audio/mpeg");
  }
  for (const [name, body, type] of allLyricFormats(lines)) await deps.files.save(job, name, name, body, type);
  k.progress(1, "karaoke ready");
  job.setMeta("result", { job_id: job.id, stems: [...STEMS], lyrics: { text: transcript.text, lines }, duration: job.state.meta.duration });
}

function sumOf(parts: PcmAudio[]): PcmAudio {
  const channels = parts[0]!.channels.map((c) => new Float32Array(c.length));
  for (const p of parts) p.channels.forEach((c, ch) => { const o = channels[ch]!; for (let i = 0; i < o.length; i++) o[i]! += c[i]!; });
  return { sampleRate: parts[0]!.sampleRate, channels };
}
