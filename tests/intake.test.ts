// Audio intake through the real server: every format, every malformed file, upload limits.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fixture, startServer, upload, waitDone, type TestServer } from "./helpers/server";

let s: TestServer;
beforeAll(async () => { s = await startServer({ maxUploadBytes: 8 * 1024 * 1024 }); });
afterAll(async () => { await s.close(); });

const submit = async (rel: string) => {
  const r = await upload(s.url, "/upload", await fixture(rel));
  const body = (await r.json()) as any;
  return { status: r.status, body, done: r.status === 200 ? await waitDone(s.url, body.job_id) : null };
};

test.each(["mp3", "flac", "ogg", "opus", "m4a"])("song/mixture.%s decodes to the WAV's length (±1%) at its own rate", async (ext) => {
  const wav = await submit("song/mixture.wav");
  const other = await submit(`song/mixture.${ext}`);
  expect(other.done!.status).toBe("completed");
  const meta = (id: string) => fetch(`${s.url}/jobs/${id}`).then((r) => r.json()).then((j: any) => j.meta);
  const [a, b] = [await meta(wav.body.job_id), await meta(other.body.job_id)];
  expect(Math.abs(b.duration - a.duration) / a.duration).toBeLessThan(0.01);
  expect(b.sample_rate).toBe(ext === "opus" ? 48000 : a.sample_rate); // Opus always decodes at 48 kHz
  expect(b.channels).toBe(2);
});

const BAD: Record<string, number[]> = {
  "empty.wav": [400],
  "text-named.wav": [415],
  "truncated.mp3": [422],
  "random.bin": [415],
  "lying-header.wav": [422],
  "zero-rate.wav": [422],
};

test("every malformed file gets a clear error while a good job runs unaffected", async () => {
  // A good upload is in flight the whole time.
  const goodReq = submit("song/mixture.flac");
  for (const [name, statuses] of Object.entries(BAD)) {
    const r = await upload(s.url, "/upload", await fixture(`bad/${name}`));
    const body = (await r.json()) as any;
    expect(statuses).toContain(r.status);
    expect(body.error.message.length).toBeGreaterThan(10);
    expect(body.job_id).toBeString(); // the failed job is inspectable
    const p = (await (await fetch(`${s.url}/progress/${body.job_id}`)).json()) as any;
    expect(p).toMatchObject({ status: "error", stage: "uploading", error: body.error.message });
  }
  const good = await goodReq;
  expect(good.done!.status).toBe("completed");
  expect((await fetch(`${s.url}/health`)).status).toBe(200);
});

test("valid but empty-ish audio is accepted, not an error", async () => {
  for (const name of ["silence-10s.wav", "tiny-10ms.wav"]) {
    const r = await submit(`bad/${name}`);
    expect(r.status).toBe(200);
    expect(r.done!.status).toBe("completed");
  }
});

test("an upload over the limit gets 413 before it is read whole", async () => {
  const big = new File([new Uint8Array(9 * 1024 * 1024)], "big.wav");
  const r = await upload(s.url, "/upload", big);
  expect(r.status).toBe(413);
  expect(((await r.json()) as any).error.code).toBe("file_too_large");
  // Without a Content-Length the limit still holds while streaming.
  let sent = 0;
  const stream = new ReadableStream({
    pull(c) {
      if (sent > 12 * 1024 * 1024) return c.close();
      sent += 1024 * 1024;
      c.enqueue(new Uint8Array(1024 * 1024));
    },
  });
  const chunked = await fetch(`${s.url}/upload`, { method: "POST", body: stream, headers: { "content-type": "multipart/form-data; boundary=x" } });
  expect(chunked.status).toBe(413);
  expect((await fetch(`${s.url}/health`)).status).toBe(200);
});

test("audio longer than the duration limit is refused at upload when its length is plain, else as decoding passes the limit", async () => {
  const strict = await startServer({ maxDurationS: 20 }); // the song is 32 s
  const stricter = await startServer({ maxDurationS: 10 });
  try {
    // A WAV's length is exact: 413 before any job runs.
    const wav = await upload(strict.url, "/upload", await fixture("song/mixture.wav"));
    expect(wav.status).toBe(413);
    const wavBody = (await wav.json()) as any;
    expect(wavBody.error).toMatchObject({ code: "too_long", message: "audio is limited to 20.0 s here; this file is 32.0 s long" });
    // So is an M4A's, from its movie header (its decoder only returns samples once it has them all).
    const m4a = await upload(strict.url, "/upload", await fixture("song/mixture.m4a"));
    expect(m4a.status).toBe(413);
    expect(((await m4a.json()) as any).error).toMatchObject({ code: "too_long", message: "audio is limited to 20.0 s here; this file is 32.0 s long" });
    // An MP3's length is extrapolated from its head (~32 s): under twice the limit it is accepted,
    // and decoding stops as soon as it passes 20 s, while a short job on the same server completes.
    const mp3 = await upload(strict.url, "/upload", await fixture("song/mixture.mp3"));
    expect(mp3.status).toBe(200);
    const short = await upload(strict.url, "/upload", await fixture("speech/harvard-01.wav"));
    const failed = await waitDone(strict.url, ((await mp3.json()) as any).job_id);
    expect(failed).toMatchObject({ status: "error", stage: "preprocessing", error: "audio is limited to 20.0 s here; this file is longer than that" });
    expect((await waitDone(strict.url, ((await short.json()) as any).job_id)).status).toBe("completed");
    // The same for a transcription, before any model is loaded.
    const form = new FormData();
    form.append("file", await fixture("song/mixture.mp3"));
    form.append("model", "whisper-1");
    const tr = await fetch(`${strict.url}/v1/audio/transcriptions`, { method: "POST", body: form });
    expect(tr.status).toBe(422);
    expect(((await tr.json()) as any).error.message).toContain("limited to 20.0 s");
    // Over twice the limit, the estimate alone refuses it.
    const far = await upload(stricter.url, "/upload", await fixture("song/mixture.mp3"));
    expect(far.status).toBe(413);
    expect(((await far.json()) as any).error.message).toMatch(/^audio is limited to 10\.0 s here; this file is about 3\d\.\d s long$/);
  } finally {
    await strict.close();
    await stricter.close();
  }
});

test("a request that is not multipart gets 415", async () => {
  const r = await fetch(`${s.url}/upload`, { method: "POST", body: "hello", headers: { "content-type": "text/plain" } });
  expect(r.status).toBe(415);
});
