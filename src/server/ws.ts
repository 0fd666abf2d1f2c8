// /ws: Bun's native WebSocket pub/sub. One topic per job ("job:<id>") and one for all jobs ("jobs:*").
// The engine's events are published once per topic; Bun fans them out to every subscribed socket.
import { Elysia } from "elysia";
import type { Server } from "bun";
import { JOB_ID_PATTERN, type JobEngine } from "../core/engine";
import { eventOf } from "../core/types";
import { processingProgress } from "./views";

const topicOf = (target: string) => (target === "*" ? "jobs:*" : `job:${target}`);

export function wsRoutes(engine: JobEngine, getServer: () => Server<unknown> | null) {
  engine.hub.subscribe("*", (e) => {
    const server = getServer();
    if (!server) return;
    const payload = JSON.stringify(processingProgress(e));
    for (const topic of [topicOf(e.job_id), topicOf("*")]) {
      if (server.subscriberCount(topic) > 0) server.publish(topic, payload);
    }
  });

  const errorFrame = (message: string) => JSON.stringify({ event: "error", data: { message } });

  return new Elysia().ws("/ws", {
    // Raw strings: we validate ourselves so a malformed frame gets an error frame, not a closed socket.
    // Nothing is returned: Elysia would send a handler's return value as a frame.
    message(ws, raw) {
      const reply = (o: unknown) => { ws.send(typeof o === "string" ? o : JSON.stringify(o)); };
      let msg: unknown = raw;
      if (typeof raw === "string") {
        try { msg = JSON.parse(raw); } catch { return reply(errorFrame("message is not valid JSON")); }
      }
      if (!msg || typeof msg !== "object") return reply(errorFrame('expected {"subscribe": "<job_id>"} or {"unsubscribe": "<job_id>"}'));
      const m = msg as Record<string, unknown>;
      const target = m.subscribe ?? m.unsubscribe;
      if (typeof target !== "string" || !(target === "*" || JOB_ID_PATTERN.test(target))) {
        return reply(errorFrame('expected {"subscribe": "<job_id>" | "*"} or {"unsubscribe": "<job_id>" | "*"}'));
      }
      if (m.unsubscribe !== undefined) {
        ws.unsubscribe(topicOf(target));
        return reply({ event: "unsubscribed", data: { target } });
      }
      ws.subscribe(topicOf(target));
      const known = target === "*" ? engine.list() : [engine.get(target)].filter((j) => j !== undefined);
      reply({ event: "subscribed", data: { target, known: target === "*" || known.length > 0 } });
      // The current state at once, so a late subscriber needs no polling.
      for (const j of known.slice().reverse()) reply(processingProgress(eventOf(j)));
    },
  });
}
