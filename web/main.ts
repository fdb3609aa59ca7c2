/// <reference lib="dom" />
/**
 * The page: wires the controls of `index.html` to the flow ({@link openUartSession} and
 * friends). Web Serial for USB-UART adapters, WebUSB for a CH341A, or the in-page emulator.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import type { FlasherEvent } from "../core/flasher/context.ts";
import type { ProgressEvent } from "../core/flasher/progress.ts";
import { humanSize } from "../core/flasher/range.ts";
import { CH341_SPI_PRODUCT_ID, CH341_VENDOR_ID, type UsbDeviceLike } from "../core/io/usb.ts";
import { type SerialPortLike, WebSerialLink } from "../core/io/web_serial.ts";
import { crc32 } from "../core/crc.ts";
import {
  backupChip,
  backupDownloads,
  describeError,
  describeReport,
  type Download,
  eraseRange,
  inspectFile,
  openSpiSession,
  openUartSession,
  type PageMessage,
  type PageSession,
  writeImage,
} from "./flow.ts";
import { createPageVirtual, PAGE_CHIPS, type PageVirtual, parsePagePlan } from "./virtual.ts";

/** The browser APIs this page uses that TypeScript's DOM library does not describe. */
interface NavigatorExtras {
  serial?: { requestPort(options?: unknown): Promise<SerialPortLike> };
  usb?: {
    requestDevice(options: { filters: { vendorId: number; productId: number }[] }): Promise<UsbDeviceLike>;
  };
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el as T;
};

const nav = navigator as Navigator & NavigatorExtras;
let session: PageSession | null = null;
let virtual: PageVirtual | null = null;
let busy = false;

function log(m: PageMessage): void {
  if (m.level === "debug") return;
  const line = document.createElement("div");
  line.className = `log-${m.level}`;
  line.textContent = m.text;
  $("log").append(line);
  $("log").scrollTop = $("log").scrollHeight;
  if (m.level === "hint") {
    $("hint").textContent = m.text;
    $("hint").hidden = false;
  }
}

function showError(e: unknown): void {
  const { cause, remedy } = describeError(e);
  $("error-cause").textContent = cause;
  $("error-remedy").textContent = remedy ?? "";
  $("error").hidden = false;
  const damage = e instanceof FlashError && e.damage
    ? ` (range that may differ: 0x${e.damage.start.toString(16)}..0x${(e.damage.end - 1).toString(16)})`
    : "";
  log({ level: "warning", text: `error: ${cause}${damage}${remedy ? ` — ${remedy}` : ""}` });
}

function setStatus(text: string): void {
  $("status").textContent = text;
  document.body.dataset.status = text;
}

function onProgress(p: ProgressEvent): void {
  const bar = $<HTMLProgressElement>("bar");
  bar.max = p.total || 1;
  bar.value = p.done;
  const rate = p.bytesPerSec ? `, ${(p.bytesPerSec / 1024).toFixed(1)} KiB/s` : "";
  $("progress-text").textContent = `${p.op}: ${humanSize(p.done)} of ${humanSize(p.total)}${rate}`;
}

function onEvent(e: FlasherEvent): void {
  switch (e.type) {
    case "backup":
      log({
        level: "info",
        text: `backup ${e.location} (${humanSize(e.size)}, CRC-32 ${e.crc32.toString(16)})`,
      });
      break;
    case "retry":
      log({
        level: "info",
        text: `retry ${e.attempt}/${e.of}: ${e.op} at 0x${e.addr.toString(16)}: ${e.reason}`,
      });
      break;
    case "notice":
      log({ level: "info", text: e.message });
      break;
    case "unprotect":
      log({ level: "info", text: "the flash was write-protected: protection cleared" });
      break;
    default:
      break;
  }
}

function offer(files: Download[]): void {
  for (const f of files) {
    const url = URL.createObjectURL(new Blob([f.bytes.slice().buffer], { type: f.type }));
    const a = document.createElement("a");
    a.href = url;
    a.download = f.name;
    a.textContent = `${f.name} (${humanSize(f.bytes.length)})`;
    const li = document.createElement("li");
    li.append(a);
    $("downloads").append(li);
    a.click();
  }
}

