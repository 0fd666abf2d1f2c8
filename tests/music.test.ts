// The music pipeline end to end with the real HTDemucs and Whisper weights, on a short excerpt.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { decodeAudio } from "../src/audio";
import { decodeWav, encodeWav } from "../src/audio/wav";
import { CancelledError } from "../src/core/work";
import { ModelRegistry } from "../src/server/models";
import { FIXTURES, openWs, startServer, upload, waitDone, type TestServer } from "./helpers/server";

let s: TestServer;
let excerpt: File;
beforeAll(async () => {
  s = await startServer({ modelsDir: join(import.meta.dir, "../models") });
  // 8 s of the song: two model segments, two lyric lines (at 2 s and 6 s).
  const mix = decodeWav(new Uint8Array(await Bun.file(join(FIXTURES, "song/mixture.wav")).arrayBuffer()));
  const n = 8 * 44100;
  excerpt = new File([encodeWav({ sampleRate: 44100, channels: mix.channels.map((c) => c.slice(0, n)) }) as BlobPart], "excerpt.wav");
});
afterAll(async () => { await s.close(); });

const ORDER = ["uploading", "separation", "transcription", "karaoke", "complete"];

test("upload?model=demucs runs separation, lyrics and karaoke with ordered WebSocket events and working downloads", async () => {
  const ws = await openWs(s.wsUrl);
  ws.send({ subscribe: "*" });
  await ws.waitFor((f) => f.event === "subscribed");
  const r = await upload(s.url, "/upload?model=demucs&auto_process=true", excerpt);
  expect(r.status).toBe(200);
  const { file_id } = (await r.json()) as any;
  const done = await waitDone(s.url, file_id, 300_000);
  expect(done.status).toBe("completed");
  await ws.waitFor((f) => f.event === "processing_progress" && f.data.file_id === file_id && f.data.status === "completed");
  const events = ws.frames.filter((f) => f.event === "processing_progress" && f.data.file_id === file_id).map((f) => f.data);
  ws.close();

  // Stage order never goes back, seq only grows, each stage's own bar reaches 100.
  for (let i = 1; i < events.length; i++) {
    expect(ORDER.indexOf(events[i].stage)).toBeGreaterThanOrEqual(ORDER.indexOf(events[i - 1].stage));
    expect(events[i].seq).toBeGreaterThan(events[i - 1].seq);
    expect(events[i].overall_progress).toBeGreaterThanOrEqual(events[i - 1].overall_progress);
  }
  for (const stage of ORDER.slice(1)) {
    expect(events.some((e) => e.stage === stage && e.progress === 100)).toBe(true);
  }
  expect(events.some((e) => e.stage === "separation" && /segment \d+\/\d+/.test(e.message))).toBe(true);
  // Progress inside the first segment, forwarded from the separation child after each graph part
  // (the stage runs 10..100 over two segments, so the first one ends at 55).
  expect(events.some((e) => e.stage === "separation" && /^separating: segment 1\/2: \d+%$/.test(e.message) && e.progress > 10 && e.progress < 55)).toBe(true);
  expect(events.at(-1)).toMatchObject({ stage: "complete", progress: 100, status: "completed", error: null });

  // Every download works and holds what its name says.
  const list = (await (await fetch(`${s.url}/files/${file_id}`)).json()) as any;
  const names = list.files.map((f: any) => f.name);
  for (const stem of ["drums", "bass", "other", "vocals", "instrumental"]) {
    expect(names).toContain(`${stem}.wav`);
    expect(names).toContain(`${stem}.mp3`);
  }
  for (const ext of ["lrc", "enhanced.lrc", "ass", "vtt", "srt", "json"]) expect(names).toContain(`lyrics.${ext}`);
  for (const f of list.files) {
    const res = await fetch(f.url);
    expect(res.status).toBe(200);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.length).toBe(f.bytes);
    if (/\.(wav|mp3)$/.test(f.name)) {
      const pcm = await decodeAudio(body);
      expect(pcm.sampleRate).toBe(44100);
      expect(Math.abs(pcm.channels[0]!.length / 44100 - 8)).toBeLessThan(0.1);
    }
  }
  const lyrics = (await (await fetch(list.files.find((f: any) => f.name === "lyrics.json").url)).json()) as any;
  expect(lyrics.lines.length).toBeGreaterThanOrEqual(1);
  const lrc = await (await fetch(list.files.find((f: any) => f.name === "lyrics.lrc").url)).text();
  expect(lrc).toMatch(/^\[\d\d:\d\d\.\d\d\]\S/m);
  const ass = await (await fetch(list.files.find((f: any) => f.name === "lyrics.ass").url)).text();
  expect(ass).toContain("{\\k");

  // The instrumental is the sum of the other three stems.
  const get = async (n: string) => decodeWav(new Uint8Array(await (await fetch(list.files.find((f: any) => f.name === n).url)).arrayBuffer()));
  const [inst, d, b, o] = await Promise.all(["instrumental.wav", "drums.wav", "bass.wav", "other.wav"].map(get));
  let err = 0;
  for (let i = 0; i < inst!.channels[0]!.length; i += 97) err = Math.max(err, Math.abs(inst!.channels[0]![i]! - d!.channels[0]![i]! - b!.channels[0]![i]! - o!.channels[0]![i]!));
  expect(err).toBeLessThan(4 / 32768);
}, 300_000);

