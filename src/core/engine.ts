// The job engine: creates jobs, runs them through a FIFO queue, turns stage fractions into
// monotonic overall progress with an ETA, and emits one event stream that every transport reads.
import { nanoid } from "nanoid";
import { EventHub } from "./events";
import { WorkQueue } from "./queue";
import type { JobStore } from "./store";
import { eventOf, isTerminal, type JobState, type ResultRef, type StageSpec } from "./types";
import { CancelledError, type WorkContext } from "./work";

export interface EngineOptions {
  store: JobStore;
  concurrency: number;
  retentionMs: number;
  /** Called when a finished job is removed (delete its files here). */
  onExpire?: (job: JobState) => void;
  /** Minimum gap between two progress events of one job; stage changes and the end are never delayed. */
  progressIntervalMs?: number;
}

export interface CreateOptions {
  id?: string;
  meta?: Record<string, unknown>;
  /** Name of the stage reported once the job completes (seed 001 calls it "complete"). */
  doneStage?: string;
}

export type JobWork = (job: Job) => Promise<void>;

export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{6,64}$/;

export class JobEngine {
  readonly hub = new EventHub();
  readonly store: JobStore;
  private live = new Map<string, Job>();
  private queue: WorkQueue;

  constructor(readonly opts: EngineOptions) {
    this.store = opts.store;
    this.queue = new WorkQueue(opts.concurrency, (positions) => {
      for (const [id, pos] of positions) this.live.get(id)?.setQueuePosition(pos);
    });
  }

  create(kind: string, stages: StageSpec[], o: CreateOptions = {}): Job {
    const id = o.id ?? nanoid(12);
    if (o.id !== undefined && !JOB_ID_PATTERN.test(id)) throw new JobIdError(`job_id must match ${JOB_ID_PATTERN}`);
    if (this.store.has(id)) throw new JobIdError(`job_id ${id} is already taken`);
    const now = Date.now();
    const state: JobState = {
      id, kind, status: "queued", stage: null, stage_progress: 0, progress: 0, message: "waiting to start",
      error: null, seq: 0, created_at: now, updated_at: now, started_at: null, finished_at: null, eta_s: null,
      stage_eta_s: null, queue_position: null, stages: stages.map((s) => ({ name: s.name, status: "pending", progress: 0 })),
      results: {}, meta: o.meta ?? {},
    };
    const job = new Job(this, state, stages, o.doneStage ?? "completed");
    this.store.put(state);
    this.live.set(id, job);
    job.emit(true);
    return job;
  }

  /** Queue the job's work; it starts when a slot is free. */
  run(job: Job, work: JobWork) {
    if (isTerminal(job.state.status)) return;
    this.queue.enqueue(job.id, () => {
      job.setQueuePosition(null);
      if (isTerminal(job.state.status)) return this.queue.release();
      work(job)
        .then(() => job.complete())
        .catch((e) => job.fail(e))
        .finally(() => this.queue.release());
    });
  }

  get(id: string) { return this.store.get(id); }
  list() { return this.store.list(); }
  job(id: string) { return this.live.get(id); }

  /** Cancel a queued or running job; false if unknown or already finished. */
  cancel(id: string): boolean {
    const job = this.live.get(id);
    if (!job || isTerminal(job.state.status)) return false;
    this.queue.remove(id);
    job.cancel();
    return true;
  }

  /** @internal called by Job once it reaches a terminal state. */
  finished(job: Job) {
    this.live.delete(job.id);
    this.store.expire(job.id, this.opts.retentionMs, (s) => this.opts.onExpire?.(s));
  }

  close() {
    for (const job of this.live.values()) job.cancel();
    this.store.close();
  }
}

export class JobIdError extends Error {}

const round1 = (x: number) => Math.round(x * 10) / 10;
/** Seconds left at the rate so far, once there is something to go by (half a second, 1%). */
const etaOf = (pct: number, elapsedS: number) => (elapsedS > 0.5 && pct >= 1 ? round1((elapsedS * (100 - pct)) / pct) : null);

export class Job {
  readonly controller = new AbortController();
  private lastEmit = 0;
  private pending: ReturnType<typeof setTimeout> | null = null;
  private current: StageSpec | null = null;
  private stageStartedAt = 0;

  constructor(
    private engine: JobEngine,
    readonly state: JobState,
    private plan: StageSpec[],
    private doneStage: string,
  ) {}

  get id() { return this.state.id; }
  get signal() { return this.controller.signal; }

  /** Enter a stage (marking earlier ones done) and get the context its work reports through. */
  stage(name: string, message = `${name}…`): WorkContext {
    const spec = this.plan.find((s) => s.name === name);
    if (!spec) throw new Error(`stage ${name} is not in the plan of a ${this.state.kind} job`);
    this.throwIfCancelled();
    const s = this.state;
    if (this.current === spec) return this.contextFor(spec);
    this.closeStage();
    for (const st of s.stages) {
      if (st.name === name) { st.status = "running"; break; }
      if (st.status !== "done") { st.status = "done"; st.progress = 100; }
    }
    this.current = spec;
    s.status = name;
    s.stage = name;
    s.stage_progress = 0;
    s.stage_eta_s = null;
    s.started_at ??= Date.now();
    this.stageStartedAt = Date.now();
    this.setProgress(spec.from, 0, message, true);
    return this.contextFor(spec);
  }