/** Run one job with the controls locked and errors shown as cause + remedy. */
async function job(name: string, body: () => Promise<void>): Promise<void> {
  if (busy) return;
  busy = true;
  $("error").hidden = true;
  $("hint").hidden = true;
  setStatus(`${name}…`);
  updateControls();
  try {
    await body();
    setStatus(`${name}: done`);
  } catch (e) {
    setStatus(`${name}: failed`);
    showError(e);
  } finally {
    busy = false;
    updateControls();
  }
}

function updateControls(): void {
  const transport = $<HTMLSelectElement>("transport").value;
  $("virtual-options").hidden = transport !== "virtual";
  $("baud-row").hidden = transport === "usb" ||
    (transport === "virtual" && $<HTMLSelectElement>("vpath").value === "spi");
  for (const id of ["backup-btn", "write-btn", "erase-btn", "disconnect-btn"]) {
    $<HTMLButtonElement>(id).disabled = busy || session === null;
  }
  $<HTMLButtonElement>("connect-btn").disabled = busy || session !== null;
}

function fillInfo(s: PageSession): void {
  const dl = $("info");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(s.info)) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v === null ? "n/a" : k === "flashSize" ? `${humanSize(Number(v))}` : String(v);
    dd.dataset.field = k;
    dl.append(dt, dd);
  }
}

function parseNumber(text: string, what: string): number {
  const t = text.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : /^\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new FlashError("USAGE", `${what} "${text}" is not a number`, "write it in decimal or as 0x… hex");
  }
  return n;
}

async function connect(): Promise<void> {
  const transport = $<HTMLSelectElement>("transport").value;
  const chip = $<HTMLSelectElement>("chip").value || undefined;
  const baud = Number($<HTMLSelectElement>("baud").value);
  if (transport === "virtual") {
    const path = $<HTMLSelectElement>("vpath").value as "uart" | "spi";
    const plan = parsePagePlan($<HTMLTextAreaElement>("faults").value, path);
    virtual = createPageVirtual(chip ?? "bk7231n", path, plan);
    session = path === "uart"
      ? await openUartSession(virtual.link!, { chip, baud, onMessage: log })
      : await openSpiSession(virtual.device!, {
        clock: virtual.chip.clock,
        name: "virtual CH341A",
        onMessage: log,
      });
  } else if (transport === "serial") {
    if (!nav.serial) {
      throw new FlashError(
        "PORT",
        "this browser has no Web Serial",
        "use Chrome, Edge or Opera on a desktop (or the CLI: deno task flash)",
      );
    }
    const port = await nav.serial.requestPort();
    const link = await WebSerialLink.open(port, { baud: 115200 });
    log({
      level: "hint",
      text: "if the adapter's RTS is not wired to CEN, short CEN to GND for a moment now to reset the chip",
    });
    session = await openUartSession(link, { chip, baud, onMessage: log });
  } else {
    if (!nav.usb) {
      throw new FlashError("USB", "this browser has no WebUSB", "use Chrome, Edge or Opera on a desktop");
    }
    const device = await nav.usb.requestDevice({
      filters: [{ vendorId: CH341_VENDOR_ID, productId: CH341_SPI_PRODUCT_ID }],
    });
    session = await openSpiSession(device, { onMessage: log });
  }
  $("hint").hidden = true;
  fillInfo(session);
  log({ level: "info", text: `connected: ${session.identity.chip} on ${session.port}` });
  if (virtual) log({ level: "info", text: `faults injected so far: ${virtual.recorder.events.length}` });
}

async function disconnect(): Promise<void> {
  const s = session;
  session = null;
  virtual = null;
  $("info").replaceChildren();
  if (s) await s.close();
}

async function backup(): Promise<void> {
  const store = new MemoryStore();
  const b = await backupChip(session!, store, { onProgress, onEvent });
  offer(await backupDownloads(store, b));
  log({
    level: "info",
    text: `backup of ${humanSize(b.size)} taken, CRC-32 ${b.crc32.toString(16).padStart(8, "0")}`,
  });
}

