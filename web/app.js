// Stemscribe web UI: upload → per-stage progress (WebSocket, SSE fallback) → results, job history,
// and an in-browser mode that runs the same pipeline cores in a Web Worker (nothing uploaded).
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
/** ?transport=sse|ws|poll forces one progress transport (tests, debugging). */
const FORCE_TRANSPORT = params.get("transport");
const TERMINAL = new Set(["completed", "error", "cancelled"]);

/** Stage plans: server kinds as the server names them; browser plans add model loading. */
const PLANS = {
  intake: stages(["uploading", 0, 20], ["preprocessing", 20, 100]),
  transcription: stages(["uploading", 0, 10], ["preprocessing", 10, 30], ["transcribing", 30, 90], ["finalizing", 90, 100]),
  music: stages(["uploading", 0, 5], ["separation", 5, 70], ["transcription", 70, 90], ["karaoke", 90, 100]),
  "browser:transcription": stages(["loading", 0, 25], ["preprocessing", 25, 35], ["transcribing", 35, 97], ["finalizing", 97, 100]),
  "browser:music": stages(["loading", 0, 10], ["preprocessing", 10, 15], ["separation", 15, 75], ["transcription", 75, 95], ["karaoke", 95, 100]),
};
function stages(...rows) { return rows.map(([name, from, to]) => ({ name, from, to })); }
const KIND_OF_BUTTON = { transcribe: "transcription", music: "music", intake: "intake" };

const state = {
  mode: "server",
  file: null,
  fileUrl: null,
  run: null, // the job being shown: {id, kind, mode, plan, view, lastSeq, watcher, started, ended}
  worker: null,
  history: new Map(), // browser-mode jobs, shown beside the server's
};
window.stemscribe = state; // for tests and debugging

// ---------------------------------------------------------------- formatting
const pct = (x) => `${Math.round(Math.max(0, Math.min(100, x)))}%`;
function fmtEta(s) {
  if (s == null || !Number.isFinite(s)) return "";
  s = Math.max(0, Math.round(s));
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}
function fmtTime(t) {
  const m = Math.floor(t / 60), s = t - m * 60;
  return `${String(m).padStart(2, "0")}:${s.toFixed(2).padStart(5, "0")}`;
}
const fmtBytes = (n) => (n == null ? "" : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
  return e;
}
const newId = () => "web" + Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[b % 62]).join("");
async function errorText(r) {
  try {
    const b = await r.json();
    return b?.error?.message ?? b?.message ?? `HTTP ${r.status}`;
  } catch { return `HTTP ${r.status}`; }
}

