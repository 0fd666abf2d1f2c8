// The job model shared by the engine, the store and every transport.
export type TerminalStatus = "completed" | "error" | "cancelled";
/** `queued`, a stage name of the job's plan, or a terminal status. */
export type JobStatus = "queued" | TerminalStatus | (string & {});

export interface StageSpec {
  name: string;
  /** Overall progress (0-100) when the stage starts and when it ends. */
  from: number;
  to: number;
}

export interface ResultRef {
  name: string;
  /** Path relative to the job's directory (files), or absent for inline values. */
  file?: string;
  content_type?: string;
  bytes?: number;
}

export interface StageState {
  name: string;
  status: "pending" | "running" | "done" | "error" | "cancelled";
  progress: number; // 0-100 within the stage
}

export interface JobState {
  id: string;
  kind: string;
  status: JobStatus;
  stage: string | null;
  stage_progress: number;
  progress: number;
  message: string;
  error: string | null;
  seq: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** Seconds until the whole job is done, from its overall rate so far (null until measurable). */
  eta_s: number | null;
  /** Seconds until the running stage is done, from that stage's own rate (null until measurable). */
  stage_eta_s: number | null;
  queue_position: number | null;
  stages: StageState[];
  results: Record<string, ResultRef>;
  /** Free-form, JSON-safe job parameters and outcome (e.g. file name, duration, transcript). */
  meta: Record<string, unknown>;
}

/** The fields of a job that change as it runs; every event carries them. */
type LiveFields = "seq" | "status" | "stage" | "stage_progress" | "progress" | "message" | "error" | "eta_s" | "stage_eta_s" | "queue_position";

/** One change of a job, as every transport sends it. */
export type JobEvent = Pick<JobState, LiveFields> & { job_id: string; ts: number };

export const isTerminal = (s: JobStatus): s is TerminalStatus => s === "completed" || s === "error" || s === "cancelled";

export function eventOf(j: JobState): JobEvent {
  return {
    job_id: j.id, seq: j.seq, status: j.status, stage: j.stage, stage_progress: j.stage_progress,
    progress: j.progress, message: j.message, error: j.error, eta_s: j.eta_s, stage_eta_s: j.stage_eta_s, queue_position: j.queue_position,
    ts: j.updated_at,
  };
}
