/**
 * Opening what `--port` names and handing the command a ready {@link FlashTarget}: the
 * in-process emulator, a serial port or TCP bridge (UART boot protocol), or an SPI programmer.
 * The session also saves a virtual chip's state after the command, whether it succeeded or not.
 *
 * @module
 */

import { chipById, type ChipProfile, CHIPS, formatKey } from "../core/chips/profiles.ts";
import type { Clock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import type { ChipIdentity } from "../core/flasher/backup.ts";
import type { FlashTarget } from "../core/flasher/target.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { ChipIdentity as UartIdentity, SessionEvent } from "../core/uart/session.ts";
import { openUartTarget } from "../core/uart/target.ts";
import type { UartClient } from "../core/uart/client.ts";
import { isSpiPort, type PortSpec } from "./ports.ts";

/** SPI chip modes `--chip` accepts on SPI ports. */
export const SPI_MODES = ["beken-spi", "spi-generic"] as const;

/** What a command gets to work with. */
export interface Session {
  target: FlashTarget;
  /** The clock of the link: virtual on emulated ports. */
  clock: Clock;
  /** Host baud rate in use on UART paths; null on SPI. */
  baud: number | null;
  /** The port as the user named it. */
  port: string;
  /** Names for backups and the JSON output. */
  identity: ChipIdentity;
  /** End of the bootloader window the write guard protects. */
  bootloaderEnd: number;
  /** What UART detection found (UART paths only). */
  uart: { identity: UartIdentity; client: UartClient } | null;
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
  /** `--state` file of a virtual chip. */
  state?: string;
  /** Seed of a virtual chip's wire. */
  seed?: number;
  /** Lines for stderr: `level` "info" always shows, "debug" only with -v. */
  onMessage: (line: string, level: "info" | "debug") => void;
}

/** Hex string of a JEDEC ID in wire order ("eb6015"). */
export function flashIdHex(id: ArrayLike<number> | null): string | null {
  return id ? Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("") : null;
}

function profileFor(chip: string | undefined): ChipProfile | undefined {
  if (chip === undefined) return undefined;
  const p = chipById(chip);
  if (!p) {
    throw new FlashError(
      "USAGE",
      `unknown chip "${chip}"`,
      `use one of: ${CHIPS.map((c) => c.id).join(", ")} (UART) or ${SPI_MODES.join(", ")} (SPI)`,
    );
  }
  return p;
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

/**
 * Open the port, run `body` with the session, then close the port and save a virtual chip's
 * state (also when opening or `body` fails).
 */
export async function withSession<T>(opts: SessionOptions, body: (s: Session) => Promise<T>): Promise<T> {
  const { spec } = opts;
  if (isSpiPort(spec)) return await withSpiSession(opts, body);
  if (opts.chip && (SPI_MODES as readonly string[]).includes(opts.chip.toLowerCase())) {
    throw new FlashError(
      "USAGE",
      `--chip ${opts.chip} is an SPI mode, but ${opts.portText || "the port"} is a UART port`,
      "use --port ch341a (or ch341a:virtual:<chip>, spidev:<dev>) for SPI, or a Beken chip id for UART",
    );
  }
  let requested = profileFor(opts.chip);
  let save: (() => Promise<void>) | null = null;
  let link: ByteLink;
  if (spec.kind === "virtual") {
    const { createVirtualChip } = await import("../emulator/virtual.ts");
    const v = await createVirtualChip({ chip: spec.chip, state: opts.state, seed: opts.seed });
    requested ??= v.profile;
    save = () => v.save();
    link = v.link();
  } else {
    if (opts.state) {
      throw new FlashError(
        "USAGE",
        "--state only applies to virtual ports",
        "drop --state, or use --port virtual:<chip>",
      );
    }
    link = await openLink(opts);
  }
  let closed = false;
  let target: FlashTarget | null = null;
  try {
    const opened = await openUartTarget(link, {
      chip: requested,
      baud: opts.baud,
      linkTimeoutMs: opts.linkTimeoutMs,
      overrideKeyCheck: opts.skipKeyCheck,
      onEvent: (e) => opts.onMessage(...sessionEventLine(e)),
    });
    target = opened.target;
    const id = opened.identity;
    const session: Session = {
      target: opened.target,
      clock: link.clock,
      baud: opened.baud,
      port: link.name,
      identity: {
        chip: id.profile.name,
        flashId: flashIdHex(id.flashId),
        key: id.key ? formatKey(id.key) : null,
      },
      bootloaderEnd: id.profile.layout.bootloader.end,
      uart: { identity: id, client: opened.client },
    };
    const result = await body(session);
    closed = true;
    await target.close();
    return result;
  } finally {
    if (!closed) await (target ? target.close() : link.close()).catch(() => {});
    if (save) await save();
  }
}

async function openLink(opts: SessionOptions): Promise<ByteLink> {
  const { spec } = opts;
  switch (spec.kind) {
    case "serial": {
      const { openSerial } = await import("../core/io/serial/mod.ts");
      return await openSerial(spec.path, { baud: 115200 });
    }
    case "tcp":
      throw new FlashError(
        "UNSUPPORTED",
        "tcp:// ports are not wired in yet",
        "use a serial port or virtual:<chip>",
      );
    case "auto":
      throw new FlashError(
        "USAGE",
        "no --port given",
        "pass --port /dev/ttyUSB0 (see list-ports), or --port virtual:bk7231n to try the emulator",
      );
    default:
      throw new FlashError(
        "USAGE",
        `cannot open ${opts.portText} as a UART port`,
        "see --help for port forms",
      );
  }
}

function withSpiSession<T>(opts: SessionOptions, _body: (s: Session) => Promise<T>): Promise<T> {
  return Promise.reject(
    new FlashError(
      "UNSUPPORTED",
      `SPI ports (${opts.portText}) are not wired in yet`,
      "use the UART boot protocol (--port /dev/ttyUSB0 or virtual:<chip>) for now",
    ),
  );
}
