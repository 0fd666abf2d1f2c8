// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, with every request recorded.
import { chromium, type Browser, type BrowserContext, type Page, type Request } from "playwright-core";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = () => existsSync(CHROMIUM);
export const OUT_DIR = join(import.meta.dir, "../out");

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
      // WebGPU exists here only through SwiftShader; enable it so the adapter probe is real.
      "--enable-unsafe-webgpu", "--use-angle=swiftshader", "--enable-features=Vulkan",
    ],
  });
}

export interface RecordedRequest {
  url: string;
  method: string;
  contentType: string;
  bodyBytes: number;
  /** The body's first bytes, as latin1 (enough to spot RIFF/ID3/fLaC/OggS/multipart). */
  head: string;
  resourceType: string;
}

export interface OpenedPage {
  context: BrowserContext;
  page: Page;
  requests: RecordedRequest[];
  consoleLines: string[];
  close(): Promise<void>;
}

/** A fresh context + page that records every request (page and workers) and console line. */
export async function openPage(browser: Browser, url: string, opts: { notifications?: boolean } = {}): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  if (opts.notifications) await context.grantPermissions(["notifications"], { origin: new URL(url).origin });
  const requests: RecordedRequest[] = [];
  const consoleLines: string[] = [];
  const record = (r: Request) => {
    const buf = r.postDataBuffer();
    requests.push({
      url: r.url(), method: r.method(), contentType: r.headers()["content-type"] ?? "",
      bodyBytes: buf?.length ?? 0, head: buf ? buf.subarray(0, 64).toString("latin1") : "", resourceType: r.resourceType(),
    });
  };
  context.on("request", record);
  const page = await context.newPage();
  page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
  page.on("worker", (w) => w.on("console", (m) => consoleLines.push(`[worker ${m.type()}] ${m.text()}`)));
  await page.goto(url);
  return { context, page, requests, consoleLines, close: () => context.close() };
}

export function screenshotPath(name: string): string {
  mkdirSync(OUT_DIR, { recursive: true });
  return join(OUT_DIR, `${name}.png`);
}

/** Does a recorded request carry audio (a multipart upload or raw audio bytes)? */
export function carriesAudio(r: RecordedRequest): boolean {
  if (/multipart\/form-data/i.test(r.contentType) || /^audio\//i.test(r.contentType)) return true;
  if (r.bodyBytes === 0) return false;
  return /^(RIFF|ID3|fLaC|OggS|\xff[\xe0-\xff])/.test(r.head) || r.head.slice(4, 8) === "ftyp" || r.bodyBytes > 64 * 1024;
}
