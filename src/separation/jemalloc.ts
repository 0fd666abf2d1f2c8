// Where the system's jemalloc is, and how the Demucs child runs on it. No heavy imports: the server
// and scripts/ensure-jemalloc.sh ask it at start. Node/Bun only.
import { existsSync } from "node:fs";

/**
 * jemalloc for the isolated child, when the system has it (Debian/Ubuntu: package libjemalloc2, which
 * `npm start` and `npm test` install when run as root; scripts/ensure-jemalloc.sh), in place of
 * glibc with MALLOC_ENV (./node.ts). onnxruntime frees and reallocates ~2 GB of activations a
 * segment, most of them in blocks over glibc's 32 MB mmap ceiling, so under glibc every segment
 * maps fresh pages and faults them in again (20-30k faults a segment after MALLOC_ENV, ~9 us each
 * on this VM). jemalloc with decay off keeps the freed extents
 * and reuses them: on one segment in-process, faults 20-30k -> 0.3-6k and system CPU ~0.6 -> ~0.15 s;
 * the 3-minute loop isolated 78.5 s at 1421 MB -> 70.2 s at 1374 MB (same run, same SDR). Decay
 * must be off: with jemalloc's default (10 s) or 30 s, huge extents were purged at once and a
 * segment took 5 s with 1.5M faults. The price: the child keeps its peak (~1.2 GB) until it exits
 * (the server stops an idle one: ModelRegistry's demucsIdleMs).
 */
export const JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
const JEMALLOC_PATHS = [
  "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
  "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
  "/usr/lib64/libjemalloc.so.2",
  "/usr/lib/libjemalloc.so.2",
  "/usr/local/lib/libjemalloc.so.2",
];

/** STEMSCRIBE_JEMALLOC (a path; "0" or empty: off), else the first installed libjemalloc.so.2 (Linux). */
export function findJemalloc(env: Record<string, string | undefined> = process.env): string | undefined {
  const v = env.STEMSCRIBE_JEMALLOC;
  if (v !== undefined) return v && v !== "0" ? v : undefined;
  return process.platform === "linux" ? JEMALLOC_PATHS.find((p) => existsSync(p)) : undefined;
}
