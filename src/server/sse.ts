// GET /progress/{id}/stream through Elysia's built-in generator SSE (text/event-stream).
// Cadence: at most one event per 100 ms, at least one per 500 ms while running, a heartbeat
// comment every 15 s, replay after Last-Event-ID, and the stream ends after the terminal event.
import { sse } from "elysia";
import type { JobEngine } from "../core/engine";
import { eventOf, isTerminal, type JobEvent } from "../core/types";
import { progressView } from "./views";

export const SSE_MIN_GAP_MS = 100;
export const SSE_MAX_GAP_MS = 500;
export const SSE_HEARTBEAT_MS = 15_000;
export const SSE_RETRY_MS = 2_000;
const HEARTBEAT = new TextEncoder().encode(": heartbeat\n\n");

const frame = (e: JobEvent, first = false) =>
  sse({ id: e.seq, data: progressView(e), ...(first ? { retry: SSE_RETRY_MS } : {}) });

export async function* progressStream(engine: JobEngine, id: string, lastEventId: number | null, abort: AbortSignal) {
  const state = engine.get(id)!;
  let latest: JobEvent | null = null;
  let wake: (() => void) | null = null;
  const unsubscribe = engine.hub.subscribe(id, (e) => {
    latest = e;
    wake?.();
  });
  const onAbort = () => wake?.();
  abort.addEventListener("abort", onAbort);
  try {
    // Replay what a reconnecting client missed; a fresh client gets the current state.
    const backlog = lastEventId !== null ? engine.store.eventsAfter(id, lastEventId) : [eventOf(state)];
    let sentSeq = lastEventId ?? -1;
    let first = true;
    for (const e of backlog) {
      yield frame(e, first);
      first = false;
      sentSeq = e.seq;
    }
    if (first) yield sse({ retry: SSE_RETRY_MS });
    if (isTerminal(state.status) && sentSeq >= state.seq) return;
    let lastSent = Date.now();
    let lastWrite = lastSent;
    while (!abort.aborted) {
      const now = Date.now();
      const current = latest as JobEvent | null;
      const fresh = current && current.seq > sentSeq;
      if (fresh && (now - lastSent >= SSE_MIN_GAP_MS || isTerminal(current.status))) {
        yield frame(current);
        sentSeq = current.seq;
        lastSent = lastWrite = now;
        if (isTerminal(current.status)) return;
        continue;
      }
      const now_ = engine.get(id) ?? state;
      const running = !isTerminal(now_.status) && now_.status !== "queued";
      if (!fresh && running && now - lastSent >= SSE_MAX_GAP_MS) {
        // Nothing changed, but a running job still reports its state (and fresh ETA) twice a second.
        yield frame(eventOf(now_));
        lastSent = lastWrite = now;
        continue;
      }
      if (now - lastWrite >= SSE_HEARTBEAT_MS) {
        yield HEARTBEAT;
        lastWrite = now;
      }
      const wait = fresh
        ? SSE_MIN_GAP_MS - (now - lastSent)
        : running ? SSE_MAX_GAP_MS - (now - lastSent) : SSE_HEARTBEAT_MS - (now - lastWrite);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { wake = null; resolve(); }, Math.max(1, wait));
        wake = () => { clearTimeout(t); wake = null; resolve(); };
      });
    }
  } finally {
    unsubscribe();
    abort.removeEventListener("abort", onAbort);
  }
}