// ---------------------------------------------------------------- file choice and mode
const drop = $("drop");
$("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); chooseFile(e.dataTransfer.files[0]); });
function chooseFile(f) {
  if (!f) return;
  state.file = f;
  // A finished in-browser job keeps playing its input from this URL: keep it while history uses it.
  const inHistory = [...state.history.values()].some((h) => h.result?.audioUrl === state.fileUrl);
  if (state.fileUrl && !inHistory) URL.revokeObjectURL(state.fileUrl);
  state.fileUrl = URL.createObjectURL(f);
  drop.classList.add("chosen");
  $("drop-text").textContent = `${f.name} · ${fmtBytes(f.size)}`;
  updateButtons();
}
for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener("change", () => setMode(r.value));
function setMode(m) {
  state.mode = m;
  const note = $("mode-note");
  note.classList.remove("err");
  if (m === "browser") {
    const sep = "gpu" in navigator ? "stem separation on WebGPU if the device has it (else WebAssembly)" : "stem separation on WebAssembly (no WebGPU here)";
    note.textContent = `In-browser mode: the audio never leaves this device. Models are downloaded once from this server; transcription runs on WebAssembly, ${sep}.`;
  } else note.textContent = "Server mode: the file is uploaded and processed on the server.";
  updateButtons();
}
function updateButtons() {
  const busy = state.run && !state.run.ended;
  for (const b of document.querySelectorAll("#upload-card .actions button")) {
    b.disabled = !state.file || busy || (state.mode === "browser" && b.dataset.kind === "intake");
  }
}
for (const b of document.querySelectorAll("#upload-card .actions button")) {
  b.addEventListener("click", () => start(KIND_OF_BUTTON[b.dataset.kind]));
}
setMode(document.querySelector('input[name="mode"]:checked').value);

// ---------------------------------------------------------------- notifications
$("opt-notify").addEventListener("change", async (e) => {
  if (!e.target.checked) return;
  if (!("Notification" in window)) { e.target.checked = false; return; }
  const p = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
  if (p !== "granted") e.target.checked = false;
});
function notify(title, body) {
  if (!$("opt-notify").checked || !("Notification" in window) || Notification.permission !== "granted") return;
  try { new Notification(title, { body, tag: "stemscribe" }); } catch { /* some browsers only allow it from a service worker */ }
}

// ---------------------------------------------------------------- progress view
function showProgress(run) {
  delete document.body.dataset.jobStatus;
  delete document.body.dataset.results;
  $("progress-card").classList.remove("hidden");
  $("results-card").classList.add("hidden");
  $("job-label").textContent = `${run.mode === "browser" ? "in browser" : "job"} ${run.id}`;
  const list = $("stages");
  list.replaceChildren();
  run.view = new Map();
  for (const s of run.plan) addStageRow(run, s.name);
  setOverall(0);
  setStatus("", "");
  $("btn-cancel").disabled = false;
  $("btn-cancel").classList.remove("hidden");
}
function addStageRow(run, name) {
  const fill = el("div", { class: "fill" });
  const pctEl = el("span", { class: "pct" }, "0%");
  const msg = el("span", { class: "msg" });
  const row = el("li", { class: "stage pending", "data-stage": name },
    el("span", { class: "icon" }), el("span", { class: "name" }, name), el("div", { class: "bar" }, fill), pctEl, msg);
  $("stages").append(row);
  run.view.set(name, { row, fill, pctEl, msg, status: "pending", progress: 0 });
}
function setStage(run, name, status, progress, message, eta) {
  if (!run.view.has(name)) addStageRow(run, name);
  const v = run.view.get(name);
  if (progress != null) v.progress = Math.max(v.status === status ? v.progress : 0, Math.min(100, progress));
  if (status === "done") v.progress = 100;
  v.status = status;
  v.row.className = `stage ${status}`;
  v.row.dataset.progress = String(Math.round(v.progress));
  v.fill.style.width = `${v.progress}%`;
  const etaText = status === "active" && eta != null ? ` · ETA ${fmtEta(eta)}` : "";
  v.pctEl.textContent = `${pct(v.progress)}${etaText}`;
  if (message != null) v.msg.textContent = message;
}
function setOverall(p, eta) {
  $("overall-fill").style.width = `${Math.max(0, Math.min(100, p))}%`;
  $("overall-text").textContent = `${pct(p)}${p < 100 && eta != null ? ` · ${fmtEta(eta)} left` : ""}`;
}
function setStatus(text, cls) {
  const s = $("status-line");
  s.textContent = text;
  s.className = `status-line ${cls}`;
}

/**
 * Apply one progress event, whatever transport it came from:
 * {seq, status, stage, stage_progress, overall, message, error, eta_s (the job's), stage_eta_s (the stage's)}.
 */
function applyEvent(run, e) {
  if (run !== state.run || run.ended) return;
  if (e.seq != null) {
    if (e.seq <= run.lastSeq) return;
    run.lastSeq = e.seq;
  }
  const names = [...run.view.keys()];
  if (e.status === "completed") {
    for (const n of names) setStage(run, n, "done", 100, null);
    setOverall(100);
    return finish(run, "completed", e.message);
  }
  const idx = e.stage ? names.indexOf(e.stage) : -1;
  if (e.stage && idx < 0 && !TERMINAL.has(e.status) && e.status !== "queued") {
    addStageRow(run, e.stage); // a stage the plan did not list
    return applyEvent(run, { ...e, seq: null });
  }
  for (let i = 0; i < idx; i++) if (run.view.get(names[i]).status !== "done") setStage(run, names[i], "done", 100, null);
  if (e.overall != null) setOverall(e.overall, e.eta_s);
  if (e.status === "queued") {
    setStatus(e.queue_position ? `Waiting in the queue (position ${e.queue_position})` : "Waiting to start", "");
    return;
  }
  if (e.status === "error") {
    const at = idx >= 0 ? names[idx] : names.find((n) => run.view.get(n).status === "active") ?? names[0];
    setStage(run, at, "error", null, e.error || e.message);
    return finish(run, "error", e.error || e.message);
  }
  if (e.status === "cancelled") {
    for (const n of names) if (run.view.get(n).status !== "done") setStage(run, n, "cancelled", null, n === e.stage ? "cancelled" : null);
    return finish(run, "cancelled", "Cancelled");
  }
  if (idx >= 0) {
    const p = e.stage_progress ?? 0;
    setStage(run, names[idx], p >= 100 ? "done" : "active", p, e.message, e.stage_eta_s);
    setStatus(e.message ?? "", "");
  }
}

function finish(run, status, message) {
  run.ended = status;
  run.watcher?.close();
  $("btn-cancel").disabled = true;
  updateButtons();
  refreshHistory();
  if (status === "completed") {
    setStatus(`Done in ${((performance.now() - run.started) / 1000).toFixed(1)} s`, "ok");
    notify("Stemscribe: job finished", `${run.name ?? run.id} (${run.kind}) is ready.`);
    loadResults(run).catch((err) => setStatus(`Results could not be shown: ${err.message}`, "err"));
  } else if (status === "error") {
    setStatus(`Failed: ${message}`, "err");
    notify("Stemscribe: job failed", `${run.name ?? run.id}: ${message}`);
  } else setStatus(message ?? status, "");
  document.body.dataset.jobStatus = status;
}

// ---------------------------------------------------------------- transports
/** Follow a server job: WebSocket first, SSE when the socket fails, polling as the last resort. */
function watchServerJob(run) {
  let ws = null, es = null, pollTimer = null, closed = false, subscribed = false;
  const push = (e) => applyEvent(run, e);
  const w = {
    transport: null,
    close() {
      closed = true;
      try { ws?.close(); } catch {}
      es?.close();
      clearTimeout(pollTimer);
    },
    /** Start SSE (the job must exist: call after the upload has begun or ended). */
    sse() {
      if (closed || es) return;
      ws?.close();
      w.transport = "sse";
      es = new EventSource(`/progress/${encodeURIComponent(run.id)}/stream`);
      es.onmessage = (m) => {
        const d = JSON.parse(m.data);
        push({ seq: d.seq, status: d.status, stage: d.stage, stage_progress: d.stage_progress, overall: d.progress, message: d.message, error: d.error, eta_s: d.eta_s, stage_eta_s: d.stage_eta_s, queue_position: d.queue_position });
        if (TERMINAL.has(d.status)) es.close();
      };
      es.onerror = () => {
        if (closed || run.ended) return es.close();
        if (es.readyState === EventSource.CLOSED) { es = null; w.poll(); }
      };
    },
    poll() {
      if (closed) return;
      w.transport = "poll";
      const tick = async () => {
        if (closed || run.ended) return;
        try {
          const r = await fetch(`/progress/${encodeURIComponent(run.id)}`);
          if (r.ok) {
            const d = await r.json();
            push({ seq: d.seq, status: d.status, stage: d.stage, stage_progress: d.stage_progress, overall: d.progress, message: d.message, error: d.error, eta_s: d.eta_s, stage_eta_s: d.stage_eta_s, queue_position: d.queue_position });
          }
        } catch {}
        pollTimer = setTimeout(tick, 500);
      };
      tick();
    },
    /** Resolves once the socket is subscribed (true) or has failed (false). */
    ws() {
      return new Promise((resolve) => {
        w.transport = "ws";
        try {
          ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
        } catch { return resolve(false); }
        const fail = () => {
          if (!subscribed) return resolve(false);
          if (!closed && !run.ended) { ws = null; w.uploaded ? w.sse() : (w.pendingSse = true); }
        };
        ws.onopen = () => ws.send(JSON.stringify({ subscribe: run.id }));
        ws.onerror = fail;
        ws.onclose = fail;
        ws.onmessage = (m) => {
          let f;
          try { f = JSON.parse(m.data); } catch { return; }
          if (f.event === "subscribed") { subscribed = true; resolve(true); return; }
          if (f.event !== "processing_progress" || f.data.file_id !== run.id) return;
          const d = f.data;
          push({ seq: d.seq, status: d.status, stage: d.stage, stage_progress: d.progress, overall: d.overall_progress, message: d.message, error: d.error, eta_s: d.eta_s, stage_eta_s: d.stage_eta_s, queue_position: d.queue_position });
        };
        setTimeout(() => resolve(subscribed), 3000);
      });
    },
    uploaded: false,
    pendingSse: false,
  };
  return w;
}

// ---------------------------------------------------------------- server mode
async function start(kind) {
  if (!state.file || (state.run && !state.run.ended)) return;
  if (state.mode === "browser") return startInBrowser(kind);
  const run = {
    id: newId(), kind, mode: "server", name: state.file.name, plan: PLANS[kind], lastSeq: -1,
    started: performance.now(), ended: null, fileUrl: state.fileUrl,
  };
  state.run = run;
  updateButtons();
  showProgress(run);
  setStatus("Connecting…", "");
  const watcher = (run.watcher = watchServerJob(run));
  let live = false;
  if (FORCE_TRANSPORT !== "sse" && FORCE_TRANSPORT !== "poll") live = await watcher.ws();
  const form = new FormData();
  form.append("file", state.file);
  let url;
  if (kind === "transcription") {
    url = `/transcribe?async=true&job_id=${run.id}`;
    form.append("model", "whisper-tiny.en");
    form.append("word_timestamps", $("opt-words").checked ? "true" : "false");
  } else if (kind === "music") url = `/upload?model=demucs&auto_process=true&job_id=${run.id}`;
  else url = `/upload?job_id=${run.id}`;
  setStatus(`Uploading ${state.file.name}…`, "");
  // XMLHttpRequest for upload progress; the server reports the same stage once it has the bytes.
  const xhr = new XMLHttpRequest();
  run.xhr = xhr;
  xhr.open("POST", url);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable && run.view.get("uploading")?.status !== "done" && !run.ended) {
      setStage(run, "uploading", "active", (99 * e.loaded) / e.total, `sending ${fmtBytes(e.loaded)} of ${fmtBytes(e.total)}`);
    }
  };
  // Once the request is under way the job exists: SSE can attach.
  if (!live) setTimeout(() => { watcher.uploaded = true; FORCE_TRANSPORT === "poll" ? watcher.poll() : watcher.sse(); }, 150);
  const res = await new Promise((resolve) => {
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText });
    xhr.onerror = () => resolve({ status: 0, body: "" });
    xhr.onabort = () => resolve({ status: -1, body: "" });
    xhr.send(form);
  });
  watcher.uploaded = true;
  if (watcher.pendingSse) watcher.sse();
  if (res.status === -1) return; // cancelled during upload
  if (res.status < 200 || res.status >= 300) {
    let msg = res.status === 0 ? "the upload failed (network error)" : `HTTP ${res.status}`;
    try { msg = JSON.parse(res.body).error.message ?? msg; } catch {}
    applyEvent(run, { seq: null, status: "error", stage: "uploading", error: msg, message: msg });
    return;
  }
  refreshHistory();
}

