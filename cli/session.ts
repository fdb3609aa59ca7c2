/**
 * Opening what `--port` names and handing the command a ready {@link FlashTarget}: the
 * in-process emulator, a serial port or TCP bridge (UART boot protocol), or an SPI programmer
 * (CH341A, real or virtual; spidev). Ports open through the port registry
 * (`core/io/registry.ts`), virtual ones on the emulator `virtual_ports.ts` sets up. The session
 * also saves a virtual chip's state after the command, whether it succeeded or not.
 *
 * @module
 */

import type { FaultPlan } from "../emulator/faults/plan.ts";
import { BOOTLOADER_END, type ChipProfile, CHIPS, formatKey, requireChip } from "../core/chips/profiles.ts";
import { type Clock, realClock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import type { ChipIdentity } from "../core/flasher/sidecar.ts";
import type { FlashTarget } from "../core/target.ts";
import type { ByteLink } from "../core/io/link.ts";
import { type HeldLock, lockPath } from "../core/io/lock.ts";
import { recordLink, recordUsbDevice } from "../core/io/record.ts";
import type { TraceWriter } from "../core/io/trace.ts";
import type { SpiMaster } from "../core/io/spi.ts";
import type { EntryParams, EntryResult } from "../core/spi/entry.ts";
import type { UartClient } from "../core/uart/client.ts";
import type { SessionEvent } from "../core/uart/events.ts";
import type { ChipIdentity as UartIdentity } from "../core/uart/identify.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { isSpiPort, isVirtualPort, type PortSpec } from "../core/io/port_spec.ts";
import { openPort, type PortOpenOptions } from "../core/io/registry.ts";
import { CliEmulator, SESSION_END } from "./virtual_ports.ts";

/** SPI chip modes `--chip` accepts on SPI ports. */
export const SPI_MODES = ["beken-spi", "spi-generic"] as const;

/** An SPI chip mode. */
export type SpiMode = typeof SPI_MODES[number];

/** What a command gets to work with. */
export interface Session {
  kind: "uart" | "spi";
  target: FlashTarget;
  /** The clock of the link: virtual on emulated ports. */
  clock: Clock;
  /** Whether that clock is the emulator's (durations are modelled) or the wall clock (measured). */
  timing: "modelled" | "measured";
  /** Clock reading when the port was opened, before linking and detection. */
  openedAt: number;
  /** Host baud rate in use on UART paths; null on SPI. */
  baud: number | null;
  /** The port as opened ("virtual:bk7231n", "/dev/ttyUSB0", "ch341a:0"). */
  port: string;
  /** Names for backups and the JSON output. */
  identity: ChipIdentity;
  /** End of the bootloader window the write guard protects. */
  bootloaderEnd: number;
  /** What UART detection found (UART paths only). */
  uart: { identity: UartIdentity; client: UartClient } | null;
  /** SPI mode and how entry went (SPI paths only). */
  spi: { mode: SpiMode; entry: EntryResult | null } | null;
  /** `virtual:` ports: what the emulated chip does when it boots (emulator/boot.ts). */
  emulatedBoot?: () => { boots: boolean; line: string | null; reason: string };
}

/** How to open the session. */
export interface SessionOptions {
  spec: PortSpec;
  /** `--port` as typed, for messages. */
  portText: string;
  /** `--chip` as typed. */
  chip?: string;
  /** Working baud rate for UART paths. */
  baud: number;
  linkTimeoutMs: number;
  skipKeyCheck: boolean;
  /** `--state` file of a virtual chip (locked for the session). */
  state?: string;
  /** Seed of a virtual chip's randomness (wire garbage, SPI-entry luck). */
  seed?: number;
  /** Beken SPI-mode entry overrides. */
  spiEntry?: Partial<EntryParams>;
  /** Faults to inject on a virtual port (`--faults`). */
  faults?: FaultPlan;
  /** Record the wire (UART bytes, CH341A USB transfers) into this trace (`--record`). */
  record?: TraceWriter;
  /** spidev settings: SPI mode, clock, and the GPIO line wired to CEN (`gpiochip0:17`). */
  spidev?: { mode?: number; speedHz?: number; cen?: string };
  signal?: AbortSignal;
  /** Lines for stderr: `level` "info" always shows, "debug" only with -v. */
  onMessage: (line: string, level: "info" | "debug") => void;
  /** `--read-ahead` (true) or `--no-read-ahead` (false); absent: as the loader family allows. */
  readAhead?: boolean;
}

/** Hex string of a JEDEC ID in wire order ("eb6015"). */
export function flashIdHex(id: ArrayLike<number> | null): string | null {
  return id ? Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("") : null;
}

const CHIP_REMEDY = `use one of: ${CHIPS.map((c) => c.id).join(", ")} (UART) or ${
  SPI_MODES.join(", ")
} (SPI)`;

function isSpiMode(chip: string | undefined): chip is SpiMode {
  return chip !== undefined && (SPI_MODES as readonly string[]).includes(chip.toLowerCase());
}

function profileFor(chip: string | undefined): ChipProfile | undefined {
  return chip === undefined ? undefined : requireChip(chip, CHIP_REMEDY);
}

function sessionEventLine(e: SessionEvent): [string, "info" | "debug"] {
  switch (e.type) {
    case "linked":
    case "baud":
      return [e.message, "debug"];
    case "warning":
      return [`warning: ${e.message}`, "info"];
    case "hint":
      return [`hint: ${e.message}`, "info"];
    default:
      return [e.message, "info"];
  }
}

/** A port opened but not yet turned into a session, with what must happen at the end. */
interface Opened {
  session: Session;
  /** Persist a virtual chip (no-op otherwise). */
  save: () => Promise<void>;
}

/**
 * Open the port, run `body` with the session, then close the port and save a virtual chip's
 * state (also when opening or `body` fails).
 */
export async function withSession<T>(opts: SessionOptions, body: (s: Session) => Promise<T>): Promise<T> {
  if (opts.state && !isVirtualPort(opts.spec)) {
    throw new FlashError(
      "USAGE",
      "--state only applies to virtual ports",
      "drop --state, or use --port virtual:<chip> / ch341a:virtual:<chip>",
    );
  }
  if (opts.faults && !isVirtualPort(opts.spec)) {
    throw new FlashError(
      "USAGE",
      "--faults only applies to virtual ports",
      "drop --faults, or use --port virtual:<chip> / ch341a:virtual:<chip>",
    );
  }
  if (opts.seed !== undefined && !isVirtualPort(opts.spec)) {
    throw new FlashError(
      "USAGE",
      "--seed only applies to virtual ports (a real wire's noise has no seed)",
      "drop --seed, or use --port virtual:<chip> / ch341a:virtual:<chip>",
    );
  }
  // a second process on the same chip state would interleave its writes with ours and both would
  // report success: it is held for the whole session (the backup directory is held by each job,
  // DirectoryStore.lock)
  const locks: HeldLock[] = [];
  try {
    if (opts.state) locks.push(await lockPath(opts.state, { directory: false }));
    return await runSession(opts, body);
  } finally {
    for (const l of locks.reverse()) l.release();
  }
}

async function runSession<T>(opts: SessionOptions, body: (s: Session) => Promise<T>): Promise<T> {
  const cleanups: (() => Promise<void>)[] = [];
  let result: T;
  try {
    const { session, save } = isSpiPort(opts.spec)
      ? await openSpi(opts, cleanups)
      : await openUart(opts, cleanups);
    // closing the target closes the port: the opening steps' cleanups give way to it, except the
    // fault summary, which stays first so that it runs last
    const kept = cleanups.filter((c) => SESSION_END.has(c));
    cleanups.splice(0, cleanups.length, ...kept, save, () => session.target.close());
    // identification does not listen for Ctrl-C (it is short): honour it before the job starts
    if (opts.signal?.aborted) {
      throw new FlashError(
        "CANCELLED",
        `interrupted while opening ${opts.portText}`,
        "run the command again when ready",
      );
    }
    result = await body(session);
  } catch (e) {
    // the job's own failure is the one to report; cleanups still run
    await runCleanups(cleanups);
    throw e;
  }
  const cleanupError = await runCleanups(cleanups);
  if (cleanupError !== null) throw closingError(opts.portText, cleanupError);
  return result;
}

/** Run every cleanup, last opened first; the first failure is returned, not thrown. */
async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<unknown> {
  let first: unknown = null;
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (e) {
      first ??= e;
    }
  }
  return first;
}

