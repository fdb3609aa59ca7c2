/**
 * The virtual bench: every scenario gets a fresh emulated chip of the profile under test, in
 * whatever {@link VirtualSetup} it asks for, reachable over the virtual UART wire and through a
 * virtual CH341A wired to the same flash (D2 on CEN resets the UART side too). Time is the
 * chip's virtual clock, so reports show modelled durations.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import type { Clock } from "../core/clock.ts";
import type { ByteLink } from "../core/io/link.ts";
import { recordLink, recordUsbDevice } from "../core/io/record.ts";
import type { TraceWriter } from "../core/io/trace.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import { flashPartFor } from "../core/spi/jedec.ts";
import type { SpiMaster } from "../core/io/spi.ts";
import { VirtualCh341a } from "../emulator/ch341a.ts";
import { SpiModeChip } from "../emulator/spi_mode.ts";
import { defaultImage } from "../emulator/image.ts";
import { createVirtualChip, type VirtualChip } from "../emulator/virtual.ts";
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
  type VirtualSetup,
} from "./bench.ts";
import { BaudCeilingLink } from "./links.ts";
import { DirectSpiMaster } from "./spi_direct.ts";
import { ch341aPower, type PowerControl, rtsPower } from "./power.ts";

/** Options of a {@link VirtualBench}. */
export interface VirtualBenchOptions {
  profile: ChipProfile;
  path: PathKind;
  /** Working baud rate of UART connections. */
  baud: number;
  /** Seed of every chip's randomness. */
  seed?: number;
  /** Record every scenario's wire into this trace. */
  record?: TraceWriter;
  /**
   * What drives the SPI pins: the real CH341A driver on a virtual CH341A (default, as
   * `ch341a:virtual:<chip>` does), or a master wired straight to the pins (fast, no USB).
   */
  spiAdapter?: "ch341a" | "direct";
}

interface Current {
  id: string;
  chip: VirtualChip;
  setup: VirtualSetup;
  link: ByteLink | null;
  device: UsbDeviceLike | null;
  pins: SpiModeChip | null;
}

/** Fresh emulated chips, one per scenario. */
export class VirtualBench implements Bench {
  readonly kind = "virtual" as const;
  readonly target: string;
  readonly path: PathKind;
  readonly paths: readonly PathKind[] = ["uart", "spi"];
  readonly virtualSetups = true;
  readonly timeKind = "modelled" as const;
  readonly power: PowerControl;
  readonly #opts: VirtualBenchOptions;
  readonly #defaults: ConnectDefaults;
  #current: Current | null = null;

  constructor(opts: VirtualBenchOptions) {
    this.#opts = opts;
    this.path = opts.path;
    this.target = `${opts.path === "spi" ? "ch341a:" : ""}virtual:${opts.profile.id}`;
    this.#defaults = { profile: opts.profile, baud: opts.baud, linkTimeoutMs: 20_000 };
    this.power = {
      kind: "virtual",
      description: opts.path === "spi" ? "emulator: CH341A D2 → CEN" : "emulator: RTS → CEN",
      cycle: () => this.#powerCycle(),
    };
  }

  /** The emulated chip of the current scenario, for white-box checks. */
  get virtualChip(): VirtualChip | null {
    return this.#current?.chip ?? null;
  }

  get clock(): Clock {
    return this.#scenario().chip.clock;
  }

  async begin(id: string, setup: VirtualSetup = {}): Promise<void> {
    const profile = this.#opts.profile;
    let image: Uint8Array | undefined;
    if (setup.eraseBootloader) {
      image = defaultImage(profile, flashPartFor(profile.defaultFlashId).size);
      image.fill(0xff, 0, profile.layout.bootloader.end);
    }
    const chip = await createVirtualChip({
      chip: profile.id,
      seed: this.#opts.seed ?? 1,
      protect: setup.protect,
      image,
    });
    this.#current = { id, chip, setup, link: null, device: null, pins: null };
  }

  connect(opts: ConnectOptions = {}): Promise<Connection> {
    const path = opts.path ?? this.path;
    checkPath(this, path);
    if (path === "uart") return connectUart(this.#link(), this.#defaults, opts);
    return connectSpi(this.#spiOpener(), this.#scenario().chip.clock, this.#defaults);
  }

  async end(): Promise<void> {
    await this.#current?.link?.close();
    this.#current = null;
  }

  close(): Promise<void> {
    return this.end();
  }

  #scenario(): Current {
    if (!this.#current) throw new Error("VirtualBench: begin() a scenario first");
    return this.#current;
  }

  /** The scenario's UART wire: recorded, behind a baud ceiling when the setup has one. */
  #link(): ByteLink {
    const cur = this.#scenario();
    if (!cur.link) {
      let link: ByteLink = cur.chip.link();
      if (this.#opts.record) link = recordLink(link, this.#opts.record, { label: cur.id });
      if (cur.setup.maxBaud) link = new BaudCeilingLink(link, cur.setup.maxBaud);
      cur.link = link;
    }
    return cur.link;
  }

  /** Opens an SPI master on the scenario's chip: through its virtual CH341A, or directly. */
  #spiOpener(): () => Promise<SpiMaster> {
    const cur = this.#scenario();
    const clock = cur.chip.clock;
    const name = `ch341a:virtual:${this.#opts.profile.id}`;
    if (this.#opts.spiAdapter === "direct") {
      return () => Promise.resolve(new DirectSpiMaster(this.#pins(), clock, name));
    }
    return ch341aOpener(this.#device(), clock, name);
  }

  /** The chip's SPI-mode face on the shared flash; CEN resets the UART side too. */
  #pins(): SpiModeChip {
    const cur = this.#scenario();
    if (!cur.pins) {
      const v = cur.chip;
      cur.pins = new SpiModeChip(v.nor, { seed: this.#opts.seed ?? 1 });
      cur.pins.onCen = (low, now) => v.chip.setCen(low, now);
    }
    return cur.pins;
  }

  /** The scenario's virtual CH341A with the chip on its pins, recorded when asked. */
  #device(): UsbDeviceLike {
    const cur = this.#scenario();
    if (!cur.device) {
      const v = cur.chip;
      const device = new VirtualCh341a(this.#pins(), v.clock);
      cur.device = this.#opts.record
        ? recordUsbDevice(device, this.#opts.record, v.clock, { label: cur.id })
        : device;
    }
    return cur.device;
  }

  #powerCycle(): Promise<void> {
    if (this.path === "uart") return rtsPower(this.#link()).cycle();
    return ch341aPower("virtual", this.#spiOpener()).cycle();
  }
}