$("btn-cancel").addEventListener("click", async () => {
  const run = state.run;
  if (!run || run.ended) return;
  if (run.mode === "browser") return cancelInBrowser(run);
  const r = await fetch(`/jobs/${encodeURIComponent(run.id)}`, { method: "DELETE" });
  if (!r.ok && r.status === 404) { run.xhr?.abort(); applyEvent(run, { seq: null, status: "cancelled", stage: null }); }
  refreshHistory();
});

// ---------------------------------------------------------------- results
async function loadResults(run) {
  if (run.mode === "browser") return renderResults(run.result);
  renderResults(await fetchServerResults(run.id, run.kind, run.fileUrl));
}

/** Results of a finished server job, in the shape renderResults takes. */
async function fetchServerResults(id, kind, localAudioUrl) {
  const r = await fetch(`/files/${encodeURIComponent(id)}`);
  if (!r.ok) throw new Error(await errorText(r));
  const { files } = await r.json();
  const out = { kind, files: files.filter((f) => f.url).map((f) => ({ name: f.name, url: f.url, bytes: f.bytes, content_type: f.content_type })), lines: null, segments: null, audioUrl: localAudioUrl };
  const byName = new Map(out.files.map((f) => [f.name, f]));
  if (kind === "transcription") {
    const t = await fetch(`/jobs/${encodeURIComponent(id)}/result`);
    if (t.status === 200) out.segments = (await t.json()).segments;
    out.audioUrl ??= byName.get("input")?.url;
  } else if (kind === "music") {
    const lj = byName.get("lyrics.json");
    if (lj) out.lines = (await (await fetch(lj.url)).json()).lines;
    out.audioUrl = (byName.get("instrumental.mp3") ?? byName.get("instrumental.wav"))?.url ?? localAudioUrl;
  } else out.audioUrl = byName.get("audio.wav")?.url ?? localAudioUrl;
  return out;
}

