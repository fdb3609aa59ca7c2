/**
 * The port registry (in the spirit of flashrom's programmer table): for every kind of `--port`
 * ({@link PortSpec}), which bus it speaks, which power control it offers, and how to open it.
 * The CLI and the HIL runner open ports through this table and nothing else.
 *
 * | kind | bus | power | opened as |
 * |---|---|---|---|
 * | `virtual` | UART | virtual RTS → CEN | the emulator's byte link ({@link EmulatorPorts}) |
 * | `ch341a-virtual` | SPI | virtual D2 → CEN | the emulator's CH341A USB device |
 * | `serial`, `auto` | UART | RTS → CEN (when the port has modem lines) | a serial port |
 * | `tcp` | UART | none (a raw byte stream carries no modem lines) | a TCP byte stream |
 * | `rfc2217` | UART | RTS → CEN (when the server confirms modem control) | an RFC 2217 client |
 * | `ch341a` | SPI | the CH341A's D2 pin → CEN | the n-th CH341A's USB device |
 * | `spidev` | SPI | a GPIO line → CEN (`--cen`) | Linux spidev + GPIO |
 *
 * Every real opener is behind a dynamic import, so a module that imports the registry (or a
 * browser bundle of one) does not load the serial, FFI, USB or socket code of ports it never
 * opens. The emulator sits above `core/`, so virtual kinds open through an
 * {@link EmulatorPorts} the caller passes in.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import type { ByteLink } from "./link.ts";
import type { PortSpec } from "./port_spec.ts";
import type { SpiMaster } from "./spi.ts";
import type { UsbDeviceLike } from "./usb.ts";

/** The protocol a port speaks: the boot-UART protocol or raw SPI flash. */
export type PortBus = "uart" | "spi";

/**
 * The power (reset) control a port kind offers: RTS wired to CEN, the CH341A's D2 pin on CEN,
 * a GPIO line on CEN, the emulator's, or none.
 */
export type PortPower = "rts" | "ch341a-d2" | "gpio-cen" | "virtual" | null;

/** A UART port, opened: a byte link at 115200 baud. */
export interface OpenedUartPort {
  /** Always "uart". */
  bus: "uart";
  /** The link. */
  link: ByteLink;
}

/** An SPI port on a USB programmer (the CH341A, real or virtual), opened: its USB device. */
export interface OpenedUsbSpiPort {
  /** Always "spi". */
  bus: "spi";
  /** Always "usb": the caller opens a {@link SpiMaster} on the device (after wrapping it to record). */
  via: "usb";
  /** The programmer's USB device. */
  device: UsbDeviceLike;
  /** The name masters on it carry ("ch341a:0", "ch341a:virtual:bk7231n"). */
  name: string;
  /** The clock of the device: the emulator's on a virtual programmer, else the wall clock. */
  clock?: Clock;
}

/** An SPI port driven directly (spidev), opened: a way to open a master on it. */
export interface OpenedDirectSpiPort {
  /** Always "spi". */
  bus: "spi";
  /** Always "master". */
  via: "master";
  /** The port's name ("spidev:/dev/spidev0.0"). */
  name: string;
  /** Open a master; each one holds the device and its CEN line until closed. */
  open(): Promise<SpiMaster>;
}

/** What {@link openPort} hands back. */
export type OpenedPort = OpenedUartPort | OpenedUsbSpiPort | OpenedDirectSpiPort;

/** The emulator's side of the virtual port kinds, given by a caller above `core/`. */
export interface EmulatorPorts {
  /** A byte link to a fresh (or restored) virtual chip. */
  uart(chip: string): Promise<ByteLink>;
  /** A virtual CH341A wired to a virtual chip. */
  ch341a(chip: string): Promise<{ device: UsbDeviceLike; clock: Clock }>;
}

/** spidev settings (`--spi-mode`, `--spi-speed`, `--cen`). */
export interface SpidevSettings {
  /** SPI mode 0–3. */
  mode?: number;
  /** SCK in Hz. */
  speedHz?: number;
  /** GPIO line wired to CEN, as `--cen` takes it (`gpiochip0:17`). */
  cen?: string;
  /** Refuse to open without {@link cen} (Beken SPI-mode entry pulses CEN). */
  cenRequired?: boolean;
}

