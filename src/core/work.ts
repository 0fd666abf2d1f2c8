// What a long-running unit of work (decode, Whisper, Demucs) gets from whoever runs it.
// Free of Bun and DOM APIs: the server's job engine and the browser worker both provide it.
export interface WorkContext {
  /** Aborted on cancellation; check between work units (windows, segments, tokens). */
  signal: AbortSignal;
  /** Report progress within the current stage: fraction in [0, 1] from real work units done. */
  progress(fraction: number, message?: string): void;
}

export class CancelledError extends Error {
  constructor() {
    super("cancelled");
    this.name = "CancelledError";
  }
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledError();
}

/** A context that ignores progress: for benches, tests and one-off calls. */
export function quietContext(signal: AbortSignal = new AbortController().signal): WorkContext {
  return { signal, progress() {} };
}
