// Node-side StemSink that streams each stem into its own 16-bit PCM WAV file as segments finish, so a
// long song never holds four full stems in memory.
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { interleave16, wavHeader } from "../audio/wav";
import { STEMS, type StemName, type StemSink } from "./types";

export interface WavFileSink extends StemSink {
  /** Paths written, by stem (available after `begin`). */
  readonly paths: Record<StemName, string>;
  /** Closes the files (call after separate() settles, also on failure). */
  close(): void;
}

export function wavFileSink(dir: string): WavFileSink {
  mkdirSync(dir, { recursive: true });
  const paths = Object.fromEntries(STEMS.map((s) => [s, join(dir, `${s}.wav`)])) as Record<StemName, string>;
  const fds = new Map<StemName, number>();
  return {
    paths,
    begin({ sampleRate, channels, length }) {
      for (const s of STEMS) {
        const fd = openSync(paths[s], "w");
        fds.set(s, fd);
        writeSync(fd, wavHeader(sampleRate, channels, length));
      }
    },
    write(_start, stems) {
      for (const s of STEMS) {
        const pcm = interleave16(stems[s]);
        writeSync(fds.get(s)!, new Uint8Array(pcm.buffer));
      }
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}