test("a model that is not installed gets a 400 naming the choices", async () => {
  const r = await upload(s.url, "/upload?model=spleeter", excerpt);
  expect(r.status).toBe(400);
  expect(((await r.json()) as any).error.message).toContain("demucs");
});

test("demucs' options (overlap, shifts, segment, transition_power) are validated and reach the separation, from /upload and /process", async () => {
  const bad = await upload(s.url, "/upload?model=demucs&overlap=2", excerpt);
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as any).error).toMatchObject({ code: "invalid_value", message: "overlap must be a number from 0 to 0.99" });
  const badPower = await upload(s.url, "/upload?model=demucs&transition_power=-1", excerpt);
  expect(badPower.status).toBe(400);
  expect(((await badPower.json()) as any).error.message).toBe("transition_power must be a number from 0 to 10");
  const r = await upload(s.url, "/upload?model=demucs&auto_process=false&segment=3.9&overlap=0.5", excerpt);
  const { file_id } = (await r.json()) as any;
  expect((await fetch(`${s.url}/process/${file_id}?shifts=1&transition_power=1`, { method: "POST" })).status).toBe(200);
  const job = (await (await fetch(`${s.url}/jobs/${file_id}`)).json()) as any;
  expect(job.meta.separation).toEqual({ segment: 3.9, overlap: 0.5, shifts: 1, transitionPower: 1 });
  // 8 s in 3.9 s segments every 1.95 s: 5 model calls (the defaults make 2), then cancel.
  for (;;) {
    const p = (await (await fetch(`${s.url}/progress/${file_id}`)).json()) as any;
    expect(p.status).not.toBe("error");
    if (/segment \d+\/\d+/.test(p.message)) {
      expect(p.message).toMatch(/segment \d+\/5\b/);
      break;
    }
    await Bun.sleep(20);
  }
  expect((await fetch(`${s.url}/jobs/${file_id}`, { method: "DELETE" })).status).toBe(200);
  expect((await waitDone(s.url, file_id)).status).toBe("cancelled");
}, 120_000);

test("auto_process=false stores the upload; POST /process/{id} cancels cleanly during separation", async () => {
  const r = await upload(s.url, "/upload?model=demucs&auto_process=false", await Bun.file(join(FIXTURES, "song/mixture.wav")).arrayBuffer().then((b) => new File([b], "mixture.wav")));
  const { file_id } = (await r.json()) as any;
  await Bun.sleep(300);
  const stored = (await (await fetch(`${s.url}/progress/${file_id}`)).json()) as any;
  expect(stored.status).toBe("uploading");
  expect(stored.message).toContain("/process/");
  expect((await fetch(`${s.url}/process/${file_id}`, { method: "POST" })).status).toBe(200);
  // Wait until a segment is being computed, then cancel and check the CPU goes quiet.
  for (;;) {
    const p = (await (await fetch(`${s.url}/progress/${file_id}`)).json()) as any;
    if (p.stage === "separation" && p.stage_progress >= 10) break;
    expect(p.status).not.toBe("error");
    await Bun.sleep(50);
  }
  await Bun.sleep(500);
  const cancelled = await fetch(`${s.url}/jobs/${file_id}`, { method: "DELETE" });
  expect(cancelled.status).toBe(200);
  await Bun.sleep(1000);
  const cpu = () => {
    // This process plus any model child process, in seconds of CPU.
    const self = process.cpuUsage();
    return (self.user + self.system) / 1e6 + childCpu();
  };
  const c0 = cpu();
  await Bun.sleep(1000);
  const used = cpu() - c0;
  expect(used).toBeLessThan(0.3);
  const final = await waitDone(s.url, file_id);
  expect(final.status).toBe("cancelled");
  expect(final.stage).toBe("separation");
}, 300_000);

/** This process's child processes (a Demucs worker, if one is running), from /proc: [pid, CPU seconds]. */
function children(): [number, number][] {
  const { readdirSync, readFileSync } = require("node:fs") as typeof import("node:fs");
  const out: [number, number][] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) !== process.pid || fields[0] === "Z") continue;
      out.push([Number(pid), (Number(fields[11]) + Number(fields[12])) / 100]);
    } catch {}
  }
  return out;
}
const childCpu = () => children().reduce((sum, [, cpu]) => sum + cpu, 0);
const childPids = () => children().map(([pid]) => pid);

