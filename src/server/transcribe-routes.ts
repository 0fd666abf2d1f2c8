// POST /transcribe (seed 000) and the OpenAI-compatible POST /v1/audio/transcriptions.
// Both are thin: receive the upload into a job, run the transcription pipeline, shape the answer.
import { Elysia, sse } from "elysia";
import type { Job } from "../core/engine";
import { isTerminal } from "../core/types";
import { toSrt, toVtt } from "../formats/subtitles";
import { runTranscription, type TranscriptionRequest, type TranscriptResult } from "../pipelines/transcription";
import { TRANSCRIBE_STAGES } from "../pipelines/stages";
import type { AppContext } from "./app";
import { HttpError } from "./errors";
import type { ModelRegistry } from "./models";

const FORMATS = ["json", "text", "srt", "vtt", "verbose_json"] as const;
type Format = (typeof FORMATS)[number];

function field(form: FormData, name: string): string | undefined {
  const v = form.get(name);
  return typeof v === "string" && v !== "" ? v : undefined;
}

function parseRequest(form: FormData, query: Record<string, string | undefined>): TranscriptionRequest {
  const pick = (k: string) => field(form, k) ?? query[k];
  const language = pick("language");
  if (language && !/^(en|english)$/i.test(language)) {
    throw new HttpError(400, `the embedded model is English-only; language '${language}' is not supported`, "unsupported_language");
  }
  const num = (k: string, lo: number, hi: number) => {
    const raw = pick(k);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < lo || n > hi) throw new HttpError(400, `${k} must be a number from ${lo} to ${hi}`, "invalid_value");
    return n;
  };
  return { language, prompt: pick("prompt"), temperature: num("temperature", 0, 1), beamSize: num("beam_size", 1, 10) };
}

/** Resolve when the job ends; the transcript if it completed, else a mapped HTTP error. */
function settle(ctx: AppContext, job: Job): Promise<TranscriptResult> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const s = ctx.engine.get(job.id) ?? job.state;
      if (!isTerminal(s.status)) return false;
      unsubscribe();
      if (s.status === "completed") resolve(s.meta.result as TranscriptResult);
      else if (s.status === "cancelled") reject(new HttpError(409, "the job was cancelled", "job_cancelled", { job_id: job.id }));
      else reject(new HttpError(422, s.error ?? "transcription failed", "transcription_failed", { job_id: job.id, stage: s.stage }));
      return true;
    };
    const unsubscribe = ctx.engine.hub.subscribe(job.id, check);
    check();
  });
}

const jsonWords = (r: TranscriptResult) => r.segments.flatMap((s) => (s.words ?? []).map((w) => ({ word: w.word.trim(), start: w.start, end: w.end })));