/** How to open a port. */
export interface PortOpenOptions {
  /** The port as typed, for names and messages. */
  text: string;
  /** Notices from the port worth a warning (an RFC 2217 server without modem control). */
  onNotice?: (line: string) => void;
  /** Which port `auto` chose ("using /dev/ttyUSB0 …"). */
  onChosen?: (line: string) => void;
  /** spidev settings. */
  spidev?: SpidevSettings;
  /** The emulator, for virtual kinds; without it they are refused. */
  emulator?: EmulatorPorts;
  /**
   * Replace the real openers of some kinds (tests: a fake spidev master). The replacement gets
   * the same arguments as the table's opener.
   */
  openers?: Partial<Record<PortSpec["kind"], PortOpener>>;
}

/** Opens one kind of port. */
export type PortOpener = (spec: PortSpec, opts: PortOpenOptions) => Promise<OpenedPort>;

/** One row of the registry. */
export interface PortKind {
  /** The {@link PortSpec} kind. */
  kind: PortSpec["kind"];
  /** The protocol it speaks. */
  bus: PortBus;
  /** Whether the chip behind it is the emulator (state, faults and seeds apply; time is modelled). */
  virtual: boolean;
  /** The power control it offers. */
  power: PortPower;
  /** One line for `--help` and reports. */
  description: string;
  /** How to open it. */
  open: PortOpener;
}

const UART_BAUD = 115200;

function noEmulator(spec: PortSpec, opts: PortOpenOptions): never {
  throw new FlashError(
    "UNSUPPORTED",
    `${opts.text}: this program cannot open ${spec.kind} ports`,
    "use a real port, or a tool that runs the emulator (deno task flash, deno task hil)",
  );
}

function wrong(spec: PortSpec, kind: string): never {
  throw new Error(`port registry: opener for ${kind} called with a ${spec.kind} spec`);
}

async function openSerialPath(path: string): Promise<OpenedUartPort> {
  const { openSerial } = await import("./serial/mod.ts");
  return { bus: "uart", link: await openSerial(path, { baud: UART_BAUD }) };
}