const STEM_ORDER = ["vocals", "drums", "bass", "other", "instrumental", "audio", "input"];
function renderResults(res) {
  $("results-card").classList.remove("hidden");
  // Players: one per stem (MP3 preferred over WAV), the instrumental, or the decoded audio.
  const players = $("players");
  players.replaceChildren();
  const audioFiles = res.files.filter((f) => /^(drums|bass|other|vocals|instrumental)\.(mp3|wav)$/.test(f.name) || (res.kind === "intake" && f.name === "audio.wav"));
  const byStem = new Map();
  for (const f of audioFiles) {
    const stem = f.name.replace(/\.[^.]+$/, "");
    if (!byStem.has(stem) || f.name.endsWith(".mp3")) byStem.set(stem, f);
  }
  for (const stem of [...byStem.keys()].sort((a, b) => STEM_ORDER.indexOf(a) - STEM_ORDER.indexOf(b))) {
    const f = byStem.get(stem);
    players.append(el("div", { class: "player", "data-stem": stem }, el("b", {}, stem), el("audio", { controls: "", preload: "none", src: f.url })));
  }
  $("players-wrap").querySelector("h3").textContent = res.kind === "music" ? "Stems" : "Audio";
  $("players-wrap").classList.toggle("hidden", byStem.size === 0);

  // Transcript with timestamps (segments, or lyric lines for music).
  const lines = res.lines ?? (res.segments ?? []).map((s) => ({
    start: s.start, end: s.end, text: s.text.trim(),
    words: (s.words ?? []).map((w) => ({ word: w.word.trim(), start: w.start, end: w.end })),
  }));
  const tr = $("transcript");
  tr.replaceChildren();
  for (const l of lines) {
    tr.append(el("li", {}, el("time", { title: "play from here", onclick: () => seek(l.start) }, `${fmtTime(l.start)} → ${fmtTime(l.end)}`), el("span", {}, l.text)));
  }
  $("transcript-wrap").classList.toggle("hidden", lines.length === 0);
  $("transcript-wrap").querySelector("h3").textContent = res.kind === "music" ? "Lyrics" : "Transcript";

  // Karaoke: the words over the instrumental (music) or the original audio (speech).
  setupKaraoke(lines, res.audioUrl);

  const dl = $("downloads");
  dl.replaceChildren();
  for (const f of res.files) {
    if (f.name === "input") continue;
    dl.append(el("li", {}, el("a", { href: f.url, download: f.name }, f.name, " ", el("small", {}, fmtBytes(f.bytes)))));
  }
  $("downloads-wrap").classList.toggle("hidden", dl.children.length === 0);
  document.body.dataset.results = "ready";
}

