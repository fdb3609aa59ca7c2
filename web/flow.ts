/**
 * What the page does, without the page: open a session on a byte link (Web Serial or the
 * in-page emulator) or a WebUSB CH341A, then identify, back up, write + verify and erase with
 * the same flasher core and the same guards as `deno task flash` (backup before anything
 * destructive, bootloader window, efuse key check, errors with a remedy). Everything here is
 * browser-safe: no `Deno.*`, no `node:` module but the CRC (mapped to a browser build).
 *
 * @module
 */

import { chipById, formatKey } from "../core/chips/profiles.ts";
import type { Clock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import { type BackupRecord, takeBackup } from "../core/flasher/backup.ts";
import type { ChipIdentity } from "../core/flasher/sidecar.ts";
import type { MemoryStore } from "../core/flasher/store.ts";
import { createContext, type FlasherContext, type FlasherEvent } from "../core/flasher/context.ts";
import { eraseRegion } from "../core/flasher/erase.ts";
import type { ProgramReport } from "../core/flasher/program.ts";
import type { ProgressListener } from "../core/flasher/progress.ts";
import { hex, humanSize } from "../core/flasher/range.ts";
import type { FlashTarget } from "../core/target.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import { checkImageKey } from "../core/image/key_check.ts";
import { inspectDump, type InspectReport, redactReport } from "../core/image/inspect.ts";
import { reportLines } from "../core/image/report_lines.ts";
import { type ObkTemplate, obkTemplate } from "../core/image/tuya_config.ts";
import { openSpiTarget } from "../core/spi/target.ts";
import type { SessionEvent } from "../core/uart/events.ts";
import { openUartTarget } from "../core/uart/target.ts";

/** A message for the page's log: "hint" lines are what the user must do now (reset the chip). */
export interface PageMessage {
  level: "info" | "hint" | "warning" | "debug";
  text: string;
}

/** An open chip, as the page works with it. */
export interface PageSession {
  kind: "uart" | "spi";
  target: FlashTarget;
  clock: Clock;
  /** Baud rate in use (UART), null over SPI. */
  baud: number | null;
  /** Port name for the log ("virtual:bk7231n", "web-serial:1a86:7523", "webusb:ch341a"). */
  port: string;
  /** Names for backups and sidecars. */
  identity: ChipIdentity;
  /** What the chip-info panel shows. */
  info: Record<string, string | number | null>;
  /** End of the bootloader window the write guard protects. */
  bootloaderEnd: number;
  /** Release the port. */
  close(): Promise<void>;
}

/** How to open a UART session. */
export interface UartOpenOptions {
  /** Chip mode id ("bk7231n"); detected when absent. */
  chip?: string;
  /** Working baud rate after linking (default 921600). */
  baud?: number;
  /** Link-check budget (default 20 s, the time a user needs to pulse CEN by hand). */
  linkTimeoutMs?: number;
  onMessage?: (m: PageMessage) => void;
}

function sessionMessage(e: SessionEvent): PageMessage {
  switch (e.type) {
    case "hint":
      return { level: "hint", text: e.message };
    case "warning":
      return { level: "warning", text: e.message };
    case "linked":
    case "baud":
      return { level: "debug", text: e.message };
    default:
      return { level: "info", text: e.message };
  }
}

/**
 * Link, switch baud and identify the chip behind `link` (the modem-line reset is tried where
 * the link has modem lines; otherwise a "hint" message asks the user to reset the chip).
 */
export async function openUartSession(link: ByteLink, opts: UartOpenOptions = {}): Promise<PageSession> {
  const requested = opts.chip ? chipById(opts.chip) : undefined;
  if (opts.chip && !requested) {
    throw new FlashError(
      "USAGE",
      `unknown chip "${opts.chip}"`,
      "pick a chip from the list, or leave it on detect",
    );
  }
  const opened = await openUartTarget(link, {
    chip: requested,
    baud: opts.baud ?? 921600,
    linkTimeoutMs: opts.linkTimeoutMs ?? 20000,
    onEvent: (e) => opts.onMessage?.(sessionMessage(e)),
  }).catch(async (e) => {
    await link.close().catch(() => {/* the open failure is the one to report */});
    throw e;
  });
  const id = opened.identity;
  const flashId = id.flashId ? Array.from(id.flashId, (b) => b.toString(16).padStart(2, "0")).join("") : null;
  const key = id.key ? formatKey(id.key) : null;
  for (const w of id.warnings) opts.onMessage?.({ level: "warning", text: w });
  return {
    kind: "uart",
    target: opened.target,
    clock: link.clock,
    baud: opened.baud,
    port: link.name,
    identity: { chip: id.profile.name, flashId, key },
    info: {
      chip: id.profile.name,
      loader: id.personality,
      bootloader: id.bootloader ?? "unknown",
      chipId: id.chipId === null ? null : hex(id.chipId),
      flashId,
      flashSize: id.flashSize,
      key,
      baud: opened.baud,
    },
    bootloaderEnd: id.profile.layout.bootloader.end,
    close: () => opened.target.close(),
  };
}

/** Open a CH341A (WebUSB device or the virtual one) and enter the chip's SPI flash mode. */
export async function openSpiSession(
  device: UsbDeviceLike,
  opts: { clock?: Clock; name?: string; onMessage?: (m: PageMessage) => void; signal?: AbortSignal } = {},
): Promise<PageSession> {
  const spi = await Ch341aSpi.open(device, { clock: opts.clock, name: opts.name ?? "webusb:ch341a" });
  let target;
  try {
    target = await openSpiTarget(spi, {
      entry: {},
      signal: opts.signal,
      onProgress: (p) =>
        opts.onMessage?.({ level: p.phase === "failed" ? "warning" : "info", text: p.message }),
    });
  } catch (e) {
    await spi.close().catch(() => {/* the entry failure is the one to report */});
    throw e;
  }
  const info = await target.info();
  const flashId = info.flashId
    ? Array.from(info.flashId, (b) => b.toString(16).padStart(2, "0")).join("")
    : null;
  return {
    kind: "spi",
    target,
    clock: spi.clock,
    baud: null,
    port: spi.name,
    identity: { chip: "beken-spi", flashId, key: null },
    info: {
      chip: "Beken SPI flash mode",
      flashId,
      flashSize: info.flashSize,
      statusRegisters: info.statusRegisters ? info.statusRegisters.map((b) => hex(b)).join(" ") : null,
      entryAttempts: target.entry?.attempt ?? null,
    },
    bootloaderEnd: 0x11000,
    close: () => target.close(),
  };
}

/** A file the page offers for download. */
export interface Download {
  name: string;
  bytes: Uint8Array;
  type: "application/octet-stream" | "application/json";
}

/** The backup image and its JSON sidecar as downloads, from the store they were saved in. */
export async function backupDownloads(
  store: MemoryStore,
  backup: { location: string; sidecar: string },
): Promise<
  Download[]
> {
  return [
    { name: backup.location, bytes: await store.get(backup.location), type: "application/octet-stream" },
    { name: backup.sidecar, bytes: await store.get(backup.sidecar), type: "application/json" },
  ];
}

/** Hooks of a running job. */
export interface JobHooks {
  onProgress?: ProgressListener;
  onEvent?: (e: FlasherEvent) => void;
  signal?: AbortSignal;
  /** Wall time, for backup names (default now). */
  now?: () => Date;
}

async function contextOf(s: PageSession, hooks: JobHooks): Promise<FlasherContext> {
  return await createContext(s.target, s.clock, {
    baud: s.baud,
    onProgress: hooks.onProgress,
    onEvent: hooks.onEvent,
    signal: hooks.signal,
  });
}

/** Back up the whole flash into `store`; the result names the image and its sidecar there. */
export async function backupChip(
  s: PageSession,
  store: MemoryStore,
  hooks: JobHooks = {},
): Promise<BackupRecord> {
  const ctx = await contextOf(s, hooks);
  return await takeBackup(ctx, {
    store,
    identity: s.identity,
    createdAt: (hooks.now ?? (() => new Date()))(),
  });
}

/** Options of {@link writeImage}. */
export interface WriteRequest {
  image: Uint8Array;
  addr: number;
  /** Allow writing into the bootloader window (the CLI's --overwrite-bootloader). */
  overwriteBootloader?: boolean;
  /** Write an image built for another efuse key anyway (the CLI's --skip-key-check). */
  skipKeyCheck?: boolean;
}

/**
 * Write `req.image` at `req.addr` with a whole-flash backup first (kept in `store` for the page
 * to offer), skipping sectors that already match; the write ends with the core's verify. An app
 * image built for another efuse key than the chip's is refused first (WRONG_KEY), as by the CLI.
 */
export async function writeImage(
  s: PageSession,
  store: MemoryStore,
  req: WriteRequest,
  hooks: JobHooks = {},
): Promise<ProgramReport> {
  // a write the bootloader guard refuses anyway is not key-checked (one error, no note)
  if (req.overwriteBootloader || req.addr >= s.bootloaderEnd) {
    const check = checkImageKey(req.image, req.addr, s.identity.key, req.skipKeyCheck ?? false);
    if (check) hooks.onEvent?.({ type: "notice", message: check.note });
  }
  const ctx = await contextOf(s, hooks);
  return await writeFlash(ctx, req.image, {
    addr: req.addr,
    store,
    identity: s.identity,
    createdAt: (hooks.now ?? (() => new Date()))(),
    overwriteBootloader: req.overwriteBootloader,
    bootloaderEnd: s.bootloaderEnd,
  });
}

/** Erase `[addr, addr + size)` (sector-aligned) with a backup first. */
export async function eraseRange(
  s: PageSession,
  store: MemoryStore,
  req: { addr: number; size: number; overwriteBootloader?: boolean },
  hooks: JobHooks = {},
): Promise<ProgramReport> {
  const ctx = await contextOf(s, hooks);
  return await eraseRegion(ctx, {
    addr: req.addr,
    size: req.size,
    store,
    identity: s.identity,
    createdAt: (hooks.now ?? (() => new Date()))(),
    overwriteBootloader: req.overwriteBootloader,
    bootloaderEnd: s.bootloaderEnd,
  });
}

/** One line about a finished write or erase. */
export function describeReport(verb: string, r: ProgramReport): string {
  return `${verb}: ${r.changed} sector(s) changed, ${r.unchanged} already matched; ${r.blockErases} 64 KiB + ${r.sectorErases} 4 KiB erases${
    r.backupRecord ? `; backup ${r.backupRecord.location} (${humanSize(r.backupRecord.size)})` : ""
  }`;
}

/**
 * The core's remedies name the CLI's flags; on the page the same choice is a control. Only
 * flags the page has a control for are renamed.
 */
const PAGE_CONTROLS: [RegExp, string][] = [
  [/--overwrite-bootloader/g, 'the "allow writing the bootloader window" box'],
  [/--addr /g, "address "],
  [/--chip /g, "chip "],
  [/--skip-key-check/g, 'the "write even if built for another key" box'],
  [/--baud /g, "baud "],
];

/** The user-facing text of any failure: cause and remedy for a {@link FlashError}, in the page's words. */
export function describeError(e: unknown): { cause: string; remedy: string | null } {
  if (!(e instanceof FlashError)) return { cause: e instanceof Error ? e.message : String(e), remedy: null };
  let remedy = e.remedy;
  for (const [flag, control] of PAGE_CONTROLS) remedy = remedy.replace(flag, control);
  return { cause: e.message, remedy };
}

/** What the page shows of a dump: the report's lines and, where the dump has Tuya pins, a template. */
export interface PageInspection {
  /** The report (secrets masked unless asked for). */
  report: InspectReport;
  /** The same as the CLI's `inspect` lines. */
  lines: string[];
  /** An OpenBeken device template from the Tuya pins, or null when the dump has none. */
  template: ObkTemplate | null;
}

/** Inspect a dump or image dropped on the page, as `deno task flash inspect` does. */
export function inspectFile(data: Uint8Array, name: string, showSecrets: boolean): PageInspection {
  const full = inspectDump(data);
  const report = showSecrets ? full : redactReport(full);
  const board = full.tuya?.board;
  const chip = full.chip.family?.startsWith("BK7231M") ? "BK7231M" : full.chip.family;
  return {
    report,
    lines: reportLines(report, name),
    template: board && board.pins.length > 0 ? obkTemplate(board, chip) : null,
  };
}
