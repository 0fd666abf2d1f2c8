// Optional larger Whisper models from the Hugging Face Hub through transformers.js (needs network
// on first use; cached after). The embedded whisper-tiny.en never goes through here.
// Windows of 30 s are transcribed one by one so progress and cancellation stay per window.
import type { WorkContext } from "../core/work";
import { throwIfAborted } from "../core/work";
import type { Segment, TranscriptionResult } from "./transcribe";

export interface HubOptions {
  cacheDir?: string;
  /** Report download progress, e.g. "encoder_model.onnx 42%". */
  onDownload?: (fraction: number, message: string) => void;
}

type AsrPipeline = (audio: Float32Array, opts: Record<string, unknown>) => Promise<{ text: string; chunks?: { timestamp: [number, number | null]; text: string }[] }>;

export interface HubWhisper {
  name: string;
  transcribe(pcm16k: Float32Array, ctx: WorkContext): Promise<TranscriptionResult>;
}

const cache = new Map<string, Promise<HubWhisper>>();

export function loadHubWhisper(name: string, opts: HubOptions = {}): Promise<HubWhisper> {
  let p = cache.get(name);
  if (!p) {
    p = load(name, opts);
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}

async function load(name: string, opts: HubOptions): Promise<HubWhisper> {
  const tf = await import("@huggingface/transformers");
  if (opts.cacheDir) tf.env.cacheDir = opts.cacheDir;
  const files = new Map<string, { loaded: number; total: number }>();
  let asr: AsrPipeline;
  try {
    asr = (await tf.pipeline("automatic-speech-recognition", name, {
      device: "cpu", // "auto" tries CUDA under Bun and throws
      progress_callback: (p: { status: string; file?: string; loaded?: number; total?: number }) => {
        if (p.status !== "progress" || !p.file) return;
        files.set(p.file, { loaded: p.loaded ?? 0, total: p.total ?? 0 });
        const all = [...files.values()];
        const total = all.reduce((s, f) => s + f.total, 0);
        const loaded = all.reduce((s, f) => s + f.loaded, 0);
        opts.onDownload?.(total ? loaded / total : 0, `downloading ${name}: ${p.file} ${(((p.loaded ?? 0) / (p.total || 1)) * 100).toFixed(0)}%`);
      },
    } as never)) as unknown as AsrPipeline;
  } catch (e) {
    throw new Error(`could not load Hub model ${name}: ${(e as Error).message}`);
  }
  return {
    name,
    async transcribe(pcm, ctx) {
      const W = 30 * 16000;
      const segments: Segment[] = [];
      const windows = Math.max(1, Math.ceil(pcm.length / W));
      for (let w = 0; w < windows; w++) {
        throwIfAborted(ctx.signal);
        const offset = (w * W) / 16000;
        const out = await asr(pcm.subarray(w * W, (w + 1) * W), { return_timestamps: true });
        for (const c of out.chunks ?? [{ timestamp: [0, Math.min(W, pcm.length - w * W) / 16000] as [number, number], text: out.text }]) {
          if (!c.text.trim()) continue;
          const start = offset + (c.timestamp[0] ?? 0);
          const end = offset + (c.timestamp[1] ?? c.timestamp[0] ?? 0);
          segments.push({ id: segments.length, seek: w * 3000, start, end, text: c.text, tokens: [], avg_logprob: 0, compression_ratio: 0, no_speech_prob: 0, temperature: 0 });
        }
        ctx.progress((w + 1) / windows, `window ${w + 1}/${windows}, ${Math.min(pcm.length / 16000, (w + 1) * 30).toFixed(1)} s of ${(pcm.length / 16000).toFixed(1)} s`);
      }
      return { text: segments.map((s) => s.text).join("").trim(), language: "en", duration: pcm.length / 16000, segments };
    },
  };
}
