// Timed text → SRT / WebVTT. Used for transcripts and for synced lyrics.
import { srtTime, vttTime } from "./timecode";

export interface Cue {
  start: number;
  end: number;
  text: string;
}

export function toSrt(cues: Cue[]): string {
  return cues.map((c, i) => `${i + 1}\n${srtTime(c.start)} --> ${srtTime(c.end)}\n${c.text.trim()}\n`).join("\n");
}

export function toVtt(cues: Cue[]): string {
  return `WEBVTT\n\n${cues.map((c) => `${vttTime(c.start)} --> ${vttTime(c.end)}\n${c.text.trim()}\n`).join("\n")}`;
}