/** A failure while closing the port or saving a virtual chip's state, after the job itself worked. */
function closingError(port: string, e: unknown): FlashError {
  if (e instanceof FlashError) return e;
  return new FlashError(
    "PORT",
    `the job finished, but closing ${port} or saving its state failed: ${e instanceof Error ? e.message : e}`,
    "check the --state file's directory is writable and has space, then run the command again",
    { cause: e },
  );
}

async function openUart(opts: SessionOptions, cleanups: (() => Promise<void>)[]): Promise<Opened> {
  const { spec } = opts;
  if (isSpiMode(opts.chip)) {
    throw new FlashError(
      "USAGE",
      `--chip ${opts.chip} is an SPI mode, but ${opts.portText || "the port"} is a UART port`,
      "use --port ch341a (or ch341a:virtual:<chip>) for SPI, or a Beken chip id for UART",
    );
  }
  const requested = profileFor(opts.chip);
  const emulator = new CliEmulator(opts, cleanups);
  const port = await openPort(spec, { ...portOptions(opts), emulator });
  if (port.bus !== "uart") {
    throw new FlashError("USAGE", `cannot open ${opts.portText} as a UART port`, "see --help for port forms");
  }
  let link: ByteLink = port.link;
  if (opts.record) link = recordLink(link, opts.record);
  cleanups.push(() => link.close());
  const openedAt = link.clock.now();
  const opened = await openUartTarget(link, {
    chip: requested ?? emulator.profile ?? undefined,
    baud: opts.baud,
    linkTimeoutMs: opts.linkTimeoutMs,
    overrideKeyCheck: opts.skipKeyCheck,
    onEvent: (e) => opts.onMessage(...sessionEventLine(e)),
    signal: opts.signal,
    readAhead: opts.readAhead,
  });
  const id = opened.identity;
  if (opts.readAhead === undefined && !opened.target.readSectors) {
    opts.onMessage(
      `read-ahead off: the ${opened.target.family.name} is not known to keep a request sent while it replies (--read-ahead forces it)`,
      "debug",
    );
  }
  return {
    save: emulator.save,
    session: {
      kind: "uart",
      target: opened.target,
      clock: link.clock,
      timing: isVirtualPort(spec) ? "modelled" : "measured",
      openedAt,
      baud: opened.baud,
      port: link.name,
      identity: {
        // with the key check overridden, backups still carry the name the efuse gives the chip
        chip: (id.keyChip ?? id.profile).name,
        flashId: flashIdHex(id.flashId),
        key: id.key ? formatKey(id.key) : null,
      },
      bootloaderEnd: id.profile.layout.bootloader.end,
      uart: { identity: id, client: opened.client },
      spi: null,
      emulatedBoot: emulator.emulatedBoot,
    },
  };
}

