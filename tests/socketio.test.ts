// Seed 001's client code, unchanged, against the server's Socket.IO endpoint.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { io } from "socket.io-client";
import { fixture, openWs, startServer, upload, waitDone, type TestServer } from "./helpers/server";

let s: TestServer;
beforeAll(async () => { s = await startServer(); });
afterAll(async () => { await s.close(); });

for (const transports of [["websocket"], ["polling", "websocket"]]) {
  test(`io(url).on('processing_progress') receives a job's events (${transports.join(" → ")}), beside /ws`, async () => {
    const socket = io(s.url, { transports });
    const events: any[] = [];
    socket.on("processing_progress", (data: any) => events.push(data));
    await new Promise<void>((r) => socket.on("connect", () => r()));
    const native = await openWs(s.wsUrl); // the native WebSocket keeps working beside Socket.IO
    native.send({ subscribe: "*" });
    await native.waitFor((f) => f.event === "subscribed");
    const r = await upload(s.url, "/upload", await fixture("song/mixture.ogg"));
    const { file_id } = (await r.json()) as any;
    await waitDone(s.url, file_id);
    const deadline = Date.now() + 5000;
    while (!events.some((e) => e.file_id === file_id && e.status === "completed") && Date.now() < deadline) await Bun.sleep(20);
    const mine = events.filter((e) => e.file_id === file_id);
    expect(mine.at(-1)).toMatchObject({ status: "completed", error: null, progress: 100 });
    expect(mine.map((e) => e.stage)).toContain("preprocessing");
    for (let i = 1; i < mine.length; i++) expect(mine[i].seq).toBeGreaterThan(mine[i - 1].seq);
    await native.waitFor((f) => f.event === "processing_progress" && f.data.file_id === file_id && f.data.status === "completed");
    socket.close();
    native.close();
  });
}
