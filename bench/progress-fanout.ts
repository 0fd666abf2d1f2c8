// Progress fan-out benchmark: N WebSocket and M SSE subscribers on one job that publishes K
// progress events. Prints figures; it is not a test and asserts nothing.
//
//   npx bun bench/progress-fanout.ts [--ws 1000] [--sse 200] [--events 1000] [--rate 200] [--json]
//
//   --ws N       WebSocket subscribers (/ws, {"subscribe": id})              default 1000
//   --sse M      SSE subscribers (GET /progress/{id}/stream)                 default 200
//   --events K   progress events the job publishes                           default 1000
//   --rate R     events per second; 0 = as fast as the server's loop allows  default 200
//   --json       print the figures as one JSON object instead of a table
//
// The server (bench/fanout-server.ts) runs in a child process, so /proc/<pid>/status VmRSS and
// VmHWM are the server's alone; every client runs here, in this process, over 127.0.0.1.
// The server turns the engine's 50 ms progress coalescing off, so every publish is an event;
// the SSE transport still sends at most one event per 100 ms per stream (the latest state), so
// SSE subscribers receive far fewer events than were published, by design.
//
// Latency = receipt time here − publish time there, both performance.timeOrigin +
// performance.now() on the same machine's clock. It includes this process's own queueing
// (1,000+ sockets are read by one JS thread), so on a small or busy machine it measures the
// clients as much as the server. The load average is printed with the figures for that reason.
//
// Phases: start the server; connect every subscriber (in batches) and wait until each has
// received the job's initial state; then tell the server to publish; wait until every
// subscriber has seen the completed event (or a drain timeout); print. It stops by itself:
// a watchdog ends the run (and prints what it has) after a bounded time.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";

// ---------------------------------------------------------------- arguments

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`${name} needs a non-negative number`);
    process.exit(2);
  }
  return v;
}
if (process.argv.includes("--help") || process.argv.includes("-h")) {
  console.log("usage: bun bench/progress-fanout.ts [--ws N] [--sse M] [--events K] [--rate R] [--json]");
  process.exit(0);
}
const N = Math.floor(flag("--ws", 1000));
const M = Math.floor(flag("--sse", 200));
const K = Math.max(1, Math.floor(flag("--events", 1000)));
const RATE = flag("--rate", 200);
const JSON_OUT = process.argv.includes("--json");
const JOB_ID = "bench-fanout-job";
const CONNECT_BATCH = 100;
const CONNECT_TIMEOUT_MS = 60_000;
const PUBLISH_MS = RATE > 0 ? (K / RATE) * 1000 : K * 2; // expected publish time
const DRAIN_TIMEOUT_MS = 15_000;
const WATCHDOG_MS = 60_000 + CONNECT_TIMEOUT_MS + PUBLISH_MS * 2 + DRAIN_TIMEOUT_MS;

// Bun's fetch runs at most 256 requests at once unless told otherwise; an SSE stream is a
// request that never ends, so for many SSE subscribers re-run this script with a higher cap.
if (M + 16 > 256 && !process.env.BUN_CONFIG_MAX_HTTP_REQUESTS) {
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: "inherit",
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: String(Math.min(65_336, M + 64)) },
  });
  process.exit(r.status ?? 1);
}

// ---------------------------------------------------------------- file descriptors

function openFileLimit(pid: number | "self"): { soft: number; hard: number } | null {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const [soft, hard] = line!.slice("Max open files".length).trim().split(/\s+/);
    const n = (v: string | undefined) => (v === "unlimited" ? Infinity : Number(v));
    return { soft: n(soft), hard: n(hard) };
  } catch {
    return null;
  }
}
// Each subscriber costs one descriptor here and one in the server, plus some headroom. Bun lifts
// its own soft limit to the hard one at startup, so what /proc reports is what we really have.
const fdNeed = N + M + 128;
const fds = openFileLimit("self");
if (fds && fds.soft < fdNeed) {
  console.error(
    `progress-fanout: ${N} WebSocket + ${M} SSE subscribers need about ${fdNeed} open files per process, ` +
      `but this process may open only ${fds.soft} (hard limit ${fds.hard}).\n` +
      (fds.hard >= fdNeed
        ? `  Raise it in this shell first:  ulimit -n ${Math.max(fdNeed, 4096)}   then run the bench again.\n`
        : `  The hard limit is too low as well: raise it (as root: ulimit -Hn, or /etc/security/limits.conf, ` +
          `or LimitNOFILE= for a systemd unit), or run fewer subscribers (--ws/--sse).\n`),
  );
  process.exit(2);
}

