// Which models the server can run, loaded once and shared by all jobs.
import { loadDefaultWhisperModel } from "../whisper/node";
import type { WhisperModel } from "../whisper/model";
import { HttpError } from "./errors";

export const DEFAULT_WHISPER = "whisper-tiny.en";
// OpenAI clients send "whisper-1"; seed clients send short names. All mean the embedded model.
const WHISPER_ALIASES = new Set([DEFAULT_WHISPER, "whisper-1", "tiny.en", "tiny", "base", "default", ""]);

export class ModelRegistry {
  constructor(private modelsDir: string) {}

  whisperChoices() {
    return [DEFAULT_WHISPER, "whisper-1 (alias)"];
  }

  /** Resolve a requested Whisper model name, or throw a 400 naming the choices. */
  resolveWhisper(name: string | undefined): string {
    const n = (name ?? "").trim();
    if (WHISPER_ALIASES.has(n)) return DEFAULT_WHISPER;
    throw new HttpError(400, `model '${n}' is not installed; choices: ${this.whisperChoices().join(", ")}`, "model_not_installed");
  }

  whisper(_name = DEFAULT_WHISPER): Promise<WhisperModel> {
    return loadDefaultWhisperModel(this.modelsDir);
  }
}
