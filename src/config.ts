// Server configuration: defaults, overridden by environment variables, overridden by CLI flags.
import { WHISPER_ACTIVATIONS, type WhisperActivations } from "./whisper/float-matmul";
/**
 * Allocator setting for the server process, applied by `npm start` (package.json) since it must be
 * in the environment when Bun starts. Bun's allocator (mimalloc) by default hands freed pages back
 * to the OS after 10 ms, so the JavaScript buffers onnxruntime-node returned on every Whisper decoder
 * step (logits, self-attention cache) page-faulted again and again. Keeping freed pages for a second
 * made long-harvard's decoding 3.6-3.9 s -> 2.6-3.4 s (bench/transcribe, session 5), and still gives
 * memory back once the server idles. Since session 8 the cache stays in onnxruntime's memory
 * (src/whisper/ort-ffi.ts), but each step's logits are still copied into a fresh buffer. The
 * Demucs child sets its own (src/separation/node.ts).
 */
export const SERVER_ENV = { MIMALLOC_PURGE_DELAY: "1000" } as const;

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  modelsDir: string;
  /** How long a finished job and its files are kept. */
  retentionMs: number;
  maxUploadBytes: number;
  /** Longest audio accepted, in seconds (0: no limit); decoded audio takes ~21 MB a minute at 44.1 kHz stereo. */
  maxDurationS: number;
  concurrency: number;
  corsOrigin: string;
  /** Directory of the web UI (served at /). */
  webDir: string;
  /** Refuse Hub model names (no downloads ever). */
  offline: boolean;
  /** How long the separation child may sit idle before it exits and gives its memory back. */
  demucsIdleMs: number;
  /** The embedded Whisper's activations (src/whisper/float-matmul.ts): "int8" as shipped, fastest;
   * "float" gives the in-browser mode the server's transcripts exactly, ~1.5x slower. */
  whisperActivations: WhisperActivations;
}

interface Option { flag: string; env: string; key: keyof Config; parse: (v: string) => unknown; help: string }

const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a non-negative number: ${v}`);
  return n;
};

const activations = (v: string): WhisperActivations => {
  if (!(WHISPER_ACTIVATIONS as readonly string[]).includes(v)) throw new Error(`not one of ${WHISPER_ACTIVATIONS.join(", ")}: ${v}`);
  return v as WhisperActivations;
};

export const OPTIONS: Option[] = [
  { flag: "--host", env: "STEMSCRIBE_HOST", key: "host", parse: String, help: "interface to listen on (default 0.0.0.0)" },
  { flag: "--port", env: "STEMSCRIBE_PORT", key: "port", parse: num, help: "port; 0 picks a free one (default 9004)" },
  { flag: "--data-dir", env: "STEMSCRIBE_DATA_DIR", key: "dataDir", parse: String, help: "uploads and results (default ./data)" },
  { flag: "--models-dir", env: "STEMSCRIBE_MODELS_DIR", key: "modelsDir", parse: String, help: "derived model files (default ./models)" },
  { flag: "--retention", env: "STEMSCRIBE_RETENTION_S", key: "retentionMs", parse: (v) => num(v) * 1000, help: "seconds a finished job and its files are kept (default 300)" },
  { flag: "--max-upload-mb", env: "STEMSCRIBE_MAX_UPLOAD_MB", key: "maxUploadBytes", parse: (v) => Math.floor(num(v) * 1024 * 1024), help: "largest accepted upload in MiB (default 200)" },
  { flag: "--max-duration-min", env: "STEMSCRIBE_MAX_DURATION_MIN", key: "maxDurationS", parse: (v) => num(v) * 60, help: "longest audio accepted in minutes, 0 for no limit (default 60)" },
  { flag: "--concurrency", env: "STEMSCRIBE_CONCURRENCY", key: "concurrency", parse: (v) => Math.max(1, Math.floor(num(v))), help: "jobs processed at once (default 1)" },
  { flag: "--cors-origin", env: "STEMSCRIBE_CORS_ORIGIN", key: "corsOrigin", parse: String, help: "Access-Control-Allow-Origin value (default *)" },
  { flag: "--offline", env: "STEMSCRIBE_OFFLINE", key: "offline", parse: (v) => v === "1" || v === "true", help: "refuse Hub model names, never download (true/false, default false)" },
  { flag: "--web-dir", env: "STEMSCRIBE_WEB_DIR", key: "webDir", parse: String, help: "static web UI directory (default ./web)" },
  { flag: "--whisper-activations", env: "STEMSCRIBE_WHISPER_ACTIVATIONS", key: "whisperActivations", parse: activations, help: "int8 (default, fastest) or float (~1.5x slower; in-browser transcripts then equal the server's)" },
  { flag: "--demucs-idle", env: "STEMSCRIBE_DEMUCS_IDLE_S", key: "demucsIdleMs", parse: (v) => num(v) * 1000, help: "seconds the idle separation process keeps its ~1.2 GB before exiting (default 120)" },
];

export const DEFAULTS: Config = {
  host: "0.0.0.0",
  port: 9004,
  dataDir: "./data",
  modelsDir: "./models",
  retentionMs: 300_000,
  maxUploadBytes: 200 * 1024 * 1024,
  maxDurationS: 3600,
  concurrency: 1,
  corsOrigin: "*",
  webDir: "./web",
  offline: false,
  demucsIdleMs: 120_000,
  whisperActivations: "int8",
};

export function loadConfig(argv: string[] = [], env: Record<string, string | undefined> = {}): Config {
  const cfg: Record<string, unknown> = { ...DEFAULTS };
  for (const o of OPTIONS) if (env[o.env] !== undefined && env[o.env] !== "") cfg[o.key] = o.parse(env[o.env]!);
  if (env.PORT && env.STEMSCRIBE_PORT === undefined) cfg.port = num(env.PORT);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    if (flag === "--help" || flag === "-h") throw new HelpRequested();
    const o = OPTIONS.find((x) => x.flag === flag);
    if (!o) throw new Error(`unknown option ${flag} (see --help)`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    cfg[o.key] = o.parse(value);
  }
  return cfg as unknown as Config;
}

export class HelpRequested extends Error {}

export function usage(): string {
  return ["usage: bun src/server.ts [options]", "", ...OPTIONS.map((o) => `  ${(o.flag + " <v>").padEnd(22)} ${o.env.padEnd(26)} ${o.help}`)].join("\n");
}
