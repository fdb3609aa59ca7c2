/**
 * The hardware bench: one real chip on a serial port, a TCP or RFC 2217 bridge, a CH341A or
 * spidev, for the whole run. The port is opened once; scenarios borrow it. Power control is
 * the user's `--power-cycle-cmd`, else what the port offers (its row in `core/io/registry.ts`):
 * RTS on a serial port that has modem lines (wired to CEN), the CH341A's D2 line, or spidev's
 * GPIO line on CEN.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { type Clock, realClock } from "../core/clock.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { SpiMaster } from "../core/io/spi.ts";
import { recordLink, recordUsbDevice } from "../core/io/record.ts";
import type { TraceWriter } from "../core/io/trace.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import {
  type Bench,
  ch341aOpener,
  checkPath,
  type ConnectDefaults,
  type Connection,
  type ConnectOptions,
  connectSpi,
  connectUart,
  type PathKind,
} from "./bench.ts";
import { ch341aPower, commandPower, gpioCenPower, type PowerControl, rtsPower } from "./power.ts";

/** Options of a {@link HardwareBench}. */
export interface HardwareBenchOptions {
  /** The target spec as typed. */
  target: string;
  profile: ChipProfile;
  baud: number;
  linkTimeoutMs: number;
  /** Shell command that power-cycles the board. */
  powerCycleCmd?: string;
  /** Use RTS on CEN for power cycles (default: when the port has modem lines). */
  rtsPower?: boolean;
  /** Record the wire. */
  record?: TraceWriter;
  /** An spidev port's CEN line as given (`gpiochip0:17`): power cycles pulse it. */
  cen?: string;
}

/**
 * What the bench is wired through: a UART link, a USB SPI programmer's device, or a way to
 * open an SPI master directly (spidev).
 */
export type HardwarePort =
  | { link: ByteLink }
  | { device: UsbDeviceLike; name: string; clock?: Clock }
  | { master: () => Promise<SpiMaster>; name: string; clock?: Clock };

/** One real chip. */
export class HardwareBench implements Bench {
  readonly kind = "hardware" as const;
  readonly target: string;
  readonly path: PathKind;
  readonly paths: readonly PathKind[];
  readonly virtualSetups = false;
  readonly timeKind = "real" as const;
  readonly power: PowerControl | null;
  readonly clock: Clock;
  readonly #link: ByteLink | null;
  readonly #spi: (() => Promise<SpiMaster>) | null;
  readonly #defaults: ConnectDefaults;

  constructor(port: HardwarePort, opts: HardwareBenchOptions) {
    this.target = opts.target;
    this.#defaults = { profile: opts.profile, baud: opts.baud, linkTimeoutMs: opts.linkTimeoutMs };
    if ("link" in port) {
      const link = opts.record ? recordLink(port.link, opts.record, { label: "bench" }) : port.link;
      this.#link = link;
      this.#spi = null;
      this.path = "uart";
      this.clock = link.clock;
    } else if ("device" in port) {
      const clock = port.clock ?? realClock;
      const device = opts.record
        ? recordUsbDevice(port.device, opts.record, clock, { label: "bench" })
        : port.device;
      this.#link = null;
      this.#spi = ch341aOpener(device, clock, port.name);
      this.path = "spi";
      this.clock = clock;
    } else {
      this.#link = null;
      this.#spi = port.master;
      this.path = "spi";
      this.clock = port.clock ?? realClock;
    }
    this.paths = [this.path];
    this.power = opts.powerCycleCmd
      ? commandPower(opts.powerCycleCmd, this.clock)
      : this.#link && (opts.rtsPower ?? this.#link.hasModemLines)
      ? rtsPower(this.#link)
      : this.#spi && "device" in port
      ? ch341aPower(this.target, this.#spi)
      : this.#spi && opts.cen
      ? gpioCenPower(this.target, opts.cen, this.#spi)
      : null;
  }

  begin(): Promise<void> {
    return Promise.resolve();
  }

  connect(opts: ConnectOptions = {}): Promise<Connection> {
    const path = opts.path ?? this.path;
    checkPath(this, path);
    if (this.#link) return connectUart(this.#link, this.#defaults, opts);
    return connectSpi(this.#spi!, this.clock, this.#defaults);
  }

  end(): Promise<void> {
    return Promise.resolve();
  }

  /** Close the port. */
  async close(): Promise<void> {
    await this.#link?.close();
  }
}