test("with --concurrency 2, cancelling one music job leaves the other's separation running to completion", async () => {
  const two = await startServer({ modelsDir: join(import.meta.dir, "../models"), concurrency: 2 });
  try {
    const mix = decodeWav(new Uint8Array(await Bun.file(join(FIXTURES, "song/mixture.wav")).arrayBuffer()));
    const short = new File([encodeWav({ sampleRate: 44100, channels: mix.channels.map((c) => c.slice(0, 3 * 44100)) }) as BlobPart], "short.wav");
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push(((await (await upload(two.url, "/upload?model=demucs", short)).json()) as any).file_id);
    // Both are separating (each job holds its own model process), then the first is cancelled.
    for (const id of ids) {
      for (;;) {
        const p = (await (await fetch(`${two.url}/progress/${id}`)).json()) as any;
        if (p.stage === "separation" && p.stage_progress >= 10) break;
        expect(p.status).not.toBe("error");
        await Bun.sleep(50);
      }
    }
    expect((await fetch(`${two.url}/jobs/${ids[0]}`, { method: "DELETE" })).status).toBe(200);
    expect((await waitDone(two.url, ids[0]!)).status).toBe("cancelled");
    const other = await waitDone(two.url, ids[1]!, 300_000);
    expect(other).toMatchObject({ status: "completed", error: null });
  } finally {
    await two.close();
  }
}, 300_000);

test("a cancel while the separation child is still loading stops the load (first start and restart)", async () => {
  const reg = new ModelRegistry(join(import.meta.dir, "../models"), false, 60_000);
  const before = new Set(childPids()); // this file's server may hold a child of its own
  const kids = () => childPids().filter((pid) => !before.has(pid)).length;
  try {
    expect(kids()).toBe(0);
    // The job that starts the shared child is cancelled 100 ms in (loading takes ~0.5-1.5 s).
    const ac = new AbortController();
    const p = reg.demucs(ac.signal);
    await Bun.sleep(100);
    expect(kids()).toBe(1);
    const t0 = performance.now();
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(performance.now() - t0).toBeLessThan(500);
    for (let t = 0; t < 20 && kids() > 0; t++) await Bun.sleep(25);
    expect(kids()).toBe(0);
    // The next job starts it again; after an idle stop, a request that restarts it is cancelled too.
    const lease = await reg.demucs();
    await (lease.model as any).stop();
    expect(kids()).toBe(0);
    const ac2 = new AbortController();
    const q = lease.model.inferSources!(new Float32Array(2 * lease.model.segmentLength), ac2.signal);
    await Bun.sleep(100);
    expect(kids()).toBe(1);
    ac2.abort();
    await expect(q).rejects.toBeInstanceOf(CancelledError);
    for (let t = 0; t < 20 && kids() > 0; t++) await Bun.sleep(25);
    expect(kids()).toBe(0);
    await lease.release();
  } finally {
    await reg.close();
  }
}, 60_000);

test("the shared separation child exits after its idle time and comes back for the next job", async () => {
  const reg = new ModelRegistry(join(import.meta.dir, "../models"), false, 300);
  try {
    const first = await reg.demucs();
    const pid = (await reg.demucsPid())!;
    expect(pid).toBeGreaterThan(0);
    await first.release();
    expect(await reg.demucsPid()).toBe(pid); // still there within the idle time
    const alive = (p: number) => { try { process.kill(p, 0); return true; } catch { return false; } };
    for (let t = 0; t < 100 && alive(pid); t++) await Bun.sleep(50);
    expect(alive(pid)).toBe(false);
    expect(await reg.demucsPid()).toBeUndefined();
    // the next job gets a working model again, in a new child
    const again = await reg.demucs();
    const out = await again.model.inferSources!(new Float32Array(2 * again.model.segmentLength).fill(0.01));
    expect(out.length).toBe(4 * 2 * again.model.segmentLength);
    expect(out.some((v) => v !== 0)).toBe(true);
    const pid2 = await reg.demucsPid();
    expect(pid2).toBeGreaterThan(0);
    expect(pid2).not.toBe(pid);
    await again.release();
  } finally {
    await reg.close();
  }
}, 120_000);

test("a separation process that dies mid-job fails that job with a clear message; the next job gets a new one", async () => {
  const r = await upload(s.url, "/upload?model=demucs", excerpt);
  const { file_id } = (await r.json()) as any;
  for (;;) {
    const p = (await (await fetch(`${s.url}/progress/${file_id}`)).json()) as any;
    expect(p.status).not.toBe("error");
    if (/segment 1\/2: \d+%/.test(p.message)) break; // a segment is being computed
    await Bun.sleep(20);
  }
  const pid = (await s.models.demucsPid())!;
  process.kill(pid, "SIGKILL"); // as the kernel's OOM killer would
  const failed = await waitDone(s.url, file_id);
  expect(failed).toMatchObject({ status: "error", stage: "separation" });
  expect(failed.error).toBe("the separation process ended unexpectedly (SIGKILL); killed, perhaps for lack of memory");
  // The server goes on: the next music job runs on a new separation process.
  const next = await upload(s.url, "/upload?model=demucs", excerpt);
  const done = await waitDone(s.url, ((await next.json()) as any).file_id, 300_000);
  expect(done.status).toBe("completed");
  expect(await s.models.demucsPid()).not.toBe(pid);
}, 300_000);
