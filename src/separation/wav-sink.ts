// Node-side StemSink that streams each stem into its own 16-bit PCM WAV file as segments finish, so a
// long song never holds four full stems in memory.
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { STEMS, type StemName, type StemSink } from "./types";

export interface WavFileSink extends StemSink {
  /** Paths written, by stem (available after `begin`). */
  readonly paths: Record<StemName, string>;
  /** Closes the files (call after separate() settles, also on failure). */
  close(): void;
}

function header(rate: number, channels: number, frames: number): Uint8Array {
  const data = frames * channels * 2;
  const h = new Uint8Array(44);
  const v = new DataView(h.buffer);
  const tag = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) h[at + i] = s.charCodeAt(i);
  };
  tag(0, "RIFF");
  v.setUint32(4, 36 + data, true);
  tag(8, "WAVE");
  tag(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  tag(36, "data");
  v.setUint32(40, data, true);
  return h;
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
        writeSync(fd, header(sampleRate, channels, length));
      }
    },
    write(_start, stems) {
      for (const s of STEMS) {
        const chans = stems[s];
        const n = chans[0]!.length;
        const k = chans.length;
        const pcm = new Int16Array(n * k);
        for (let c = 0; c < k; c++) {
          const x = chans[c]!;
          for (let i = 0; i < n; i++) {
            const v = Math.max(-1, Math.min(1, x[i]!));
            pcm[i * k + c] = Math.round(v * 32767);
          }
        }
        writeSync(fds.get(s)!, new Uint8Array(pcm.buffer));
      }
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}
