// Start a real server on an ephemeral port with a throwaway data directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS, type Config } from "../../src/config";
import { createApp } from "../../src/server/app";
import type { Job } from "../../src/core/engine";

export const FIXTURES = join(import.meta.dir, "../../../shared/fixtures");

export async function startServer(over: Partial<Config> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "stemscribe-test-"));
  // Tests never reach the network: Hub model names are refused unless a test says otherwise.
  const s = createApp({ ...DEFAULTS, host: "127.0.0.1", port: 0, dataDir, offline: true, ...over });
  const server = s.listen();
  const url = `http://127.0.0.1:${server.port}`;
  return {
    ...s,
    url,
    wsUrl: `ws://127.0.0.1:${server.port}/ws`,
    dataDir,
    async close() {
      await s.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof startServer>>;

export async function fixture(rel: string): Promise<File> {
  const f = Bun.file(join(FIXTURES, rel));
  return new File([await f.arrayBuffer()], rel.split("/").pop()!);
}

export async function upload(base: string, path: string, file: File, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append("file", file);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return fetch(base + path, { method: "POST", body: form });
}

/** Poll GET /progress/{id} until the job is terminal. */
export async function waitDone(base: string, id: string, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(`${base}/progress/${id}`);
    const body = (await r.json()) as { status: string };
    if (["completed", "error", "cancelled"].includes(body.status)) return body as Record<string, any>;
    if (Date.now() > end) throw new Error(`job ${id} still ${body.status} after ${timeoutMs} ms`);
    await Bun.sleep(25);
  }
}

/**
 * A job that does `steps` units of `stepMs` each, checking the abort signal between units
 * like the real stages do; used to test the engine and transports with exact timing.
 */
export function startTimedJob(s: TestServer, steps: number, stepMs: number, id?: string): Job {
  const job = s.engine.create("test", [{ name: "working", from: 0, to: 100 }], { id });
  s.engine.run(job, async (j) => {
    const ctx = j.stage("working");
    for (let i = 1; i <= steps; i++) {
      await Bun.sleep(stepMs);
      j.throwIfCancelled();
      ctx.progress(i / steps, `step ${i}/${steps}`);
    }
  });
  return job;
}

/** A WebSocket that records every JSON frame and can wait for one matching a predicate. */
export async function openWs(url: string) {
  const ws = new WebSocket(url);
  const frames: any[] = [];
  const waiters: { pred: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  ws.onmessage = (m) => {
    const f = JSON.parse(String(m.data));
    frames.push(f);
    for (const w of waiters.splice(0)) (w.pred(f) ? w.resolve(f) : waiters.push(w));
  };
  await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
  return {
    ws, frames,
    send: (o: unknown) => ws.send(typeof o === "string" ? o : JSON.stringify(o)),
    waitFor(pred: (f: any) => boolean, timeoutMs = 30_000): Promise<any> {
      const found = frames.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("timed out waiting for a WebSocket frame")), timeoutMs);
        waiters.push({ pred, resolve: (f) => { clearTimeout(t); resolve(f); } });
      });
    },
    close: () => ws.close(),
  };
}