export function transcribeRoutes(ctx: AppContext, models: ModelRegistry) {
  const start = async (request: Request, query: Record<string, string | undefined>, extra: Partial<TranscriptionRequest> = {}) => {
    const { job, upload } = await ctx.acceptUpload(request, query, "transcription", TRANSCRIBE_STAGES);
    let req: TranscriptionRequest;
    let model: string;
    try {
      model = models.resolveWhisper(field(upload.form, "model") ?? query.model);
      req = { ...parseRequest(upload.form, query), ...extra };
    } catch (e) {
      job.fail(e);
      throw e instanceof HttpError ? new HttpError(e.status, e.message, e.code, { job_id: job.id }) : e;
    }
    job.setMeta("model", model);
    return { job, upload, req, model };
  };

  const base = (request: Request) => new URL(request.url).origin;

  return new Elysia({ name: "transcribe" })
    .post("/transcribe", async ({ request, query, set }) => {
      const { job, upload, req, model } = await start(request, query);
      const word = (field(upload.form, "word_timestamps") ?? query.word_timestamps) === "true";
      ctx.engine.run(job, (j) => runTranscription(j, upload.bytes, { ...req, wordTimestamps: word }, { load: models.transcriber(model), files: ctx.files, maxSeconds: ctx.config.maxDurationS }).then(() => {}));
      if ((field(upload.form, "async") ?? query.async) === "true") {
        set.status = 202;
        const b = base(request);
        return { job_id: job.id, progress_url: `${b}/progress/${job.id}`, stream_url: `${b}/progress/${job.id}/stream`, result_url: `${b}/jobs/${job.id}/result` };
      }
      return settle(ctx, job);
    }, { parse: "none" })
    .post("/v1/audio/transcriptions", async ({ request, query, set }) => {
      const { job, upload, req, model } = await start(request, query);
      const form = upload.form;
      const format = (field(form, "response_format") ?? "json") as Format;
      const granularities = [...form.getAll("timestamp_granularities[]"), ...form.getAll("timestamp_granularities")].map(String);
      try {
        if (!FORMATS.includes(format)) throw new HttpError(400, `response_format must be one of ${FORMATS.join(", ")}`, "invalid_value");
        if (granularities.some((g) => g !== "word" && g !== "segment")) throw new HttpError(400, "timestamp_granularities[] takes 'word' and/or 'segment'", "invalid_value");
        if (granularities.length && format !== "verbose_json") throw new HttpError(400, "timestamp_granularities[] requires response_format verbose_json", "invalid_value");
      } catch (e) {
        job.fail(e);
        throw new HttpError((e as HttpError).status, (e as HttpError).message, (e as HttpError).code, { job_id: job.id });
      }
      const words = granularities.includes("word");
      const stream = field(form, "stream") === "true";
      const deltas: string[] = [];
      let wake: (() => void) | null = null;
      ctx.engine.run(job, (j) =>
        runTranscription(j, upload.bytes, { ...req, wordTimestamps: words, onTextDelta: stream ? (d) => { deltas.push(d); wake?.(); } : undefined }, { load: models.transcriber(model), files: ctx.files, maxSeconds: ctx.config.maxDurationS }).then(() => {}),
      );
      const headers = { "x-job-id": job.id, "access-control-expose-headers": "X-Job-Id" };
      if (stream) {
        // OpenAI's streaming transcription events, as SSE.
        set.headers["x-job-id"] = job.id;
        set.headers["cache-control"] = "no-cache";
        const done = settle(ctx, job);
        done.catch(() => {}).finally(() => wake?.());
        return (async function* () {
          let finished = false;
          done.then(() => (finished = true), () => (finished = true));
          while (true) {
            while (deltas.length) yield sse({ data: { type: "transcript.text.delta", delta: deltas.shift()!, job_id: job.id } });
            if (finished) break;
            await new Promise<void>((r) => (wake = r));
            wake = null;
          }
          try {
            const r = await done;
            yield sse({ data: { type: "transcript.text.done", text: r.text, job_id: job.id } });
          } catch (e) {
            yield sse({ event: "error", data: { type: "error", error: { message: (e as Error).message }, job_id: job.id } });
          }
        })();
      }
      const r = await settle(ctx, job);
      const text = (body: string, type: string) => new Response(body, { headers: { "content-type": `${type}; charset=utf-8`, ...headers } });
      switch (format) {
        case "text": return text(r.text + "\n", "text/plain");
        case "srt": return text(toSrt(r.segments), "application/x-subrip");
        case "vtt": return text(toVtt(r.segments), "text/vtt");
        case "json": return Response.json({ text: r.text, job_id: r.job_id }, { headers });
        case "verbose_json": {
          const body: Record<string, unknown> = { task: "transcribe", language: "english", duration: r.duration, text: r.text, job_id: r.job_id };
          if (!granularities.length || granularities.includes("segment")) {
            body.segments = r.segments.map(({ words: _w, ...s }) => s);
          }
          if (words) body.words = jsonWords(r);
          return Response.json(body, { headers });
        }
      }
    }, { parse: "none" });
}
