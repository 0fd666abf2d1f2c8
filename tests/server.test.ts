// The foundation through a real server: polling, SSE (with reconnect), WebSocket, listing,
// cancellation, retention cleanup and 404s.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EventSource } from "eventsource";
import { existsSync } from "node:fs";
import { fixture, openWs, startServer, startTimedJob, upload, waitDone, type TestServer } from "./helpers/server";

let s: TestServer;
beforeAll(async () => { s = await startServer({ retentionMs: 60_000 }); });
afterAll(async () => { await s.close(); });

describe("polling", () => {
  test("an upload reports uploading then preprocessing and completes with results", async () => {
    const r = await upload(s.url, "/upload", await fixture("song/mixture.mp3"));
    expect(r.status).toBe(200);
    const { job_id } = (await r.json()) as { job_id: string };
    const seen: any[] = [];
    for (;;) {
      const p = (await (await fetch(`${s.url}/progress/${job_id}`)).json()) as any;
      seen.push(p);
      if (p.status === "completed") break;
      expect(p.status).not.toBe("error");
      await Bun.sleep(10);
    }
    const last = seen.at(-1);
    expect(Object.keys(last).slice(0, 4)).toEqual(["status", "progress", "message", "job_id"]);
    expect(last).toMatchObject({ progress: 100, job_id, seq: expect.any(Number), error: null });
    for (let i = 1; i < seen.length; i++) expect(seen[i].progress).toBeGreaterThanOrEqual(seen[i - 1].progress);
    const job = (await (await fetch(`${s.url}/jobs/${job_id}`)).json()) as any;
    expect(job.meta).toMatchObject({ sample_rate: 44100, channels: 2, format: "mp3" });
    expect(job.stages.map((x: any) => x.status)).toEqual(["done", "done"]);
    const wav = await fetch(job.results["audio.wav"].url);
    expect(wav.status).toBe(200);
    expect((await wav.arrayBuffer()).byteLength).toBe(44 + 32 * 44100 * 2 * 2);
  });

  test("unknown ids get a 404 JSON error everywhere", async () => {
    for (const [method, path] of [["GET", "/progress/nosuchjob"], ["GET", "/progress/nosuchjob/stream"], ["GET", "/jobs/nosuchjob"], ["DELETE", "/jobs/nosuchjob"], ["GET", "/files/nosuchjob"], ["GET", "/jobs/nosuchjob/result"]]) {
      const r = await fetch(s.url + path, { method });
      expect(r.status).toBe(404);
      expect(r.headers.get("content-type")).toContain("application/json");
      expect(((await r.json()) as any).error.code).toBe("job_not_found");
    }
  });

  test("GET /jobs lists newest first", async () => {
    const a = startTimedJob(s, 1, 1);
    await Bun.sleep(5);
    const b = startTimedJob(s, 1, 1);
    await waitDone(s.url, b.id);
    const { jobs } = (await (await fetch(`${s.url}/jobs`)).json()) as any;
    const ids = jobs.map((j: any) => j.job_id);
    expect(ids.indexOf(b.id)).toBeLessThan(ids.indexOf(a.id));
    expect(jobs[0]).toHaveProperty("progress");
  });

  test("a client-chosen job_id is validated and rejected if taken", async () => {
    const file = await fixture("speech/harvard-01.wav");
    const ok = await upload(s.url, "/upload?job_id=my-own-id-1", file);
    expect(((await ok.json()) as any).job_id).toBe("my-own-id-1");
    const taken = await upload(s.url, "/upload?job_id=my-own-id-1", file);
    expect(taken.status).toBe(409);
    const bad = await upload(s.url, "/upload", file, { job_id: "no spaces!" });
    expect(bad.status).toBe(409);
  });
});

