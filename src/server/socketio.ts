// Socket.IO for seed 001's client (`io(url).on('processing_progress', …)`), on @socket.io/bun-engine.
// Elysia owns Bun's fetch and websocket handlers, so /socket.io/ requests are routed to the engine
// and the websocket handlers below dispatch engine sockets to it and everything else to Elysia.
import { Server as Engine } from "@socket.io/bun-engine";
import { Elysia } from "elysia";
import { Server as IO } from "socket.io";
import type { JobEngine } from "../core/engine";
import { processingProgress } from "./views";

export function socketIo(engine: JobEngine, corsOrigin: string) {
  const io = new IO({ cors: { origin: corsOrigin } });
  const eio = new Engine({ path: "/socket.io/", cors: { origin: corsOrigin } });
  io.bind(eio as never);

  io.on("connection", (socket) => {
    // Seed 001 broadcasts every job's events; a client may also narrow to one job's room.
    socket.on("subscribe", (id: unknown) => typeof id === "string" && socket.join(`job:${id}`));
    socket.on("unsubscribe", (id: unknown) => typeof id === "string" && socket.leave(`job:${id}`));
  });
  engine.hub.subscribe("*", (e) => {
    if (io.engine.clientsCount === 0) return;
    io.emit("processing_progress", processingProgress(e).data);
  });

  const routes = new Elysia({ name: "socket.io" }).all(
    "/socket.io/*",
    ({ request, server }) => eio.handleRequest(request, server as never),
    { parse: "none" },
  );

  const handler = eio.handler().websocket;
  const isEngine = (ws: { data: unknown }) => !!(ws.data as { transport?: unknown })?.transport;
  type Ws = { data: any };
  /** Bun websocket handlers serving both Elysia's /ws and Socket.IO's sockets. */
  const websocket = {
    open: (ws: Ws) => (isEngine(ws) ? handler.open(ws as never) : ws.data.open?.(ws)),
    message: (ws: Ws, m: any) => (isEngine(ws) ? handler.message(ws as never, m) : ws.data.message?.(ws, m)),
    close: (ws: Ws, code: number, reason: string) => (isEngine(ws) ? handler.close(ws as never, code, reason) : ws.data.close?.(ws, code, reason)),
    drain: (ws: Ws) => (isEngine(ws) ? undefined : ws.data.drain?.(ws)),
  };
  return { routes, websocket, close: () => io.close() };
}
