// How a job is shown on the wire. Polling, SSE and WebSocket all derive from these two shapes.
import type { JobEvent, JobState } from "../core/types";

/** GET /progress/{id} and every SSE event: the seed's four fields first. */
export function progressView(e: JobEvent) {
  return {
    status: e.status, progress: e.progress, message: e.message, job_id: e.job_id,
    stage: e.stage, stage_progress: e.stage_progress, eta_s: e.eta_s, stage_eta_s: e.stage_eta_s, seq: e.seq, error: e.error,
    queue_position: e.queue_position,
  };
}

/** Seed 001's WebSocket payload: `progress` is the stage's own 0-100; `overall_progress` the job's. */
export function processingProgress(e: JobEvent) {
  return {
    event: "processing_progress",
    data: {
      file_id: e.job_id, stage: e.stage, progress: e.stage_progress, message: e.message, error: e.error,
      seq: e.seq, status: e.status, overall_progress: e.progress, eta_s: e.eta_s, stage_eta_s: e.stage_eta_s,
      queue_position: e.queue_position,
    },
  };
}

/** GET /jobs and /jobs/{id}. */
export function jobView(j: JobState, base = "") {
  return {
    job_id: j.id, kind: j.kind, status: j.status, stage: j.stage, progress: j.progress, stage_progress: j.stage_progress,
    message: j.message, error: j.error, seq: j.seq, eta_s: j.eta_s, stage_eta_s: j.stage_eta_s, queue_position: j.queue_position,
    created_at: new Date(j.created_at).toISOString(), updated_at: new Date(j.updated_at).toISOString(),
    finished_at: j.finished_at ? new Date(j.finished_at).toISOString() : null,
    // The transcript itself is served by /jobs/{id}/result, not repeated in every listing.
    stages: j.stages, meta: Object.fromEntries(Object.entries(j.meta).filter(([k]) => k !== "result")),
    results: Object.fromEntries(Object.entries(j.results).map(([k, r]) => [k, { ...r, url: r.file ? `${base}/files/${j.id}/${encodeURIComponent(r.name)}` : undefined }])),
  };
}
