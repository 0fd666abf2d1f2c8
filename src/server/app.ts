// The HTTP application: thin routes over the job engine. Every transport reads the same events.
import { Elysia } from "elysia";
import type { Server } from "bun";
import { existsSync } from "node:fs";
import { probeAudio } from "../audio";
import type { Config } from "../config";
import { JobEngine, type Job, type JobWork } from "../core/engine";
import { MemoryJobStore } from "../core/store";
import { eventOf, isTerminal, type StageSpec } from "../core/types";
import { runIntake } from "../pipelines/intake";
import { runMusic } from "../pipelines/music";
import { INTAKE_STAGES, MUSIC_STAGES } from "../pipelines/stages";
import type { SeparateOptions } from "../separation";
import { HttpError, jsonError, toHttpError } from "./errors";
import { JobFiles } from "./files";
import { progressStream } from "./sse";
import { receiveUpload, checkUploadHeaders, type Upload } from "./upload";
import { jobView, progressView } from "./views";
import { ModelRegistry } from "./models";
import { transcribeRoutes } from "./transcribe-routes";
import { socketIo } from "./socketio";
import { webRoutes } from "./web";
import { wsRoutes } from "./ws";

export interface AppContext {
  config: Config;
  engine: JobEngine;
  files: JobFiles;
  /** Receive an upload into a new job; the job is created as early as its id is known. */
  acceptUpload(request: Request, query: Record<string, string | undefined>, kind: string, stages: StageSpec[], doneStage?: string): Promise<{ job: Job; upload: Upload }>;
}