// ---------------------------------------------------------------- helpers

const now = () => performance.timeOrigin + performance.now();
const t_start = now();
const elapsed = () => ((now() - t_start) / 1000).toFixed(1);

function procStatus(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, "m").exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) is 100 on every Linux in practice
function procCpuS(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
  } catch {
    return NaN;
  }
}
const mib = (b: number) => (Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MiB` : "n/a");
function pct(a: Float64Array, p: number): number {
  if (a.length === 0) return NaN;
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))]!;
}

// ---------------------------------------------------------------- the server process

const serverScript = join(import.meta.dir, "fanout-server.ts");
const child = spawn(process.execPath, [serverScript, "--events", String(K), "--rate", String(RATE), "--job-id", JOB_ID], {
  stdio: ["pipe", "pipe", "inherit"],
  cwd: join(import.meta.dir, ".."),
});
const killChild = () => { try { child.kill("SIGKILL"); } catch { /* already gone */ } };
process.on("exit", killChild);
process.on("SIGINT", () => { killChild(); process.exit(130); });

type ServerMsg = { ready?: boolean; port?: number; pid?: number; published?: number; t0?: number; t1?: number };
const serverMsgs: ServerMsg[] = [];
const serverWaiters: { pred: (m: ServerMsg) => boolean; resolve: (m: ServerMsg) => void }[] = [];
let childExited = false;
{
  let buf = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let m: ServerMsg;
      try { m = JSON.parse(line); } catch { process.stderr.write(`[server] ${line}\n`); continue; }
      serverMsgs.push(m);
      for (const w of serverWaiters.splice(0)) (w.pred(m) ? w.resolve(m) : serverWaiters.push(w));
    }
  });
  child.on("exit", () => { childExited = true; });
}
function fromServer(pred: (m: ServerMsg) => boolean, timeoutMs: number): Promise<ServerMsg | null> {
  const seen = serverMsgs.find(pred);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), timeoutMs);
    serverWaiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m); } });
  });
}
const tell = (cmd: string) => { if (!childExited) child.stdin!.write(cmd + "\n"); };

// ---------------------------------------------------------------- clients

// Latencies in ms. A WebSocket subscriber gets every event, so N*K slots are enough.
const wsLat = new Float64Array(Math.max(1, N * K));
let wsLatN = 0;
const sseLat: number[] = [];
let wsDelivered = 0, sseDelivered = 0; // progress events carrying a publish time
let wsReady = 0, sseReady = 0, wsOpen = 0, sseOpen = 0, wsDone = 0, sseDone = 0;
let wsErrors = 0, sseErrors = 0, wsClosedEarly = 0;
let lastWsRecv = 0, lastSseRecv = 0, firstWsRecv = 0, firstSseRecv = 0;
const wsPerClient = new Uint32Array(N);
const ssePerClient = new Uint32Array(M);
const wsSockets: WebSocket[] = [];
const sseAborts: AbortController[] = [];
let allDone: (() => void) | null = null;
const checkDone = () => { if (wsDone === N && sseDone === M) allDone?.(); };

const MSG_KEY = '"message":"t=';
function openWsClient(url: string, idx: number): Promise<boolean> {
  return new Promise((resolve) => {
    let ready = false, done = false;
    const t = setTimeout(() => resolve(false), CONNECT_TIMEOUT_MS);
    const ws = new WebSocket(url);
    wsSockets.push(ws);
    ws.onopen = () => { wsOpen++; ws.send(JSON.stringify({ subscribe: JOB_ID })); };
    ws.onmessage = (m) => {
      const at = now();
      const s = typeof m.data === "string" ? m.data : String(m.data);
      if (!s.startsWith('{"event":"processing_progress"')) return; // the "subscribed" ack
      if (!ready) { ready = true; wsReady++; clearTimeout(t); resolve(true); }
      // Cheaper than JSON.parse for 200,000 frames a second: find the publish time in place.
      const k = s.indexOf(MSG_KEY);
      if (k >= 0) {
        const pub = parseFloat(s.slice(k + MSG_KEY.length, k + MSG_KEY.length + 24));
        if (wsLatN < wsLat.length) wsLat[wsLatN++] = at - pub;
        wsDelivered++;
        wsPerClient[idx]!++;
        if (!firstWsRecv) firstWsRecv = at;
        lastWsRecv = at;
      }
      if (!done && s.includes('"status":"completed"')) { done = true; wsDone++; checkDone(); }
    };
    ws.onerror = () => { wsErrors++; };
    ws.onclose = () => {
      if (!done) { wsClosedEarly++; done = true; wsDone++; checkDone(); }
      clearTimeout(t);
      resolve(ready);
    };
  });
}

function openSseClient(url: string, idx: number): Promise<boolean> {
  return new Promise((resolve) => {
    let ready = false, done = false;
    const ac = new AbortController();
    sseAborts.push(ac);
    const t = setTimeout(() => resolve(false), CONNECT_TIMEOUT_MS);
    const finish = () => { if (!done) { done = true; sseDone++; checkDone(); } clearTimeout(t); resolve(ready); };
    (async () => {
      const res = await fetch(url, { signal: ac.signal, headers: { accept: "text/event-stream" } });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      sseOpen++;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      let lastSeq = -1;
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        const at = now();
        buf += dec.decode(value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const line = block.split("\n").find((l) => l.startsWith("data:"));
          if (!line) continue;
          const e = JSON.parse(line.slice(5).trim()) as { message: string; seq: number; status: string };
          if (!ready) { ready = true; sseReady++; clearTimeout(t); resolve(true); }
          // The stream repeats an unchanged state every 500 ms while running: count new seqs only.
          if (e.seq > lastSeq && e.message.startsWith("t=")) {
            sseLat.push(at - parseFloat(e.message.slice(2)));
            sseDelivered++;
            ssePerClient[idx]!++;
            if (!firstSseRecv) firstSseRecv = at;
            lastSseRecv = at;
          }
          lastSeq = Math.max(lastSeq, e.seq);
          if (e.status === "completed") { finish(); return; }
        }
      }
      finish();
    })().catch(() => { if (!ac.signal.aborted) sseErrors++; finish(); });
  });
}

// ---------------------------------------------------------------- progress line on stderr

let phase = "starting server";
const tty = process.stderr.isTTY;
let lastLine = 0;
function progressLine(force = false) {
  const t = now();
  if (!force && t - lastLine < (tty ? 250 : 2000)) return;
  lastLine = t;
  const line = `[${elapsed()} s] ${phase} | ws open ${wsOpen}/${N} ready ${wsReady} done ${wsDone} events ${wsDelivered}` +
    ` | sse open ${sseOpen}/${M} ready ${sseReady} done ${sseDone} events ${sseDelivered}`;
  process.stderr.write(tty ? `\r${line.padEnd(140)}` : line + "\n");
}

// ---------------------------------------------------------------- the run

let serverPid = 0;
let rssIdle: { rss: number; hwm: number } | null = null;
let rssSubscribed: { rss: number; hwm: number } | null = null;
let rssAfter: { rss: number; hwm: number } | null = null;
let rssMaxSampled = 0;
let cpuBeforePublish = NaN, cpuAfterPublish = NaN;
let published: ServerMsg | null = null;
let aborted: string | null = null;
const loadBefore = os.loadavg();

const ticker = setInterval(() => {
  if (serverPid) {
    const st = procStatus(serverPid);
    if (st) rssMaxSampled = Math.max(rssMaxSampled, st.rss);
  }
  progressLine();
}, 100);

const watchdog = setTimeout(() => {
  aborted = `watchdog: the run took longer than ${(WATCHDOG_MS / 1000).toFixed(0)} s; figures are partial`;
  finishRun();
}, WATCHDOG_MS);

async function run() {
  const ready = await fromServer((m) => !!m.ready, 30_000);
  if (!ready) throw new Error("the server process did not start within 30 s");
  serverPid = ready.pid!;
  const sfds = openFileLimit(serverPid);
  if (sfds && sfds.soft < fdNeed) {
    throw new Error(`the server process may open only ${sfds.soft} files but needs about ${fdNeed}; raise ulimit -n (hard ${sfds.hard}) and run again`);
  }
  await Bun.sleep(300); // let it settle
  rssIdle = procStatus(serverPid);
  const base = `127.0.0.1:${ready.port}`;

  phase = "connecting";
  tConnectStart = now();
  // Interleave the two kinds, in batches, so neither the accept queue nor our fetch pool floods.
  const jobs: (() => Promise<boolean>)[] = [];
  for (let i = 0; i < Math.max(N, M); i++) {
    if (i < N) jobs.push(() => openWsClient(`ws://${base}/ws`, i));
    if (i < M) jobs.push(() => openSseClient(`http://${base}/progress/${JOB_ID}/stream`, i));
  }
  const connectEnd = now() + CONNECT_TIMEOUT_MS;
  for (let i = 0; i < jobs.length; i += CONNECT_BATCH) {
    await Promise.all(jobs.slice(i, i + CONNECT_BATCH).map((f) => f()));
    if (now() > connectEnd) break;
  }
  const tConnected = now();
  if (wsReady < N || sseReady < M) {
    throw new Error(`only ${wsReady}/${N} WebSocket and ${sseReady}/${M} SSE subscribers got the initial state ` +
      `(${wsErrors} ws errors, ${sseErrors} sse errors); check ulimit -n and the server's stderr`);
  }
  await Bun.sleep(500);
  rssSubscribed = procStatus(serverPid);
  cpuBeforePublish = procCpuS(serverPid);

  phase = "publishing";
  const doneP = new Promise<void>((r) => { allDone = r; checkDone(); });
  tell("go");
  published = await fromServer((m) => m.published !== undefined, PUBLISH_MS * 3 + 30_000);
  cpuAfterPublish = procCpuS(serverPid);
  phase = "draining";
  await Promise.race([doneP, Bun.sleep(DRAIN_TIMEOUT_MS)]);
  if (wsDone < N || sseDone < M) aborted = `drain timeout: ${N - wsDone} ws and ${M - sseDone} sse subscribers did not see the completed event within ${DRAIN_TIMEOUT_MS / 1000} s`;
  return tConnected;
}

