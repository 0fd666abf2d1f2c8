// Entry point: `bun src/server.ts [--port 9004 ...]`. See README for every option.
import { HelpRequested, loadConfig, usage } from "./config";
import { createApp } from "./server/app";
import { findJemalloc } from "./separation/jemalloc";

let config;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (e) {
  if (e instanceof HelpRequested) { console.log(usage()); process.exit(0); }
  console.error(`${(e as Error).message}\n\n${usage()}`);
  process.exit(2);
}
const server = createApp(config);
const bun = server.listen();
console.log(`stemscribe listening on http://${config.host}:${bun.port} (data: ${config.dataDir}, concurrency ${config.concurrency}, retention ${config.retentionMs / 1000} s)`);
const je = findJemalloc();
console.log(je ? `separation runs on jemalloc (${je})` : "separation runs on glibc malloc: install libjemalloc2 for ~10% faster separation");
// Derive and load Whisper now, so the first request does not pay for it.
server.models.whisper().then(
  () => console.log("whisper model loaded"),
  (e) => console.error(`whisper model failed to load: ${(e as Error).message}`),
);
const shutdown = async () => { await server.stop(); process.exit(0); };
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