async function write(): Promise<void> {
  const file = $<HTMLInputElement>("image").files?.[0];
  if (!file) throw new FlashError("USAGE", "no image chosen", "pick the firmware file first");
  const image = new Uint8Array(await file.arrayBuffer());
  const addr = parseNumber($<HTMLInputElement>("addr").value, "address");
  const store = new MemoryStore();
  const overwriteBootloader = $<HTMLInputElement>("overwrite-bl").checked;
  try {
    const r = await writeImage(session!, store, { image, addr, overwriteBootloader }, {
      onProgress,
      onEvent,
    });
    log({ level: "info", text: `${describeReport("write", r)}; verified` });
  } finally {
    // the backup taken before the write is offered even when the write failed
    const b = [...store.entries.keys()].find((k) => k.endsWith(".bin"));
    const sidecar = [...store.entries.keys()].find((k) => k.endsWith(".json"));
    if (b && sidecar) offer(await backupDownloads(store, { location: b, sidecar }));
  }
}

async function erase(): Promise<void> {
  const addr = parseNumber($<HTMLInputElement>("erase-addr").value, "address");
  const size = parseNumber($<HTMLInputElement>("erase-size").value, "size");
  const store = new MemoryStore();
  const overwriteBootloader = $<HTMLInputElement>("overwrite-bl").checked;
  try {
    const r = await eraseRange(session!, store, { addr, size, overwriteBootloader }, { onProgress, onEvent });
    log({ level: "info", text: describeReport("erase", r) });
  } finally {
    const b = [...store.entries.keys()].find((k) => k.endsWith(".bin"));
    const sidecar = [...store.entries.keys()].find((k) => k.endsWith(".json"));
    if (b && sidecar) offer(await backupDownloads(store, { location: b, sidecar }));
  }
}

async function inspect(file: File): Promise<void> {
  const data = new Uint8Array(await file.arrayBuffer());
  const r = inspectFile(data, file.name, $<HTMLInputElement>("show-secrets").checked);
  $("inspect-out").textContent = r.lines.join("\n");
  $("template-row").hidden = r.template === null;
  if (r.template) {
    const json = new TextEncoder().encode(JSON.stringify(r.template, null, 2) + "\n");
    $("template-btn").onclick = () =>
      offer([{
        name: `${file.name.replace(/\.[^.]*$/, "")}.obk-template.json`,
        bytes: json,
        type: "application/json",
      }]);
  }
  log({ level: "info", text: `inspected ${file.name}: ${r.lines.length} line(s)` });
}

function support(): void {
  const parts = [
    nav.serial
      ? "Web Serial: available"
      : "Web Serial: not in this browser (Chrome, Edge, Opera on desktop have it)",
    nav.usb ? "WebUSB: available" : "WebUSB: not in this browser",
  ];
  $("support").textContent = parts.join(" · ");
  const chips = $<HTMLSelectElement>("chip");
  for (const c of PAGE_CHIPS) {
    const o = document.createElement("option");
    o.value = c.id;
    o.textContent = c.name;
    chips.append(o);
  }
}

/** What the page's own test reads: the in-page chip's flash and its CRC. */
const testHooks = {
  virtualFlashBase64(): string | null {
    if (!virtual) return null;
    const data = virtual.flash();
    let s = "";
    for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return btoa(s);
  },
  virtualFlashCrc(): number | null {
    return virtual ? crc32(virtual.flash()) : null;
  },
};
(globalThis as unknown as { bekenlab: typeof testHooks }).bekenlab = testHooks;

support();
updateControls();
$("transport").addEventListener("change", updateControls);
$("vpath").addEventListener("change", updateControls);
$("connect-btn").addEventListener("click", () => job("connect", connect));
$("disconnect-btn").addEventListener("click", () => job("disconnect", disconnect));
$("backup-btn").addEventListener("click", () => job("backup", backup));
$("write-btn").addEventListener("click", () => job("write", write));
$("erase-btn").addEventListener("click", () => job("erase", erase));
$("dump").addEventListener("change", () => {
  const f = $<HTMLInputElement>("dump").files?.[0];
  if (f) job("inspect", () => inspect(f));
});
$("drop").addEventListener("dragover", (e) => e.preventDefault());
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  const f = (e as DragEvent).dataTransfer?.files?.[0];
  if (f) job("inspect", () => inspect(f));
});
setStatus("ready");
