/**
 * `deno task web:test`: build the page, serve it on loopback, and drive a real headless
 * Chromium (the system's, through npm:puppeteer-core) through the whole flow on the in-page
 * virtual chip: connect, chip info, backup (the downloaded image compared byte for byte with
 * the virtual chip's flash, its sidecar CRC checked), write + verify, the bootloader guard, and
 * a screenshot for the README. Exits non-zero when no browser is installed.
 *
 * @module
 */

import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { join } from "node:path";
import { crc32 } from "../core/crc.ts";
import { TUYA_N_KEY } from "../core/image/cipher.ts";
import { sampleUa } from "../core/image/samples.ts";
import { PLANTED, syntheticDump } from "../tests/support/dumps.ts";
import { buildSite, DIST } from "./build.ts";
import { serveDir } from "./serve.ts";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

async function findBrowser(): Promise<string | null> {
  const given = Deno.env.get("CHROME_PATH");
  for (const p of given ? [given, ...CANDIDATES] : CANDIDATES) {
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch {
      // not at this path; try the next
    }
  }
  return null;
}

let passed = 0;
let failed = 0;

async function step(name: string, body: () => Promise<void>): Promise<void> {
  const t = performance.now();
  try {
    await body();
    passed++;
    console.log(`ok   ${name} (${Math.round(performance.now() - t)} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e instanceof Error ? e.message : e}`);
  }
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

async function waitStatus(page: Page, want: string, timeoutMs = 60000): Promise<void> {
  await page.waitForFunction(
    (w: string) => document.body.dataset.status === w || document.body.dataset.status?.endsWith("failed"),
    { timeout: timeoutMs },
    want,
  );
  const status = await page.$eval("body", (b) => (b as HTMLElement).dataset.status);
  if (status !== want) {
    const error = await page.$eval("#error", (e) => (e as HTMLElement).innerText);
    throw new Error(`status "${status}" instead of "${want}": ${error}`);
  }
}

async function waitForFiles(dir: string, suffixes: string[], timeoutMs = 20000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    const found = suffixes.map((s) => names.find((n) => n.endsWith(s) && !n.endsWith(".crdownload")));
    if (found.every((f) => f !== undefined)) return found as string[];
    if (Date.now() > deadline) throw new Error(`no ${suffixes.join(" and ")} download after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function virtualFlash(page: Page): Promise<Uint8Array> {
  const b64 = await page.evaluate(() =>
    (globalThis as unknown as { bekenlab: { virtualFlashBase64(): string | null } }).bekenlab
      .virtualFlashBase64()
  );
  if (b64 === null) throw new Error("the page has no virtual chip");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

async function run(browserPath: string): Promise<void> {
  await buildSite();
  const server = serveDir(DIST, "127.0.0.1:0");
  const downloads = await Deno.makeTempDir({ prefix: "bekenlab-web-" });
  let browser: Browser | null = null;
  try {
    browser = await puppeteer.launch({
      executablePath: browserPath,
      headless: true,
      // root in CI cannot use Chromium's sandbox
      args: ["--no-sandbox", "--window-size=1280,1100"],
      defaultViewport: { width: 1280, height: 1100 },
    });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
    await page.goto(server.url);
    await waitStatus(page, "ready");

    await step("connect to the in-page virtual BK7231N and identify it", async () => {
      await page.select("#transport", "virtual");
      await page.select("#chip", "bk7231n");
      await page.click("#connect-btn");
      await waitStatus(page, "connect: done");
      const chip = await page.$eval('#info dd[data-field="chip"]', (e) => e.textContent);
      check(chip === "BK7231N", `chip shown as ${chip}`);
      const key = await page.$eval('#info dd[data-field="key"]', (e) => e.textContent);
      check(key === "510fb093 a3cbeadc 5993a17e c7adeb03", `key shown as ${key}`);
    });

    await step("back up: the downloaded image is the virtual chip's flash, byte for byte", async () => {
      await page.click("#backup-btn");
      await waitStatus(page, "backup: done");
      const [bin, json] = await waitForFiles(downloads, [".bin", ".json"]);
      const image = await Deno.readFile(join(downloads, bin));
      const flash = await virtualFlash(page);
      const at = firstDifference(image, flash);
      check(at === -1, `backup differs from the chip at byte ${at} (sizes ${image.length}, ${flash.length})`);
      const sidecar = JSON.parse(await Deno.readTextFile(join(downloads, json)));
      const crc = crc32(image).toString(16).padStart(8, "0");
      check(sidecar.crc32 === crc, `sidecar CRC ${sidecar.crc32}, file CRC ${crc}`);
      for (const f of [bin, json]) await Deno.remove(join(downloads, f));
    });

    const app = new Uint8Array(96 * 1024).map((_, i) => (i * 131 + (i >> 8)) & 0xff);
    const appPath = join(downloads, "..", `bekenlab-web-app-${Date.now()}.bin`);
    await Deno.writeFile(appPath, app);
    await step("write an image at 0x11000: backup first, verified, in the chip", async () => {
      const input = await page.$("#image");
      await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(appPath);
      await page.$eval("#addr", (e) => ((e as HTMLInputElement).value = "0x11000"));
      await page.click("#write-btn");
      await waitStatus(page, "write: done");
      const flash = await virtualFlash(page);
      const at = firstDifference(flash.subarray(0x11000, 0x11000 + app.length), app);
      check(at === -1, `flash at 0x11000 differs from the image at byte ${at}`);
      const log = await page.$eval("#log", (e) => (e as HTMLElement).innerText);
      check(/verified/.test(log), "the log does not say verified");
      await waitForFiles(downloads, [".bin", ".json"]);
    });

    await step("a write at 0x0 is refused by the bootloader guard and changes nothing", async () => {
      const before = await virtualFlash(page);
      await page.$eval("#addr", (e) => ((e as HTMLInputElement).value = "0x0"));
      await page.click("#write-btn");
      await waitStatus(page, "write: failed");
      const cause = await page.$eval("#error-cause", (e) => e.textContent ?? "");
      const remedy = await page.$eval("#error-remedy", (e) => e.textContent ?? "");
      check(/bootloader/i.test(cause) && remedy.length > 0, `error was "${cause}" / "${remedy}"`);
      check(firstDifference(before, await virtualFlash(page)) === -1, "the flash changed");
      await page.$eval("#addr", (e) => ((e as HTMLInputElement).value = "0x11000"));
    });

    await step("an app built for another key is refused before anything is written", async () => {
      const before = await virtualFlash(page);
      const wrongKey = sampleUa([0, 0, 0, 0], "bekenlab-web-zero-key-app");
      const wrongPath = join(downloads, "..", `bekenlab-web-zero-${Date.now()}.bin`);
      await Deno.writeFile(wrongPath, wrongKey);
      try {
        const input = await page.$("#image");
        await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(wrongPath);
        await page.click("#write-btn");
        await waitStatus(page, "write: failed");
        const cause = await page.$eval("#error-cause", (e) => e.textContent ?? "");
        check(/key/i.test(cause), `error was "${cause}"`);
        check(firstDifference(before, await virtualFlash(page)) === -1, "the flash changed");
      } finally {
        await Deno.remove(wrongPath).catch(() => {});
      }
    });

    await step("inspect a dropped dump: Tuya pins, MAC, template; secrets masked", async () => {
      const dump = syntheticDump([...TUYA_N_KEY], { storage: true, rf: true });
      const dumpPath = join(downloads, "..", `bekenlab-web-dump-${Date.now()}.bin`);
      await Deno.writeFile(dumpPath, dump);
      try {
        const input = await page.$("#dump");
        await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(dumpPath);
        await waitStatus(page, "inspect: done");
        const text = await page.$eval("#inspect-out", (e) => e.textContent ?? "");
        check(/module CB2S/.test(text), "no module CB2S in the report");
        check(/P6: .*Rel;1/.test(text) || /P6:.*relay/i.test(text), `relay on P6 not shown:\n${text}`);
        check(/MAC\s+3a:1f:8d:12:34:56/i.test(text), "MAC not shown");
        for (const secret of [PLANTED.passwd, PLANTED.psk, PLANTED.auzkey]) {
          check(!text.includes(secret), "a secret is shown without 'show secrets'");
        }
        const hidden = await page.$eval("#template-row", (e) => (e as HTMLElement).hidden);
        check(!hidden, "no template offered");
        await page.click("#template-btn");
        const [tpl] = await waitForFiles(downloads, [".obk-template.json"]);
        const template = JSON.parse(await Deno.readTextFile(join(downloads, tpl)));
        check(template.pins?.["6"] === "Rel;1", `template pin 6 is ${template.pins?.["6"]}`);
      } finally {
        await Deno.remove(dumpPath).catch(() => {});
      }
    });

    await step("screenshot for the README", async () => {
      await page.screenshot({ path: join(DIST, "..", "..", "docs", "web-page.png"), fullPage: true });
    });

    await step("no uncaught error in the page", () => {
      check(pageErrors.length === 0, pageErrors.join("; "));
      return Promise.resolve();
    });
    await Deno.remove(appPath).catch(() => {});
  } finally {
    await browser?.close();
    await server.shutdown();
    await Deno.remove(downloads, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const browserPath = await findBrowser();
  if (!browserPath) {
    console.error("error: no Chromium found (looked at $CHROME_PATH and " + CANDIDATES.join(", ") + ")");
    console.error("remedy: install Debian's chromium (apt-get install -y chromium) or set CHROME_PATH");
    Deno.exit(1);
  }
  try {
    await run(browserPath);
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e instanceof Error ? e.stack : e}`);
  }
  console.log(`web: ${passed} passed, ${failed} failed`);
  Deno.exit(failed === 0 ? 0 : 1);
}
