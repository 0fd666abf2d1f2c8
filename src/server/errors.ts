// One JSON error shape for every endpoint (OpenAI's, so its client reads our messages too).
import { AudioError } from "../audio/errors";
import { JobIdError } from "../core/engine";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code = "invalid_request",
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function errorBody(message: string, code: string, extra: Record<string, unknown> = {}) {
  return { error: { message, type: code === "internal_error" ? "server_error" : "invalid_request_error", code }, ...extra };
}

export function jsonError(status: number, message: string, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(errorBody(message, code, extra)), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Map any thrown value to an HTTP error. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof AudioError) {
    const status = e.code === "unsupported_format" || e.code === "unsupported_codec" ? 415 : e.code === "empty" ? 400 : e.code === "too_long" ? 413 : 422;
    return new HttpError(status, e.message, e.code);
  }
  if (e instanceof JobIdError) return new HttpError(409, e.message, "job_id_conflict");
  return new HttpError(500, e instanceof Error ? e.message : String(e), "internal_error");
}