export function createApp(config: Config) {
  const files = new JobFiles(config.dataDir);
  const engine = new JobEngine({
    store: new MemoryJobStore(),
    concurrency: config.concurrency,
    retentionMs: config.retentionMs,
    onExpire: (job) => files.remove(job.id),
  });
  let server: Server<unknown> | null = null;
  const models = new ModelRegistry(config.modelsDir, !config.offline, config.demucsIdleMs, config.whisperActivations);

  const startMusic = (job: Job, bytes: Uint8Array, opts: SeparateOptions) =>
    engine.run(job, (j) => runMusic(j, bytes, opts, { demucs: (signal) => models.demucs(signal), whisper: () => models.whisper(), files, maxSeconds: config.maxDurationS }));

  const ctx: AppContext = {
    config, engine, files,
    async acceptUpload(request, query, kind, stages, doneStage) {
      checkUploadHeaders(request, config.maxUploadBytes);
      const early = query.job_id ?? request.headers.get("x-job-id") ?? undefined;
      let job: Job | null = early ? engine.create(kind, stages, { id: early, doneStage }) : null;
      let upload: Upload;
      try {
        upload = await receiveUpload(request, config.maxUploadBytes, job?.stage("uploading", "receiving upload"));
        if (!job) {
          const field = upload.form.get("job_id");
          job = engine.create(kind, stages, { id: typeof field === "string" && field ? field : undefined, doneStage });
          job.stage("uploading", "receiving upload");
        }
        job.setMeta("filename", upload.file.name);
        job.setMeta("bytes", upload.bytes.length);
        job.stage("uploading").progress(1, `received ${upload.file.name} (${(upload.bytes.length / 1024).toFixed(0)} KiB)`);
        const format = await probeAudio(upload.bytes, config.maxDurationS);
        job.setMeta("format", format);
        await files.save(job, "input", `input.${format.replace(/^ogg-/, "")}`, upload.bytes, upload.file.type || "application/octet-stream");
        return { job, upload };
      } catch (e) {
        const err = toHttpError(e);
        job?.fail(new Error(err.message));
        throw new HttpError(err.status, err.message, err.code, job ? { job_id: job.id } : {});
      }
    },
  };

  const cors = { "access-control-allow-origin": config.corsOrigin, "access-control-expose-headers": "X-Job-Id" };
  const lastEventId = (request: Request, q: Record<string, string | undefined>) => {
    const raw = request.headers.get("last-event-id") ?? q.lastEventId ?? null;
    const n = raw === null ? NaN : Number(raw);
    return Number.isInteger(n) && n >= 0 ? n : null;
  };
  const known = (id: string) => {
    const j = engine.get(id);
    if (!j) throw new HttpError(404, `no job with id ${id} (unknown, or removed after retention)`, "job_not_found");
    return j;
  };
  const baseUrl = (request: Request) => new URL(request.url).origin;

  const sio = socketIo(engine, config.corsOrigin);
  const app = new Elysia()
    .onRequest(({ request, set }) => {
      Object.assign(set.headers, cors);
      if (request.method === "OPTIONS") {
        return new Response(null, {
          status: 204,
          headers: { ...cors, "access-control-allow-methods": "GET,POST,DELETE,OPTIONS", "access-control-allow-headers": "*", "access-control-max-age": "86400" },
        });
      }
    })
    .onError(({ error, code }) => {
      if (code === "NOT_FOUND") return jsonError(404, "no such endpoint", "not_found", {}, cors);
      if (code === "PARSE") return jsonError(400, "the request body could not be parsed", "bad_request", {}, cors);
      if (code === "VALIDATION") return jsonError(400, (error as Error).message, "validation_error", {}, cors);
      const e = toHttpError(error);
      if (e.status >= 500) console.error(error);
      return jsonError(e.status, e.message, e.code, e.extra, cors);
    })
    .get("/health", () => ({ status: "ok", jobs: engine.list().length, uptime_s: Math.round(process.uptime()) }))
    .get("/progress/:id", ({ params }) => progressView(eventOf(known(params.id))))
    .get("/progress/:id/stream", ({ params, request, query, set }) => {
      known(params.id);
      set.headers["cache-control"] = "no-cache";
      set.headers["x-accel-buffering"] = "no";
      return progressStream(engine, params.id, lastEventId(request, query), request.signal);
    })
    .get("/jobs", ({ request }) => ({ jobs: engine.list().map((j) => jobView(j, baseUrl(request))) }))
    .get("/jobs/:id", ({ params, request }) => jobView(known(params.id), baseUrl(request)))
    .delete("/jobs/:id", ({ params }) => {
      const j = known(params.id);
      if (isTerminal(j.status)) throw new HttpError(409, `job ${j.id} already ended (${j.status})`, "job_finished");
      engine.cancel(j.id);
      return progressView(eventOf(known(params.id)));
    })
    .get("/jobs/:id/result", ({ params, set }) => {
      const j = known(params.id);
      if (j.status === "error") throw new HttpError(422, j.error ?? "the job failed", "job_failed", { job_id: j.id, stage: j.stage });
      if (j.status === "cancelled") throw new HttpError(409, "the job was cancelled", "job_cancelled", { job_id: j.id });
      if (j.status !== "completed") {
        set.status = 202;
        return { job_id: j.id, status: j.status, progress: j.progress };
      }
      return j.meta.result ?? { job_id: j.id, status: j.status, meta: j.meta };
    })
    .get("/files/:id", ({ params, request }) => {
      const view = jobView(known(params.id), baseUrl(request));
      return { file_id: view.job_id, status: view.status, files: Object.values(view.results) };
    })
    .get("/files/:id/:name", ({ params }) => {
      const j = known(params.id);
      const ref = j.results[decodeURIComponent(params.name)];
      const path = ref?.file && files.path(j.id, ref.file);
      if (!ref || !path || !existsSync(path)) throw new HttpError(404, `job ${j.id} has no file named ${params.name}`, "file_not_found");
      return new Response(Bun.file(path), {
        headers: { "content-type": ref.content_type ?? "application/octet-stream", "content-disposition": `attachment; filename="${ref.file}"`, ...cors },
      });
    })
    .post("/upload", async ({ request, query }) => {
      // Without a model the upload is only decoded (intake); with one it becomes a music job.
      if (!query.model) {
        const { job, upload } = await ctx.acceptUpload(request, query, "intake", INTAKE_STAGES);
        engine.run(job, (j) => runIntake(j, upload.bytes, files, config.maxDurationS).then(() => {}));
        return uploadAnswer(job, baseUrl(request));
      }
      models.resolveSeparation(query.model);
      const opts = separationOptions(query);
      const { job, upload } = await ctx.acceptUpload(request, query, "music", MUSIC_STAGES, "complete");
      job.setMeta("model", query.model);
      job.setMeta("separation", opts);
      const auto = query.auto_process !== "false";
      if (auto) startMusic(job, upload.bytes, opts);
      else {
        // A stored upload is kept for the retention period unless processing starts.
        job.setMeta("awaiting_process", true);
        job.stage("uploading").progress(1, `stored; POST /process/${job.id} to start`);
        engine.store.expire(job.id, config.retentionMs, (s) => files.remove(s.id));
      }
      return { ...uploadAnswer(job, baseUrl(request)), auto_process: auto };
    }, { parse: "none" })
    .post("/process/:id", async ({ params, request, query }) => {
      const j = known(params.id);
      const job = engine.job(params.id);
      if (j.kind !== "music" || !j.meta.awaiting_process || !job) {
        throw new HttpError(409, `file ${params.id} is not a stored upload waiting to be processed (status ${j.status})`, "not_processable");
      }
      const opts = { ...(j.meta.separation as SeparateOptions), ...separationOptions(query) };
      job.setMeta("separation", opts); // what it runs with: the upload's options, overridden by these
      job.setMeta("awaiting_process", false);
      engine.store.keep(job.id);
      const bytes = new Uint8Array(await Bun.file(files.path(j.id, j.results.input!.file!)).arrayBuffer());
      startMusic(job, bytes, opts);
      return uploadAnswer(job, baseUrl(request));
    })
    .use(transcribeRoutes(ctx, models))
    .use(wsRoutes(engine, () => server))
    .use(sio.routes)
    .use(webRoutes(config));

  return {
    app, engine, files, ctx, models,
    listen() {
      // Bun's own cap is only a backstop: our streaming check answers 413 with a JSON body first.
      app.listen({ hostname: config.host, port: config.port, maxRequestBodySize: config.maxUploadBytes * 2 + 64 * 1024 * 1024, websocket: sio.websocket as never });
      server = app.server as Server<unknown>;
      return server;
    },
    async stop() {
      engine.close();
      await models.close();
      sio.close();
      await app.stop(true);
    },
  };
}

