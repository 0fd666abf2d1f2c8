// The server half of bench/progress-fanout.ts, run as its own process so that its RSS is the
// server's alone. Not meant to be started by hand (but it can be: it speaks JSON lines).
//
//   bun bench/fanout-server.ts --events K --rate R [--job-id ID]
//
// stdout, one JSON object a line:  {"ready":true,"port":P,"pid":...,"job_id":ID}
//                                  {"published":K,"t0":ms,"t1":ms}   once the job has completed
// stdin, one command a line:       "go"   publish the K events (once), then complete the job
//                                  "quit" stop the server and exit
//
// Every publish goes out as its own event: the engine's 50 ms coalescing is turned off
// (engine.opts.progressIntervalMs = 0). The message of event i is "t=<publish time> i=<i>", the
// publish time being performance.timeOrigin + performance.now() (epoch ms, sub-ms precision),
// which the clients in the other process compare with their own receipt time.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS } from "../src/config";
import { createApp } from "../src/server/app";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const K = Math.max(1, Math.floor(Number(arg("--events", "1000"))));
const RATE = Number(arg("--rate", "200")); // events per second; 0 = as fast as the event loop allows
const JOB_ID = arg("--job-id", "bench-fanout-job");

const now = () => performance.timeOrigin + performance.now();
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");

const dataDir = mkdtempSync(join(tmpdir(), "stemscribe-bench-"));
const s = createApp({ ...DEFAULTS, host: "127.0.0.1", port: 0, dataDir, retentionMs: 600_000 });
// `opts` is a readonly reference to a plain object whose fields may change: no coalescing.
(s.engine.opts as { progressIntervalMs?: number }).progressIntervalMs = 0;
const server = s.listen();

const job = s.engine.create("bench", [{ name: "working", from: 0, to: 100 }], { id: JOB_ID });

let started = false;
function go() {
  if (started) return;
  started = true;
  let t0 = 0;
  s.engine.run(job, async (j) => {
    const ctx = j.stage("working", "starting");
    t0 = now();
    for (let i = 1; i <= K; i++) {
      if (RATE > 0) {
        // Absolute schedule, so timer jitter does not accumulate into a slower rate.
        const wait = t0 + (i * 1000) / RATE - now();
        if (wait > 0) await Bun.sleep(wait);
      } else if (i % 8 === 0) {
        // "As fast as possible" still lets the sockets flush now and then.
        await new Promise((r) => setImmediate(r));
      }
      ctx.progress(i / K, `t=${now().toFixed(3)} i=${i}`);
    }
  });
  // Report once the job has completed (its terminal event has gone out to every transport).
  const unsub = s.engine.hub.subscribe(JOB_ID, (e) => {
    if (e.status === "completed") {
      unsub();
      out({ published: K, t0, t1: now(), seq: e.seq });
    }
  });
}

async function quit() {
  try { await s.stop(); } catch { /* closing 1,200 sockets at once may race; we exit anyway */ }
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}

let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  buf += chunk;
  let nl: number;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const cmd = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (cmd === "go") go();
    else if (cmd === "quit") void quit();
  }
});
// The bench died without saying quit: do not linger.
process.stdin.on("end", () => void quit());
process.on("SIGTERM", () => void quit());

out({ ready: true, port: server.port, pid: process.pid, job_id: JOB_ID, events: K, rate: RATE });
