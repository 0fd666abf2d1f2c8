// Decode failures carry a machine code so transports can map them to a status without string matching.
export type AudioErrorCode = "empty" | "unsupported_format" | "corrupt" | "unsupported_codec" | "too_long";

export class AudioError extends Error {
  constructor(
    readonly code: AudioErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "AudioError";
  }
}