describe("SSE", () => {
  test("streams text/event-stream with ids, retry, monotonic progress, and ends after the terminal event", async () => {
    const job = startTimedJob(s, 20, 40);
    const r = await fetch(`${s.url}/progress/${job.id}/stream`);
    expect(r.headers.get("content-type")).toStartWith("text/event-stream");
    const text = await r.text(); // resolves only because the server ends the stream
    expect(text).toContain("retry: ");
    const events = text.split("\n\n").filter((b) => b.includes("data: ")).map((b) => ({
      id: Number(/^id: (\d+)/m.exec(b)![1]),
      data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!),
    }));
    expect(events.at(-1)!.data.status).toBe("completed");
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.id).toBeGreaterThanOrEqual(events[i - 1]!.id);
      expect(events[i]!.data.progress).toBeGreaterThanOrEqual(events[i - 1]!.data.progress);
    }
    expect(events.length).toBeGreaterThan(5);
  });

  test("sends at least one event per 500 ms while running, and no more than one per 100 ms", async () => {
    // One slow step: the state does not change for 1.6 s, yet the stream keeps reporting.
    const job = s.engine.create("test", [{ name: "working", from: 0, to: 100 }]);
    const times: number[] = [];
    const t0 = Date.now();
    const reading = (async () => {
      const r = await fetch(`${s.url}/progress/${job.id}/stream`);
      const reader = r.body!.getReader();
      let buf = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          if (buf.slice(0, i).includes("data: ")) times.push(Date.now() - t0);
          buf = buf.slice(i + 2);
        }
      }
    })();
    s.engine.run(job, async (j) => {
      const ctx = j.stage("working");
      await Bun.sleep(1600);
      for (let i = 1; i <= 50; i++) ctx.progress(i / 50); // a burst: must be coalesced
    });
    await reading;
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...gaps.slice(0, -1))).toBeLessThan(700);
    expect(times.length).toBeLessThan(16);
  });

  test("an EventSource client reconnects with Last-Event-ID and misses nothing", async () => {
    const job = startTimedJob(s, 30, 50);
    const requests: (string | null)[] = [];
    let calls = 0;
    // The first connection is cut after three events, as a flaky proxy would.
    const flakyFetch = async (url: string | URL, init: any) => {
      requests.push(new Headers(init?.headers).get("last-event-id"));
      const res = await fetch(url, init);
      if (calls++ > 0) return res;
      let seen = 0;
      const reader = res.body!.getReader();
      const body = new ReadableStream({
        async pull(c) {
          const { done, value } = await reader.read();
          if (done || seen >= 3) { reader.cancel(); return c.close(); }
          seen += new TextDecoder().decode(value).split("\n\n").length - 1;
          c.enqueue(value);
        },
      });
      return new Response(body, { headers: res.headers, status: res.status });
    };
    const es = new EventSource(`${s.url}/progress/${job.id}/stream`, { fetch: flakyFetch as any });
    const got: { id: number; data: any }[] = [];
    await new Promise<void>((resolve) => {
      es.onmessage = (m) => {
        const data = JSON.parse(m.data);
        got.push({ id: Number(m.lastEventId), data });
        if (["completed", "error", "cancelled"].includes(data.status)) { es.close(); resolve(); }
      };
    });
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests[0]).toBeNull();
    expect(Number(requests[1])).toBe(got[2]!.id);
    // Replay: every event the server stored after the reconnect point arrives, with no gap in seq.
    const afterReconnect = got.slice(3).map((g) => g.id);
    const stored = s.engine.store.eventsAfter(job.id, got[2]!.id).map((e) => e.seq);
    expect(afterReconnect.slice(0, stored.length).sort((a, b) => a - b)[0]).toBe(stored[0]);
    for (let i = 1; i < got.length; i++) expect(got[i]!.id).toBeGreaterThan(got[i - 1]!.id);
    expect(got.at(-1)!.data.status).toBe("completed");
  });
});

