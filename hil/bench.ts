/**
 * The bench: the chip under test and the means to reach and control it (labgrid's target
 * with its resources and drivers). Scenarios only ask a bench to connect over a path and,
 * where they need it, to cycle power; whether the chip is emulated, on a real port, or a
 * recorded trace is the bench's business. Three kinds exist: {@link VirtualBench} (a fresh
 * emulated chip per scenario), the hardware bench (one real chip, backed up first and
 * restored last) and the replay bench (answers from a trace).
 *
 * @module
 */

import { type ChipProfile, formatKey } from "../core/chips/profiles.ts";
import type { Clock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import { toHex } from "../core/hex.ts";
import type { ChipIdentity as BackupIdentity } from "../core/flasher/sidecar.ts";
import { createContext, type FlasherContext, type FlasherEvent } from "../core/flasher/context.ts";
import type { FlashTarget } from "../core/target.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { SpiMaster } from "../core/io/spi.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import type { EntryResult } from "../core/spi/entry.ts";
import { openSpiTarget } from "../core/spi/target.ts";
import type { UartClient } from "../core/uart/client.ts";
import { switchBaud } from "../core/uart/baud_switch.ts";
import { BOOT_BAUD } from "../core/uart/connect.ts";
import type { SessionEvent } from "../core/uart/events.ts";
import type { ChipIdentity as UartIdentity } from "../core/uart/identify.ts";
import type { ResetStrategy } from "../core/uart/reset.ts";
import { openUartTarget } from "../core/uart/target.ts";
import type { VirtualChip } from "../emulator/virtual.ts";
import { BorrowedLink } from "./links.ts";
import type { PowerControl } from "./power.ts";

/** The two ways to a Beken chip's flash. */
export type PathKind = "uart" | "spi";

/** A state only the emulator can start in. */
export interface VirtualSetup {
  /** Status-register word the flash starts with (block protection set). */
  protect?: number;
  /** The bootloader region starts erased (a chip bricked by a bad bootloader write). */
  eraseBootloader?: boolean;
  /** The USB-UART adapter refuses rates above this. */
  maxBaud?: number;
}

/** How to connect. */
export interface ConnectOptions {
  /** Path to use (default: the bench's). */
  path?: PathKind;
  /** Chip mode to identify as (default: the one under test). */
  chip?: ChipProfile;
  /** Working baud rate on UART (default: the run's). */
  baud?: number;
  /** Turn key and chip-ID mismatches into warnings. */
  overrideKeyCheck?: boolean;
}

/** An open, identified path to the chip, and the flasher context on it. */
export interface Connection {
  path: PathKind;
  target: FlashTarget;
  /** What the flasher operations run with. */
  flasher: FlasherContext;
  /** Names for backups. */
  identity: BackupIdentity;
  /** UART details: what detection found, the client, the rate in use. */
  uart: { identity: UartIdentity; client: UartClient; link: ByteLink; baud: number } | null;
  /** SPI details: how entry went. */
  spi: { entry: EntryResult | null; master: SpiMaster } | null;
  /** Session events (warnings, baud fallback) seen while connecting. */
  events: SessionEvent[];
  /** Flasher events (retries, unprotect, plans) seen since connecting. */
  flasherEvents: FlasherEvent[];
  /**
   * Release the path. A UART chip is put back to 115200 baud unless `keepBaud`; the port
   * itself stays the bench's.
   */
  close(opts?: { keepBaud?: boolean }): Promise<void>;
}

/** The chip under test and the means to reach it. */
export interface Bench {
  /** "virtual": a fresh emulated chip per scenario; "hardware": one chip for the run. */
  readonly kind: "virtual" | "hardware";
  /** The target spec, as given. */
  readonly target: string;
  /** The path scenarios run on. */
  readonly path: PathKind;
  /** Paths this bench can reach (a virtual bench reaches both). */
  readonly paths: readonly PathKind[];
  /** Whether {@link VirtualSetup}s can be applied. */
  readonly virtualSetups: boolean;
  /** Whether the bench's times are modelled (virtual clock) or measured. */
  readonly timeKind: "modelled" | "real";
  /** Power control, or null when the bench has none. */
  readonly power: PowerControl | null;
  /** Clock of the current scenario. */
  readonly clock: Clock;
  /** The current scenario's emulated chip (virtual benches only), for white-box checks. */
  readonly virtualChip?: VirtualChip | null;
  /** A failure of the bench itself (a replay that diverged): later scenarios are not run. */
  readonly failure?: Error | null;
  /** Get ready for scenario `id`, in `setup` where the bench supports it. */
  begin(id: string, setup?: VirtualSetup): Promise<void>;
  /** Connect and identify. */
  connect(opts?: ConnectOptions): Promise<Connection>;
  /** Done with the current scenario. */
  end(): Promise<void>;
  /** Check the run used the bench completely (a replay: every recorded action was made). */
  verify?(): void;
  /** Release everything. */
  close(): Promise<void>;
}

/** Settings every bench connects with. */
export interface ConnectDefaults {
  profile: ChipProfile;
  baud: number;
  linkTimeoutMs: number;
  resetStrategies?: readonly ResetStrategy[];
}

/** Connect over a UART link the bench owns: the connection borrows it. */
export async function connectUart(
  link: ByteLink,
  defaults: ConnectDefaults,
  opts: ConnectOptions,
): Promise<Connection> {
  const borrowed = new BorrowedLink(link);
  if (borrowed.baud !== BOOT_BAUD) await borrowed.setBaud(BOOT_BAUD);
  const events: SessionEvent[] = [];
  const profile = opts.chip ?? defaults.profile;
  const opened = await openUartTarget(borrowed, {
    chip: profile,
    baud: opts.baud ?? defaults.baud,
    linkTimeoutMs: defaults.linkTimeoutMs,
    overrideKeyCheck: opts.overrideKeyCheck,
    resetStrategies: defaults.resetStrategies,
    onEvent: (e) => events.push(e),
  });
  const flasherEvents: FlasherEvent[] = [];
  const flasher = await createContext(opened.target, borrowed.clock, {
    baud: opened.baud,
    onEvent: (e) => flasherEvents.push(e),
  });
  const id = opened.identity;
  let closed = false;
  return {
    path: "uart",
    target: opened.target,
    flasher,
    identity: {
      chip: id.profile.name,
      flashId: id.flashId ? toHex(id.flashId) : null,
      key: id.key ? formatKey(id.key) : null,
    },
    uart: { identity: id, client: opened.client, link: borrowed, baud: opened.baud },
    spi: null,
    events,
    flasherEvents,
    async close(o) {
      if (closed) return;
      closed = true;
      if (borrowed.baud !== BOOT_BAUD && !o?.keepBaud) {
        await switchBaud(opened.client, BOOT_BAUD, { relinkTimeoutMs: defaults.linkTimeoutMs }).catch(
          () => {},
        );
      }
    },
  };
}

/** Connect over SPI through a master `open` creates; the connection closes it. */
export async function connectSpi(
  open: () => Promise<SpiMaster>,
  clock: Clock,
  defaults: ConnectDefaults,
): Promise<Connection> {
  const spi = await open();
  try {
    const target = await openSpiTarget(spi, { entry: {} });
    const flasherEvents: FlasherEvent[] = [];
    const flasher = await createContext(target, clock, { baud: null, onEvent: (e) => flasherEvents.push(e) });
    const info = await target.info();
    return {
      path: "spi",
      target,
      flasher,
      identity: {
        chip: `${defaults.profile.name}-SPI`,
        flashId: info.flashId ? toHex(info.flashId) : null,
        key: null,
      },
      uart: null,
      spi: { entry: target.entry, master: spi },
      events: [],
      flasherEvents,
      close: () => target.close(),
    };
  } catch (e) {
    await spi.close().catch(() => {});
    throw e;
  }
}

/** A CH341A master on `device` (the USB device a bench owns, real, virtual or replayed). */
export function ch341aOpener(device: UsbDeviceLike, clock: Clock, name: string): () => Promise<SpiMaster> {
  return () => Ch341aSpi.open(device, { clock, name });
}

/** Lowercase hex of bytes. */
export { toHex as hexBytes };

/** Refuse a path the bench cannot reach. */
export function checkPath(bench: Pick<Bench, "paths" | "target">, path: PathKind): void {
  if (!bench.paths.includes(path)) {
    throw new FlashError(
      "UNSUPPORTED",
      `${bench.target} has no ${path.toUpperCase()} path`,
      path === "spi"
        ? "use a CH341A target (ch341a, ch341a:virtual:<chip>)"
        : "use a serial or virtual target",
    );
  }
}
