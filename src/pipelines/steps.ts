// Pipeline steps shared by the server's jobs and the in-browser worker: what they compute and the
// files they produce. Free of Bun and DOM APIs; each caller decides where outputs go (job files on
// disk, Blobs in the page) and which stage a step reports to.
import { encodeWav, resample, toMono, type PcmAudio } from "../audio";
import { encodeMp3 } from "../audio/mp3";
import type { WorkContext } from "../core/work";
import { allLyricFormats, linesFromSegments, type LyricLine } from "../formats/lyrics";
import { toSrt, toVtt } from "../formats/subtitles";
import { STEMS, type Stems } from "../separation/types";
import type { WhisperModel } from "../whisper/model";
import { transcribe, type Segment, type TranscriptionResult } from "../whisper/transcribe";

/** One result file. */
export interface Output {
  name: string;
  data: Uint8Array | string;
  contentType: string;
}
export type Emit = (o: Output) => unknown | Promise<unknown>;

/** A sub-range [from, to] of a stage context, so one stage can report several phases. */
export function slice(ctx: WorkContext, from: number, to: number, prefix?: string): WorkContext {
  return { signal: ctx.signal, progress: (f, m) => ctx.progress(from + (to - from) * f, prefix && m ? `${prefix}: ${m}` : m ?? prefix) };
}

/** The transcript downloads: JSON (the whole result), plain text, SRT and WebVTT. */
export function transcriptOutputs(result: { text: string; segments: Segment[] }): Output[] {
  return [
    { name: "transcript.json", data: JSON.stringify(result), contentType: "application/json" },
    { name: "transcript.txt", data: result.text + "\n", contentType: "text/plain; charset=utf-8" },
    { name: "transcript.srt", data: toSrt(result.segments), contentType: "application/x-subrip" },
    { name: "transcript.vtt", data: toVtt(result.segments), contentType: "text/vtt" },
  ];
}

/** Lyrics: the vocal stem at 16 kHz mono (0-10%), transcribed with word timing (10-100%), as lines. */
export async function transcribeVocals(whisper: WhisperModel, vocals: PcmAudio, ctx: WorkContext): Promise<{ transcript: TranscriptionResult; lines: LyricLine[] }> {
  const mono = await resample({ sampleRate: vocals.sampleRate, channels: [toMono(vocals)] }, 16000, slice(ctx, 0, 0.1, "resampling vocals"));
  const transcript = await transcribe(whisper, mono, { wordTimestamps: true }, slice(ctx, 0.1, 1));
  return { transcript, lines: linesFromSegments(transcript.segments) };
}

export function sumOf(parts: PcmAudio[]): PcmAudio {
  const channels = parts[0]!.channels.map((c) => new Float32Array(c.length));
  for (const p of parts) p.channels.forEach((c, ch) => { const o = channels[ch]!; for (let i = 0; i < o.length; i++) o[i]! += c[i]!; });
  return { sampleRate: parts[0]!.sampleRate, channels };
}

/**
 * Karaoke files: the instrumental (drums + bass + other, 0-10%), then it and every stem as WAV and
 * 192 kbps MP3 (10-95%), then every lyric format. Each file is emitted as soon as it exists.
 */
export async function renderKaraoke(stems: Stems, lines: LyricLine[], ctx: WorkContext, emit: Emit) {
  const instrumental = sumOf([stems.drums, stems.bass, stems.other]);
  ctx.progress(0.1, "instrumental mixed");
  const tracks: [string, PcmAudio][] = [["instrumental", instrumental], ...STEMS.map((s) => [s, stems[s]] as [string, PcmAudio])];
  const per = 0.85 / tracks.length;
  for (const [i, [name, pcm]] of tracks.entries()) {
    const at = 0.1 + i * per;
    await emit({ name: `${name}.wav`, data: encodeWav(pcm), contentType: "audio/wav" });
    const mp3 = await encodeMp3(pcm, 192, slice(ctx, at + per * 0.2, at + per, `encoding ${name}.mp3`));
    await emit({ name: `${name}.mp3`, data: mp3, contentType: "audio/mpeg" });
  }
  for (const [name, body, type] of allLyricFormats(lines)) await emit({ name, data: body, contentType: type });
  ctx.progress(1, "karaoke ready");
}
