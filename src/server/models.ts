// Which models the server can run, loaded once and shared by all jobs.
import type { DemucsModel } from "../separation";
import { loadDemucsIsolated, type IsolatedDemucsModel } from "../separation/node";
import type { Transcriber } from "../pipelines/transcription";
import { loadHubWhisper } from "../whisper/hub";
import type { WhisperActivations } from "../whisper/float-matmul";
import { loadDefaultWhisperModel } from "../whisper/node";
import { transcribe } from "../whisper/transcribe";
import type { WorkContext } from "../core/work";
import type { WhisperModel } from "../whisper/model";
import { HttpError } from "./errors";

export const DEFAULT_WHISPER = "whisper-tiny.en";
// OpenAI clients send "whisper-1"; seed clients send short names. All mean the embedded model.
const WHISPER_ALIASES = new Set([DEFAULT_WHISPER, "whisper-1", "tiny.en", "tiny", "base", "default", ""]);

// A Hub repository id such as onnx-community/whisper-base (transformers.js layout).
const HUB_ID = /^[\w.-]+\/[\w.-]*whisper[\w.-]*$/i;

export class ModelRegistry {
  constructor(
    private modelsDir: string,
    private allowHub = true,
    /** The shared separation child exits after this long unused (its ~1.2 GB, which its allocator
     * keeps while it lives, goes back to the OS); the next job starts it again (~1.5 s). */
    private demucsIdleMs = 120_000,
    /** How the embedded Whisper runs (float-matmul.ts); the in-browser mode follows it. */
    readonly whisperActivations: WhisperActivations = "int8",
  ) {}

  whisperChoices() {
    return [DEFAULT_WHISPER, "whisper-1 (alias)", ...(this.allowHub ? ["<hub id, e.g. onnx-community/whisper-base (downloads once)>"] : [])];
  }

  /** Resolve a requested Whisper model name, or throw a 400 naming the choices. */
  resolveWhisper(name: string | undefined): string {
    const n = (name ?? "").trim();
    if (WHISPER_ALIASES.has(n)) return DEFAULT_WHISPER;
    if (this.allowHub && HUB_ID.test(n)) return n;
    throw new HttpError(400, `model '${n}' is not installed; choices: ${this.whisperChoices().join(", ")}`, "model_not_installed");
  }

  /** A loader for the resolved model; Hub models report their download through `ctx`. */
  transcriber(name: string): (ctx: WorkContext) => Promise<Transcriber> {
    if (name === DEFAULT_WHISPER) {
      return async () => {
        const model = await this.whisper();
        return (pcm, opts, ctx) => transcribe(model, pcm, opts, ctx);
      };
    }
    return async (ctx) => {
      const hub = await loadHubWhisper(name, { cacheDir: `${this.modelsDir}/hub`, onDownload: (f, m) => ctx.progress(f, m) });
      return (pcm, _opts, c) => hub.transcribe(pcm.channels[0]!, c);
    };
  }

  private demucsP: Promise<IsolatedDemucsModel> | null = null;
  private demucsIdle: ReturnType<typeof setTimeout> | null = null;

  /** Separation models for /upload?model=…; "demucs" is the embedded HTDemucs v4. */
  separationChoices() {
    return ["demucs", "htdemucs"];
  }

  resolveSeparation(name: string): string {
    if (this.separationChoices().includes(name)) return "htdemucs";
    throw new HttpError(400, `model '${name}' is not installed; choices: ${this.separationChoices().join(", ")}`, "model_not_installed");
  }

  private demucsBusy = false;

  /**
   * A Demucs model for one job. The graph runs in a child process so cancelling kills a running
   * segment at once; the shared child serves jobs one after another, and a job that finds it busy
   * (--concurrency > 1) gets a child of its own, so one job's cancel never kills another's work.
   */
  async demucs(signal?: AbortSignal): Promise<{ model: DemucsModel; release(): Promise<void> }> {
    if (!this.demucsBusy) {
      this.demucsBusy = true;
      if (this.demucsIdle) clearTimeout(this.demucsIdle);
      this.demucsIdle = null;
      try {
        // Only this job waits on a shared child being started (others get their own while it is
        // busy), so its cancel may stop the start; the next job starts it again.
        this.demucsP ??= loadDemucsIsolated({ modelsDir: this.modelsDir, signal });
        const model = await this.demucsP;
        const release = async () => {
          this.demucsBusy = false;
          // stop() ends the child only; the model object stays and restarts it on its next use
          this.demucsIdle = setTimeout(() => void model.stop(), this.demucsIdleMs);
          this.demucsIdle.unref?.();
        };
        return { model, release };
      } catch (e) {
        this.demucsP = null;
        this.demucsBusy = false;
        throw e;
      }
    }
    const own = await loadDemucsIsolated({ modelsDir: this.modelsDir, signal });
    return { model: own, release: () => own.dispose() };
  }

  /** Pid of the shared separation child while it runs (for tests and logs). */
  async demucsPid(): Promise<number | undefined> {
    return this.demucsP ? (await this.demucsP.catch(() => null))?.pid : undefined;
  }

  async close() {
    if (this.demucsIdle) clearTimeout(this.demucsIdle);
    const d = this.demucsP;
    this.demucsP = null;
    if (d) await (await d.catch(() => null))?.dispose();
  }

  whisper(_name = DEFAULT_WHISPER): Promise<WhisperModel> {
    return loadDefaultWhisperModel(this.modelsDir, this.whisperActivations);
  }
}