describe("WebSocket", () => {
  test("subscribe gets the current state at once, then processing_progress events in seq order", async () => {
    const c = await openWs(s.wsUrl);
    const job = startTimedJob(s, 10, 30);
    c.send({ subscribe: job.id });
    const first = await c.waitFor((f) => f.event === "processing_progress");
    expect(first.data).toMatchObject({ file_id: job.id });
    expect(Object.keys(first.data)).toEqual(expect.arrayContaining(["file_id", "stage", "progress", "message", "error", "seq", "status"]));
    await c.waitFor((f) => f.event === "processing_progress" && f.data.status === "completed");
    const mine = c.frames.filter((f) => f.event === "processing_progress").map((f) => f.data.seq);
    for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThan(mine[i - 1]);
    c.close();
  });

  test("unsubscribe stops events; '*' receives every job", async () => {
    const one = await openWs(s.wsUrl);
    const all = await openWs(s.wsUrl);
    const a = startTimedJob(s, 20, 25);
    one.send({ subscribe: a.id });
    all.send({ subscribe: "*" });
    await one.waitFor((f) => f.event === "processing_progress" && f.data.progress > 0);
    one.send({ unsubscribe: a.id });
    await one.waitFor((f) => f.event === "unsubscribed");
    const countAtUnsub = one.frames.length;
    const b = startTimedJob(s, 3, 10);
    await all.waitFor((f) => f.event === "processing_progress" && f.data.file_id === a.id && f.data.status === "completed");
    await all.waitFor((f) => f.event === "processing_progress" && f.data.file_id === b.id && f.data.status === "completed");
    expect(one.frames.length).toBe(countAtUnsub);
    one.close();
    all.close();
  });

  test("a malformed message gets an error frame and the connection stays open", async () => {
    const c = await openWs(s.wsUrl);
    c.send("this is not json");
    await c.waitFor((f) => f.event === "error");
    c.send({ subscribe: 42 });
    await c.waitFor((f) => f.event === "error" && c.frames.filter((x) => x.event === "error").length === 2);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    const job = startTimedJob(s, 2, 10);
    c.send({ subscribe: job.id });
    await c.waitFor((f) => f.event === "processing_progress" && f.data.file_id === job.id);
    c.close();
  });
});

describe("ETA", () => {
  test("events estimate the job's remaining time (eta_s) and the running stage's (stage_eta_s), each from its own rate", async () => {
    // Two stages at one steady overall rate: "first" is 30% of the job in 15 steps, "second" 70% in 35.
    const STEP = 80; // the first stage lasts 1.2 s: estimates start after half a second
    const job = s.engine.create("test", [{ name: "first", from: 0, to: 30 }, { name: "second", from: 30, to: 100 }]);
    const c = await openWs(s.wsUrl);
    c.send({ subscribe: job.id });
    await c.waitFor((f) => f.event === "subscribed");
    const got: { t: number; d: any }[] = [];
    c.ws.addEventListener("message", (m) => {
      const f = JSON.parse(String(m.data));
      if (f.event === "processing_progress" && f.data.file_id === job.id) got.push({ t: performance.now(), d: f.data });
    });
    s.engine.run(job, async (j) => {
      for (const [name, steps] of [["first", 15], ["second", 35]] as const) {
        const ctx = j.stage(name);
        for (let i = 1; i <= steps; i++) {
          await Bun.sleep(STEP);
          ctx.progress(i / steps, `${name} ${i}/${steps}`);
        }
      }
    });
    await c.waitFor((f) => f.event === "processing_progress" && f.data.file_id === job.id && f.data.status === "completed");
    const polled = (await (await fetch(`${s.url}/progress/${job.id}`)).json()) as any;
    c.close();

    const end = got.at(-1)!;
    expect(end.d).toMatchObject({ status: "completed", eta_s: 0, stage_eta_s: 0 });
    expect(polled).toMatchObject({ eta_s: 0, stage_eta_s: 0 });
    const secondStarts = got.find((e) => e.d.stage === "second")!;
    expect(secondStarts.d.stage_eta_s).toBeNull(); // a new stage has no rate yet
    const near = (est: number, truth: number) => Math.abs(est - truth) < 0.25 * truth + 0.2;
    const judged = { first: 0, second: 0 };
    for (const e of got) {
      if (e.d.status === "completed" || e.d.progress < 50 || e.d.progress > 90) continue;
      const stageEnd = e.d.stage === "first" ? secondStarts.t : end.t;
      const stageLeft = (stageEnd - e.t) / 1000;
      const jobLeft = (end.t - e.t) / 1000;
      expect(near(e.d.stage_eta_s, stageLeft), `${e.d.stage} at ${e.d.progress}%: stage_eta_s ${e.d.stage_eta_s} vs ${stageLeft.toFixed(2)} s left`).toBe(true);
      expect(near(e.d.eta_s, jobLeft), `${e.d.stage} at ${e.d.progress}%: eta_s ${e.d.eta_s} vs ${jobLeft.toFixed(2)} s left`).toBe(true);
      judged[e.d.stage as "first" | "second"]++;
    }
    // enough points in each stage (in the first the two estimates are far apart: ~0.4 s vs ~3.2 s)
    expect(judged.first).toBeGreaterThanOrEqual(3);
    expect(judged.second).toBeGreaterThanOrEqual(10);
  }, 20_000);
});