let connectS = NaN;
let tConnectStart = NaN;
let finished = false;
function finishRun(err?: unknown) {
  if (finished) return;
  finished = true;
  clearInterval(ticker);
  clearTimeout(watchdog);
  progressLine(true);
  if (tty) process.stderr.write("\n");
  if (serverPid) rssAfter = procStatus(serverPid);
  if (err) aborted = `error: ${err instanceof Error ? err.message : String(err)}`;
  report();
  for (const ws of wsSockets) { try { ws.close(); } catch { /* ignore */ } }
  for (const ac of sseAborts) ac.abort();
  tell("quit");
  const hard = setTimeout(() => { killChild(); process.exit(aborted ? 1 : 0); }, 3000);
  child.on("exit", () => { clearTimeout(hard); process.exit(aborted ? 1 : 0); });
  if (childExited) process.exit(aborted ? 1 : 0);
}

function report() {
  const ws = wsLat.subarray(0, wsLatN).slice().sort();
  const sse = Float64Array.from(sseLat).sort();
  const t0 = published?.t0 ?? NaN, t1 = published?.t1 ?? NaN;
  const pubS = (t1 - t0) / 1000;
  const wsWindow = (lastWsRecv - t0) / 1000, sseWindow = (lastSseRecv - t0) / 1000;
  const cpus = os.cpus();
  const minMax = (a: Uint32Array) => (a.length ? `${Math.min(...a)}–${Math.max(...a)}` : "n/a");
  const r = {
    machine: {
      cores: cpus.length, cpu: cpus[0]?.model ?? "unknown", mem_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
      kernel: os.release(), bun: Bun.version, loadavg_before: loadBefore.map((x) => +x.toFixed(2)),
      loadavg_after: os.loadavg().map((x) => +x.toFixed(2)),
    },
    config: { ws: N, sse: M, events: K, rate_per_s: RATE || "max" },
    connect_s: +connectS.toFixed(2),
    published: { events: published?.published ?? 0, seconds: +pubS.toFixed(3), per_s: +((published?.published ?? 0) / pubS).toFixed(1) },
    ws: {
      subscribers: N, ready: wsReady, delivered: wsDelivered, expected: N * K,
      per_subscriber: minMax(wsPerClient), delivered_per_s: +(wsDelivered / wsWindow).toFixed(0),
      latency_ms: { p50: +pct(ws, 50).toFixed(2), p90: +pct(ws, 90).toFixed(2), p99: +pct(ws, 99).toFixed(2), max: +pct(ws, 100).toFixed(2) },
      errors: wsErrors, closed_early: wsClosedEarly,
    },
    sse: {
      subscribers: M, ready: sseReady, delivered: sseDelivered,
      per_subscriber: minMax(ssePerClient), delivered_per_s: +(sseDelivered / sseWindow).toFixed(0),
      latency_ms: { p50: +pct(sse, 50).toFixed(2), p90: +pct(sse, 90).toFixed(2), p99: +pct(sse, 99).toFixed(2), max: +pct(sse, 100).toFixed(2) },
      errors: sseErrors,
    },
    server: {
      pid: serverPid,
      rss_idle: rssIdle?.rss ?? NaN, rss_subscribed: rssSubscribed?.rss ?? NaN, rss_after: rssAfter?.rss ?? NaN,
      rss_peak_sampled: rssMaxSampled || NaN, vmhwm: rssAfter?.hwm ?? NaN,
      cpu_s_publishing: +(cpuAfterPublish - cpuBeforePublish).toFixed(2),
    },
    bench_process: { cpu_s: +((process.cpuUsage().user + process.cpuUsage().system) / 1e6).toFixed(2), rss: process.memoryUsage().rss },
    aborted,
  };
  if (JSON_OUT) { console.log(JSON.stringify(r, null, 2)); return; }
  const L = (k: string, v: string) => console.log(`  ${k.padEnd(30)} ${v}`);
  const lat = (x: typeof r.ws.latency_ms) => `p50 ${x.p50} ms, p90 ${x.p90} ms, p99 ${x.p99} ms, max ${x.max} ms`;
  console.log(`\nprogress fan-out: ${N} WebSocket + ${M} SSE subscribers, ${K} events at ${RATE ? `${RATE}/s` : "max rate"}`);
  L("machine", `${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.mem_gib} GiB, Linux ${r.machine.kernel}, Bun ${r.machine.bun}`);
  L("load average before / after", `${r.machine.loadavg_before.join(" ")} / ${r.machine.loadavg_after.join(" ")}`);
  L("connect + initial state", `${r.connect_s} s for ${N + M} subscribers`);
  L("events published", `${r.published.events} in ${r.published.seconds} s (${r.published.per_s}/s)`);
  L("WebSocket delivered", `${wsDelivered} of ${N * K} (${(wsDelivered / Math.max(1, N * K) * 100).toFixed(2)}%), per subscriber ${r.ws.per_subscriber}`);
  L("WebSocket delivered/s", `${r.ws.delivered_per_s}`);
  L("WebSocket latency", lat(r.ws.latency_ms));
  L("SSE delivered", `${sseDelivered} (per subscriber ${r.sse.per_subscriber}; ≤1 event/100 ms per stream by design)`);
  L("SSE delivered/s", `${r.sse.delivered_per_s}`);
  L("SSE latency", `${lat(r.sse.latency_ms)} (age of the latest state when it arrives)`);
  L("server RSS idle", mib(r.server.rss_idle));
  L("server RSS, all subscribed", mib(r.server.rss_subscribed));
  L("server RSS after publishing", mib(r.server.rss_after));
  L("server RSS peak", `${mib(r.server.vmhwm)} (VmHWM); ${mib(r.server.rss_peak_sampled)} sampled every 100 ms`);
  L("server CPU while publishing", `${r.server.cpu_s_publishing} s`);
  L("bench (clients) process", `${r.bench_process.cpu_s} s CPU, RSS ${mib(r.bench_process.rss)}`);
  L("errors", `ws ${wsErrors} (closed early ${wsClosedEarly}), sse ${sseErrors}`);
  if (aborted) console.log(`  NOTE: ${aborted}`);
  console.log("  Latency includes the clients' own queueing in this one process; other load on the machine adds noise.");
}

run()
  .then((tConnected) => { connectS = (tConnected - tConnectStart) / 1000; finishRun(); })
  .catch((e) => finishRun(e));
