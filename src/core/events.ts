// In-process fan-out of job events. Transports subscribe per job or to "*" (all jobs);
// the WebSocket transport bridges this onto Bun's native pub/sub topics.
import type { JobEvent } from "./types";

export type Listener = (e: JobEvent) => void;

export class EventHub {
  private topics = new Map<string, Set<Listener>>();

  subscribe(topic: string, fn: Listener): () => void {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (!set!.size) this.topics.delete(topic);
    };
  }

  publish(e: JobEvent) {
    for (const topic of [e.job_id, "*"]) {
      for (const fn of this.topics.get(topic) ?? []) {
        try {
          fn(e);
        } catch {
          // One broken subscriber must not stop delivery to the others.
        }
      }
    }
  }
}