describe("cancellation", () => {
  test("DELETE cancels a running job and a queued one; the queue moves on", async () => {
    const running = startTimedJob(s, 200, 20);
    const queued = startTimedJob(s, 2, 10);
    await Bun.sleep(100);
    const q = (await (await fetch(`${s.url}/progress/${queued.id}`)).json()) as any;
    expect(q.status).toBe("queued");
    expect(q.queue_position).toBe(1);
    const r1 = await fetch(`${s.url}/jobs/${queued.id}`, { method: "DELETE" });
    expect(((await r1.json()) as any).status).toBe("cancelled");
    const r2 = await fetch(`${s.url}/jobs/${running.id}`, { method: "DELETE" });
    expect(r2.status).toBe(200);
    const done = await waitDone(s.url, running.id);
    expect(done.status).toBe("cancelled");
    expect(done.progress).toBeLessThan(100);
    // The abort reached the work: its signal is set, and a later job still runs.
    expect(running.signal.aborted).toBe(true);
    const after = startTimedJob(s, 2, 10);
    expect((await waitDone(s.url, after.id)).status).toBe("completed");
    const again = await fetch(`${s.url}/jobs/${running.id}`, { method: "DELETE" });
    expect(again.status).toBe(409);
  });
});

describe("retention", () => {
  test("a finished job and its files are removed after the retention, and no timer outlives it", async () => {
    const short = await startServer({ retentionMs: 300 });
    try {
      const r = await upload(short.url, "/upload", await fixture("speech/harvard-01.wav"));
      const { job_id } = (await r.json()) as any;
      await waitDone(short.url, job_id);
      expect(existsSync(short.files.dir(job_id))).toBe(true);
      expect((await fetch(`${short.url}/progress/${job_id}`)).status).toBe(200);
      await Bun.sleep(600);
      expect((await fetch(`${short.url}/progress/${job_id}`)).status).toBe(404);
      expect(existsSync(short.files.dir(job_id))).toBe(false);
      expect((short.engine.store as any).timerCount).toBe(0);
    } finally {
      await short.close();
    }
  });
});

describe("failures", () => {
  test("a job that fails part-way ends error with its stage and message; others are unaffected", async () => {
    const job = s.engine.create("test", [{ name: "first", from: 0, to: 50 }, { name: "second", from: 50, to: 100 }]);
    s.engine.run(job, async (j) => {
      j.stage("first").progress(1);
      j.stage("second").progress(0.5);
      throw new Error("the model ran out of memory");
    });
    const other = startTimedJob(s, 2, 10);
    const done = await waitDone(s.url, job.id);
    expect(done).toMatchObject({ status: "error", stage: "second", error: "the model ran out of memory", progress: 75 });
    const view = (await (await fetch(`${s.url}/jobs/${job.id}`)).json()) as any;
    expect(view.stages.map((x: any) => x.status)).toEqual(["done", "error"]);
    expect((await waitDone(s.url, other.id)).status).toBe("completed");
  });
});

describe("startup", () => {
  test("`npm start` starts Bun with the server's allocator setting (SERVER_ENV)", async () => {
    const { SERVER_ENV } = await import("../src/config");
    const pkg = JSON.parse(await Bun.file(new URL("../package.json", import.meta.url)).text());
    const prefix = Object.entries(SERVER_ENV).map(([k, v]) => `${k}=\${${k}:-${v}} `).join("");
    expect(pkg.scripts.start).toBe(`${prefix}bun src/server.ts`);
  });

  test("--whisper-activations takes int8 (the default) or float, from a flag or the environment", async () => {
    const { loadConfig } = await import("../src/config");
    expect(loadConfig([]).whisperActivations).toBe("int8");
    expect(loadConfig(["--whisper-activations", "float"]).whisperActivations).toBe("float");
    expect(loadConfig([], { STEMSCRIBE_WHISPER_ACTIVATIONS: "float" }).whisperActivations).toBe("float");
    expect(() => loadConfig(["--whisper-activations=fp16"])).toThrow("not one of int8, float: fp16");
  });
});