/** What the registry needs from the session's options. */
function portOptions(opts: SessionOptions): PortOpenOptions {
  return {
    text: opts.portText,
    onNotice: (line) => opts.onMessage(`warning: ${line}`, "info"),
    onChosen: (line) => opts.onMessage(line, "info"),
  };
}

async function openSpi(opts: SessionOptions, cleanups: (() => Promise<void>)[]): Promise<Opened> {
  const { spec } = opts;
  if (opts.chip !== undefined && !isSpiMode(opts.chip)) {
    throw new FlashError(
      "USAGE",
      `--chip ${opts.chip} is not an SPI mode, and ${opts.portText} is an SPI port`,
      `use --chip ${
        SPI_MODES.join(" or --chip ")
      } (beken-spi pulses CEN and sends 0xD2 first; spi-generic talks to a bare flash)`,
    );
  }
  const mode: SpiMode = (opts.chip?.toLowerCase() as SpiMode | undefined) ?? "beken-spi";
  const emulator = new CliEmulator(opts, cleanups, mode === "beken-spi");
  const port = await openPort(spec, {
    ...portOptions(opts),
    emulator,
    spidev: { ...opts.spidev, cenRequired: mode === "beken-spi" },
  });
  let spi: SpiMaster;
  if (port.bus === "uart") {
    await port.link.close();
    throw new FlashError("USAGE", `${opts.portText} is not an SPI port`, "see --help for port forms");
  } else if (port.via === "usb") {
    const clock = port.clock ?? realClock;
    const recorded = opts.record ? recordUsbDevice(port.device, opts.record, clock) : port.device;
    const device = await emulator.withProgrammerFaults(recorded);
    const { Ch341aSpi } = await import("../core/io/ch341a.ts");
    spi = await Ch341aSpi.open(device, { clock: port.clock, name: port.name });
  } else {
    spi = await port.open();
  }
  cleanups.push(() => spi.close());
  const openedAt = spi.clock.now();
  const { openSpiTarget } = await import("../core/spi/target.ts");
  const target = await openSpiTarget(spi, {
    entry: mode === "beken-spi" ? opts.spiEntry ?? {} : false,
    signal: opts.signal,
    onProgress: (p) =>
      opts.onMessage(
        p.message,
        p.phase === "reset" || p.phase === "failed" || p.phase === "entered" ? "info" : "debug",
      ),
  });
  const info = await target.info();
  return {
    save: emulator.save,
    session: {
      kind: "spi",
      target,
      clock: spi.clock,
      timing: isVirtualPort(spec) ? "modelled" : "measured",
      openedAt,
      baud: null,
      port: spi.name,
      identity: { chip: mode, flashId: flashIdHex(info.flashId), key: null },
      bootloaderEnd: BOOTLOADER_END,
      uart: null,
      spi: { mode, entry: target.entry },
    },
  };
}