// ---------------------------------------------------------------- karaoke
let karaoke = null;
function setupKaraoke(lines, audioUrl) {
  const wrap = $("karaoke-wrap");
  const box = $("karaoke");
  const audio = $("karaoke-audio");
  box.replaceChildren();
  if (karaoke) cancelAnimationFrame(karaoke.raf);
  karaoke = null;
  if (!lines.length || !audioUrl) return wrap.classList.add("hidden");
  wrap.classList.remove("hidden");
  audio.src = audioUrl;
  const words = [];
  const lineEls = [];
  for (const l of lines) {
    const lineEl = el("p", { class: "line" });
    // Without word timings, spread the line's words evenly over it.
    const ws = l.words?.length ? l.words : spread(l);
    ws.forEach((w, i) => {
      const span = el("span", { class: "w", onclick: () => seek(w.start) }, w.word);
      lineEl.append(span, i < ws.length - 1 ? " " : "");
      words.push({ ...w, span, line: lineEls.length });
    });
    lineEls.push(lineEl);
    box.append(lineEl);
  }
  karaoke = { words, lineEls, raf: 0, now: -1, line: -1 };
  const tick = () => {
    const t = audio.currentTime;
    let now = -1;
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      w.span.classList.toggle("sung", w.end <= t);
      if (t >= w.start && t < w.end) now = i;
    }
    if (now !== karaoke.now) {
      if (karaoke.now >= 0) words[karaoke.now].span.classList.remove("now");
      if (now >= 0) words[now].span.classList.add("now");
      karaoke.now = now;
    }
    const line = now >= 0 ? words[now].line : lines.findIndex((l) => t >= l.start && t < l.end);
    if (line !== karaoke.line) {
      if (karaoke.line >= 0) lineEls[karaoke.line].classList.remove("current");
      if (line >= 0) {
        lineEls[line].classList.add("current");
        const le = lineEls[line];
        box.scrollTop = Math.max(0, le.offsetTop - box.offsetTop - box.clientHeight / 3);
      }
      karaoke.line = line;
    }
    if (!audio.paused) karaoke.raf = requestAnimationFrame(tick);
  };
  audio.onplay = () => { karaoke.raf = requestAnimationFrame(tick); };
  audio.onseeked = tick;
  audio.ontimeupdate = () => { if (audio.paused) tick(); };
}
function spread(l) {
  const parts = l.text.split(/\s+/).filter(Boolean);
  const d = (l.end - l.start) / Math.max(1, parts.length);
  return parts.map((word, i) => ({ word, start: l.start + i * d, end: l.start + (i + 1) * d }));
}
function seek(t) {
  const a = $("karaoke-audio");
  if (!a.src) return;
  a.currentTime = t;
  a.play().catch(() => {});
}