/** The table: one row per {@link PortSpec} kind. */
export const PORT_KINDS: readonly PortKind[] = [
  {
    kind: "virtual",
    bus: "uart",
    virtual: true,
    power: "virtual",
    description: "virtual:<chip>: the in-process emulator (UART boot protocol)",
    async open(spec, opts) {
      if (spec.kind !== "virtual") wrong(spec, "virtual");
      if (!opts.emulator) noEmulator(spec, opts);
      return { bus: "uart", link: await opts.emulator.uart(spec.chip) };
    },
  },
  {
    kind: "ch341a-virtual",
    bus: "spi",
    virtual: true,
    power: "virtual",
    description: "ch341a:virtual:<chip>: a virtual CH341A wired to the emulator (SPI)",
    async open(spec, opts) {
      if (spec.kind !== "ch341a-virtual") wrong(spec, "ch341a-virtual");
      if (!opts.emulator) noEmulator(spec, opts);
      const { device, clock } = await opts.emulator.ch341a(spec.chip);
      return { bus: "spi", via: "usb", device, clock, name: opts.text };
    },
  },
  {
    kind: "serial",
    bus: "uart",
    virtual: false,
    power: "rts",
    description: "/dev/ttyUSB0, COM3: a serial port (UART boot protocol)",
    open(spec) {
      if (spec.kind !== "serial") wrong(spec, "serial");
      return openSerialPath(spec.path);
    },
  },
  {
    kind: "auto",
    bus: "uart",
    virtual: false,
    power: "rts",
    description: "(no --port): the only USB serial adapter present",
    async open(_spec, opts) {
      const { listPorts, choosePort, describePort } = await import("./ports.ts");
      const port = choosePort(await listPorts());
      opts.onChosen?.(`using ${describePort(port)}`);
      return await openSerialPath(port.path);
    },
  },
  {
    kind: "tcp",
    bus: "uart",
    virtual: false,
    power: null,
    description: "tcp://host:port: a raw serial bridge or the emulator's TCP server",
    async open(spec, opts) {
      if (spec.kind !== "tcp") wrong(spec, "tcp");
      const { openTcp } = await import("./tcp.ts");
      return { bus: "uart", link: await openTcp(opts.text, { baud: UART_BAUD }) };
    },
  },
  {
    kind: "rfc2217",
    bus: "uart",
    virtual: false,
    power: "rts",
    description: "rfc2217://host:port: a serial port shared with RFC 2217 (ser2net, labgrid)",
    async open(spec, opts) {
      if (spec.kind !== "rfc2217") wrong(spec, "rfc2217");
      const { openRfc2217 } = await import("./rfc2217.ts");
      const link = await openRfc2217(opts.text, { baud: UART_BAUD, onNotice: opts.onNotice });
      return { bus: "uart", link };
    },
  },
  {
    kind: "ch341a",
    bus: "spi",
    virtual: false,
    power: "ch341a-d2",
    description: "ch341a[:<n>]: the n-th CH341A programmer in SPI mode",
    async open(spec) {
      if (spec.kind !== "ch341a") wrong(spec, "ch341a");
      const { findCh341a } = await import("./usb.ts");
      return { bus: "spi", via: "usb", device: await findCh341a(spec.index), name: `ch341a:${spec.index}` };
    },
  },
  {
    kind: "spidev",
    bus: "spi",
    virtual: false,
    power: "gpio-cen",
    description: "spidev:/dev/spidevX.Y: Linux spidev, with a GPIO line on CEN (--cen)",
    async open(spec, opts) {
      if (spec.kind !== "spidev") wrong(spec, "spidev");
      const settings = opts.spidev ?? {};
      const { openSpidev } = await import("./spidev.ts");
      const { parseGpioSpec } = await import("./gpio.ts");
      const cen = settings.cen ? parseGpioSpec(settings.cen) : undefined;
      return {
        bus: "spi",
        via: "master",
        name: `spidev:${spec.path}`,
        open: () =>
          Promise.resolve(openSpidev(spec.path, { mode: settings.mode, speedHz: settings.speedHz, cen })),
      };
    },
  },
];

/**
 * Refuse an spidev port without a CEN line when Beken SPI-mode entry needs one.
 *
 * @throws {FlashError} code "USAGE".
 */
export function checkCen(text: string, settings: SpidevSettings): void {
  if (settings.cenRequired && !settings.cen) {
    throw new FlashError(
      "USAGE",
      `${text}: Beken SPI-mode entry needs the GPIO line wired to CEN`,
      "pass --cen gpiochip0:<line> (see gpioinfo), or --chip spi-generic for a bare flash",
    );
  }
}

/**
 * The registry row of a spec's kind.
 *
 * @example
 * ```ts
 * import { parsePortSpec } from "./port_spec.ts";
 * portKind(parsePortSpec("ch341a")).bus; // "spi"
 * ```
 */
export function portKind(spec: PortSpec): PortKind {
  const row = PORT_KINDS.find((k) => k.kind === spec.kind);
  if (!row) throw new Error(`port registry: no row for ${spec.kind}`);
  return row;
}

/**
 * Open the port a spec names, through its registry row (or a replacement in `opts.openers`).
 *
 * @example
 * ```ts
 * import { parsePortSpec } from "./port_spec.ts";
 * const port = await openPort(parsePortSpec("tcp://127.0.0.1:7231"), { text: "tcp://127.0.0.1:7231" });
 * if (port.bus === "uart") await port.link.close();
 * ```
 */
export async function openPort(spec: PortSpec, opts: PortOpenOptions): Promise<OpenedPort> {
  // checked here, not in the row, so a replaced opener is held to the same rule
  if (spec.kind === "spidev") checkCen(opts.text, opts.spidev ?? {});
  const open = opts.openers?.[spec.kind] ?? portKind(spec).open;
  return await open(spec, opts);
}