  /** Close the running stage visibly: its own bar ends at 100 before the next stage (or the end). */
  private closeStage() {
    if (!this.current) return;
    const s = this.state;
    s.stage_progress = 100;
    s.stage_eta_s = 0;
    s.progress = Math.max(s.progress, this.current.to);
    this.current = null;
    this.emit(true);
  }

  private contextFor(spec: StageSpec): WorkContext {
    const s = this.state;
    return {
      signal: this.signal,
      progress: (fraction, msg) => {
        if (this.current !== spec || isTerminal(s.status)) return;
        const f = Math.max(0, Math.min(1, fraction));
        this.setProgress(spec.from + (spec.to - spec.from) * f, f * 100, msg ?? s.message, false);
      },
    };
  }

  addResult(ref: ResultRef) {
    this.state.results[ref.name] = ref;
  }

  setMeta(key: string, value: unknown) {
    this.state.meta[key] = value;
  }

  throwIfCancelled() {
    if (this.signal.aborted) throw new CancelledError();
  }

  setQueuePosition(pos: number | null) {
    const s = this.state;
    if (s.queue_position === pos || isTerminal(s.status)) return;
    s.queue_position = pos;
    if (pos !== null) s.message = `queued, position ${pos}`;
    this.emit(true);
  }

  complete(message = "done") {
    if (isTerminal(this.state.status)) return;
    this.closeStage();
    const s = this.state;
    for (const st of s.stages) { st.status = "done"; st.progress = 100; }
    this.end("completed", this.doneStage, message, null);
    s.progress = 100;
    s.stage_progress = 100;
    this.emit(true);
  }

  fail(e: unknown) {
    if (isTerminal(this.state.status)) return;
    if (e instanceof CancelledError || this.signal.aborted) return this.cancel();
    const msg = e instanceof Error ? e.message : String(e);
    const st = this.state.stages.find((x) => x.name === this.state.stage);
    if (st) st.status = "error";
    this.end("error", this.state.stage, msg, msg);
    this.emit(true);
  }

  cancel() {
    if (isTerminal(this.state.status)) return;
    this.controller.abort();
    const st = this.state.stages.find((x) => x.name === this.state.stage);
    if (st) st.status = "cancelled";
    this.end("cancelled", this.state.stage, "cancelled", null);
    this.emit(true);
  }

  private end(status: "completed" | "error" | "cancelled", stage: string | null, message: string, error: string | null) {
    const s = this.state;
    s.status = status;
    s.stage = stage;
    s.message = message;
    s.error = error;
    s.eta_s = status === "completed" ? 0 : null;
    s.stage_eta_s = status === "completed" ? 0 : null;
    s.queue_position = null;
    s.finished_at = Date.now();
    this.current = null;
  }

  private setProgress(overall: number, stagePct: number, message: string, force: boolean) {
    const s = this.state;
    // Never backwards: within a job overall progress only grows, and so does a stage's own.
    s.progress = Math.max(s.progress, round1(overall));
    s.stage_progress = Math.max(s.stage_progress, round1(stagePct));
    const st = s.stages.find((x) => x.name === s.stage);
    if (st) st.progress = s.stage_progress;
    s.message = message;
    // Remaining time at the rate so far: the job's from its overall progress, the stage's from its own
    // (a stage bar's ETA is when that stage ends, not the job).
    const now = Date.now();
    if (s.started_at && s.progress > 0 && s.progress < 100) s.eta_s = etaOf(s.progress, (now - s.started_at) / 1000);
    s.stage_eta_s = s.stage_progress >= 100 ? 0 : etaOf(s.stage_progress, (now - this.stageStartedAt) / 1000);
    this.emit(force);
  }

  /** Publish the current state as an event; progress-only updates are coalesced. */
  emit(force: boolean) {
    const s = this.state;
    s.updated_at = Date.now();
    const gap = this.engine.opts.progressIntervalMs ?? 50;
    if (!force && s.updated_at - this.lastEmit < gap) {
      this.pending ??= setTimeout(() => { this.pending = null; this.emit(true); }, gap - (s.updated_at - this.lastEmit));
      return;
    }
    if (this.pending) { clearTimeout(this.pending); this.pending = null; }
    this.lastEmit = s.updated_at;
    s.seq++;
    const ev = eventOf(s);
    this.engine.store.put(s);
    this.engine.store.appendEvent(ev);
    this.engine.hub.publish(ev);
    if (isTerminal(s.status)) this.engine.finished(this);
  }
}