// ---------------------------------------------------------------- job history
let historyTimer = null;
async function refreshHistory() {
  clearTimeout(historyTimer);
  let jobs = [];
  try {
    const r = await fetch("/jobs");
    if (r.ok) jobs = (await r.json()).jobs;
  } catch {}
  const rows = [...state.history.values(), ...jobs].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  const body = $("history");
  body.replaceChildren();
  for (const j of rows) {
    const running = !TERMINAL.has(j.status);
    const actions = el("td", {});
    if (running && !j.local) {
      actions.append(el("button", { class: "danger", "data-cancel": j.job_id, onclick: async (e) => {
        e.target.disabled = true;
        await fetch(`/jobs/${encodeURIComponent(j.job_id)}`, { method: "DELETE" });
        refreshHistory();
      } }, "Cancel"));
    }
    if (j.status === "completed" && (!j.local || j.result)) {
      actions.append(el("button", { class: "secondary", "data-open": j.job_id, onclick: () => openJob(j) }, "Open"));
    }
    body.append(el("tr", { "data-job": j.job_id },
      el("td", { class: "id", title: j.job_id }, j.job_id.slice(0, 12)),
      el("td", {}, j.local ? `${j.kind} (browser)` : j.kind),
      el("td", { class: `st-${j.status}`, title: j.error ?? j.message ?? "" }, j.status === "error" ? `error: ${j.error ?? ""}` : j.status),
      el("td", {}, pct(j.progress ?? 0)),
      el("td", {}, new Date(j.created_at).toLocaleTimeString()),
      actions));
  }
  $("history-empty").classList.toggle("hidden", rows.length > 0);
  const anyRunning = rows.some((j) => !TERMINAL.has(j.status));
  if (!document.hidden) historyTimer = setTimeout(refreshHistory, anyRunning ? 1500 : 5000);
}
async function openJob(j) {
  if (state.run && !state.run.ended) return;
  try {
    // In-browser jobs live only in this page: their results (object URLs) stay on the history entry.
    renderResults(j.local ? j.result : await fetchServerResults(j.job_id, j.kind, null));
    $("results-card").scrollIntoView({ behavior: "smooth" });
  } catch (e) {
    setStatus(`Could not open job ${j.job_id}: ${e.message}`, "err");
  }
}
$("btn-refresh").addEventListener("click", refreshHistory);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshHistory(); });
refreshHistory();

