// Where job state lives. The engine only talks to JobStore, so a networked store (Redis, SQL)
// can replace the in-memory one without touching transports or pipelines. The interface is
// synchronous on purpose (progress is written many times a second from hot loops): a networked
// store implements it as a local mirror that answers reads at once and replicates writes, events
// and expiries to the backend in the background (and, for several servers, mirrors their jobs
// from the backend's pub/sub).
import type { JobEvent, JobState } from "./types";

export interface JobStore {
  get(id: string): JobState | undefined;
  has(id: string): boolean;
  put(job: JobState): void;
  list(): JobState[];
  delete(id: string): void;
  /** Remember an event for Last-Event-ID replay. */
  appendEvent(e: JobEvent): void;
  eventsAfter(id: string, seq: number): JobEvent[];
  /** Remove the job `afterMs` from now; `onExpire` runs first (to delete its files). */
  expire(id: string, afterMs: number, onExpire: (job: JobState) => void): void;
  /** Cancel a pending expiry (a stored upload whose processing starts). */
  keep(id: string): void;
  close(): void;
}

const MAX_EVENTS_PER_JOB = 1000;

export class MemoryJobStore implements JobStore {
  private jobs = new Map<string, JobState>();
  private events = new Map<string, JobEvent[]>();
  private timers = new Map<string, ReturnType<typeof setTimeout>>();

  get(id: string) { return this.jobs.get(id); }
  has(id: string) { return this.jobs.has(id); }
  put(job: JobState) { this.jobs.set(job.id, job); }
  list() { return [...this.jobs.values()].sort((a, b) => b.created_at - a.created_at || (b.id < a.id ? -1 : 1)); }

  delete(id: string) {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
    this.jobs.delete(id);
    this.events.delete(id);
  }

  appendEvent(e: JobEvent) {
    let log = this.events.get(e.job_id);
    if (!log) this.events.set(e.job_id, (log = []));
    log.push(e);
    // Replay needs recent history only; the oldest events go first.
    if (log.length > MAX_EVENTS_PER_JOB) log.splice(0, log.length - MAX_EVENTS_PER_JOB);
  }

  eventsAfter(id: string, seq: number) {
    return (this.events.get(id) ?? []).filter((e) => e.seq > seq);
  }

  expire(id: string, afterMs: number, onExpire: (job: JobState) => void) {
    const old = this.timers.get(id);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.timers.delete(id);
      const job = this.jobs.get(id);
      if (job) onExpire(job);
      this.delete(id);
    }, afterMs);
    // A pending cleanup must not keep the process alive on shutdown.
    (t as { unref?: () => void }).unref?.();
    this.timers.set(id, t);
  }

  keep(id: string) {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  /** Pending cleanup timers (tests check that none outlives its job). */
  get timerCount() { return this.timers.size; }

  close() {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