export function uploadAnswer(job: Job, base: string) {
  return {
    job_id: job.id, file_id: job.id, filename: job.state.meta.filename, status: job.state.status,
    progress_url: `${base}/progress/${job.id}`, stream_url: `${base}/progress/${job.id}/stream`,
    ws_url: `${base.replace(/^http/, "ws")}/ws`, files_url: `${base}/files/${job.id}`,
  };
}

export type { JobWork };

/** Demucs' options from the query string, validated. */
function separationOptions(q: Record<string, string | undefined>): SeparateOptions {
  const opts: SeparateOptions = {};
  const num = (k: string, lo: number, hi: number) => {
    if (q[k] === undefined || q[k] === "") return undefined;
    const n = Number(q[k]);
    if (!Number.isFinite(n) || n < lo || n > hi) throw new HttpError(400, `${k} must be a number from ${lo} to ${hi}`, "invalid_value");
    return n;
  };
  const overlap = num("overlap", 0, 0.99);
  const shifts = num("shifts", 0, 10);
  const segment = num("segment", 1, 7.8);
  const power = num("transition_power", 0, 10);
  if (power !== undefined) opts.transitionPower = power;
  if (overlap !== undefined) opts.overlap = overlap;
  if (shifts !== undefined) opts.shifts = Math.floor(shifts);
  if (segment !== undefined) opts.segment = segment;
  return opts;
}