// ---------------------------------------------------------------- in-browser mode
function getWorker() {
  if (state.worker) return state.worker;
  const w = new Worker("/bundle/pipeline.js", { type: "module" });
  w.onmessage = (m) => onWorkerMessage(m.data);
  w.onerror = (e) => {
    const run = state.run;
    if (run && run.mode === "browser" && !run.ended) {
      applyEvent(run, { seq: null, status: "error", stage: run.currentStage ?? "loading", error: `the in-browser worker crashed: ${e.message ?? "unknown error"}` });
    }
    state.worker = null;
  };
  state.worker = w;
  return w;
}
async function startInBrowser(kind) {
  const plan = PLANS[`browser:${kind}`];
  if (!plan) return;
  const run = {
    id: newId(), kind, mode: "browser", name: state.file.name, plan, lastSeq: -1,
    started: performance.now(), ended: null, fileUrl: state.fileUrl, seq: 0,
  };
  state.run = run;
  const entry = { job_id: run.id, kind, status: "running", progress: 0, created_at: new Date().toISOString(), local: true };
  state.history.set(run.id, entry);
  run.entry = entry;
  updateButtons();
  showProgress(run);
  setStatus("Starting the in-browser pipeline…", "");
  const bytes = await state.file.arrayBuffer();
  // A shared flag reaches the worker even while its WASM work starves the message queue.
  run.cancelFlag = self.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : null;
  getWorker().postMessage({ type: "run", id: run.id, kind, name: state.file.name, bytes, cancelFlag: run.cancelFlag, options: { wordTimestamps: $("opt-words").checked, backend: params.get("backend"), deviceMemoryGb: params.has("device_memory_gb") ? Number(params.get("device_memory_gb")) : null } }, [bytes]);
  refreshHistory();
}
function cancelInBrowser(run) {
  $("btn-cancel").disabled = true;
  setStatus("Cancelling…", "");
  if (run.cancelFlag) Atomics.store(run.cancelFlag, 0, 1);
  state.worker?.postMessage({ type: "cancel", id: run.id });
  // If the worker does not answer soon, stop it outright (its models load again next time).
  setTimeout(() => {
    if (run.ended || state.run !== run) return;
    state.worker?.terminate();
    state.worker = null;
    run.entry.status = "cancelled";
    applyEvent(run, { seq: ++run.seq, status: "cancelled", stage: run.currentStage, message: "cancelled" });
  }, 2000);
}
function onWorkerMessage(msg) {
  const run = state.run;
  if (!run || run.mode !== "browser" || msg.id !== run.id) return;
  const spec = run.plan.find((s) => s.name === msg.stage);
  if (msg.type === "progress") {
    run.currentStage = msg.stage;
    const overall = spec ? spec.from + ((spec.to - spec.from) * msg.progress) / 100 : null;
    // ETA of the active stage from its own rate (model downloads and decoding run at different speeds).
    if (run.stageName !== msg.stage) { run.stageName = msg.stage; run.stageStart = performance.now(); }
    const elapsed = (performance.now() - run.stageStart) / 1000;
    const eta = msg.progress >= 2 && elapsed > 0.5 ? (elapsed * (100 - msg.progress)) / msg.progress : null;
    // and the job's from its overall rate, as the server computes both
    const total = (performance.now() - run.started) / 1000;
    const jobEta = overall != null && overall >= 1 && total > 0.5 ? (total * (100 - overall)) / overall : null;
    run.entry.progress = overall ?? run.entry.progress;
    run.entry.status = msg.stage;
    applyEvent(run, { seq: ++run.seq, status: msg.stage, stage: msg.stage, stage_progress: msg.progress, overall, message: msg.message, error: null, eta_s: jobEta, stage_eta_s: eta });
  } else if (msg.type === "done") {
    const files = msg.files.map((f) => ({ name: f.name, bytes: f.data.size ?? f.data.byteLength ?? f.data.length, content_type: f.content_type, url: URL.createObjectURL(f.data instanceof Blob ? f.data : new Blob([f.data], { type: f.content_type })) }));
    run.result = { kind: run.kind, files, segments: msg.result?.segments ?? null, lines: msg.lines ?? null, text: msg.result?.text, audioUrl: null };
    const byName = new Map(files.map((f) => [f.name, f]));
    run.result.audioUrl = run.kind === "music" ? (byName.get("instrumental.wav")?.url ?? run.fileUrl) : run.fileUrl;
    run.entry.status = "completed";
    run.entry.progress = 100;
    run.entry.result = run.result;
    window.stemscribeResult = msg.result ?? null;
    applyEvent(run, { seq: ++run.seq, status: "completed", stage: "completed", stage_progress: 100, overall: 100, message: "done", eta_s: 0, stage_eta_s: 0 });
  } else if (msg.type === "error") {
    run.entry.status = msg.cancelled ? "cancelled" : "error";
    run.entry.error = msg.message;
    applyEvent(run, { seq: ++run.seq, status: msg.cancelled ? "cancelled" : "error", stage: msg.stage, error: msg.message, message: msg.message });
  }
}
