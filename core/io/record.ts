/**
 * Recording decorators: wrap a {@link ByteLink} or a CH341A's {@link UsbDeviceLike} and every
 * byte, baud change, modem-line change and USB transfer goes into a {@link TraceWriter} as it
 * happens, with the link clock's time. The wrapped object behaves exactly as before.
 *
 * @example
 * ```ts
 * import { openSerial } from "./serial/mod.ts";
 * import { type TraceSink, TraceWriter } from "./trace.ts";
 * declare const sink: TraceSink;
 * const writer = new TraceWriter(sink, { clock: "real" });
 * const link = recordLink(await openSerial("/dev/ttyUSB0"), writer, { label: "read-flash" });
 * ```
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { ByteLink, ModemSignals } from "./link.ts";
import type { TraceEventInput, TraceWriter } from "./trace.ts";
import type { UsbDeviceLike, UsbInResult, UsbOutResult } from "./usb.ts";
import { ForwardingUsbDevice } from "./usb_forward.ts";

/** Options of {@link recordLink} and {@link recordUsbDevice}. */
export interface RecordOptions {
  /** What the link is opened for (a scenario id, a CLI command), written into its `open` line. */
  label?: string;
}

/** A ByteLink that records what passes through it. */
export class RecordingLink implements ByteLink {
  /** The link being recorded. */
  readonly inner: ByteLink;
  readonly #writer: TraceWriter;
  readonly #id: number;
  readonly #t0: number;

  constructor(inner: ByteLink, writer: TraceWriter, options: RecordOptions = {}) {
    this.inner = inner;
    this.#writer = writer;
    this.#t0 = inner.clock.now();
    this.#id = writer.open({
      kind: "uart",
      name: inner.name,
      baud: inner.baud,
      modemLines: inner.hasModemLines,
      ...(options.label ? { label: options.label } : {}),
    });
  }

  get name(): string {
    return this.inner.name;
  }
  get clock(): Clock {
    return this.inner.clock;
  }
  get baud(): number {
    return this.inner.baud;
  }
  get hasModemLines(): boolean {
    return this.inner.hasModemLines;
  }

  async write(data: Uint8Array): Promise<void> {
    const t = this.#now();
    await this.inner.write(data);
    if (data.length) this.#emit({ kind: "tx", t, data: data.slice() });
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    const data = await this.inner.read(max, timeoutMs);
    if (data.length) this.#emit({ kind: "rx", t: this.#now(), data: data.slice() });
    return data;
  }

  async drain(): Promise<void> {
    await this.inner.drain();
    this.#emit({ kind: "drain", t: this.#now() });
  }

  async flushInput(): Promise<void> {
    await this.inner.flushInput();
    this.#emit({ kind: "flush", t: this.#now() });
  }

  async setBaud(baud: number): Promise<void> {
    const t = this.#now();
    await this.inner.setBaud(baud);
    this.#emit({ kind: "baud", t, baud });
  }

  async setSignals(signals: ModemSignals): Promise<void> {
    const t = this.#now();
    await this.inner.setSignals(signals);
    this.#emit({ kind: "signals", t, dtr: signals.dtr, rts: signals.rts });
  }

  async close(): Promise<void> {
    await this.inner.close();
    this.#emit({ kind: "close", t: this.#now() });
  }

  #now(): number {
    return this.inner.clock.now() - this.#t0;
  }

  #emit(e: TraceEventInput): void {
    this.#writer.event(this.#id, e);
  }
}

/** Wrap `link` so everything on it is recorded into `writer`. */
export function recordLink(link: ByteLink, writer: TraceWriter, options: RecordOptions = {}): RecordingLink {
  return new RecordingLink(link, writer, options);
}

interface Pending {
  done: boolean;
  event: TraceEventInput;
}

/**
 * A USB device that records every control step and bulk transfer, each stamped with the time
 * it completed. Transfers are written in the order they were *issued*, even when an IN queued
 * ahead completes after a later OUT, so a replay can answer them in the same order.
 */
export class RecordingUsbDevice extends ForwardingUsbDevice {
  readonly #writer: TraceWriter;
  readonly #id: number;
  readonly #clock: Clock;
  readonly #t0: number;
  readonly #queue: Pending[] = [];

  constructor(inner: UsbDeviceLike, writer: TraceWriter, clock: Clock, options: RecordOptions = {}) {
    super(inner);
    this.#writer = writer;
    this.#clock = clock;
    this.#t0 = clock.now();
    const name = `usb:${hex4(inner.vendorId)}:${hex4(inner.productId)}`;
    this.#id = writer.open({ kind: "usb", name, ...(options.label ? { label: options.label } : {}) });
  }

  override open(): Promise<void> {
    return this.#control("open", undefined, () => this.inner.open());
  }
  override close(): Promise<void> {
    return this.#control("close", undefined, () => this.inner.close());
  }
  override selectConfiguration(configurationValue: number): Promise<void> {
    return this.#control(
      "configuration",
      configurationValue,
      () => this.inner.selectConfiguration(configurationValue),
    );
  }
  override claimInterface(interfaceNumber: number): Promise<void> {
    return this.#control("claim", interfaceNumber, () => this.inner.claimInterface(interfaceNumber));
  }
  override releaseInterface(interfaceNumber: number): Promise<void> {
    return this.#control("release", interfaceNumber, () => this.inner.releaseInterface(interfaceNumber));
  }
  get detachKernelDriver(): ((interfaceNumber: number) => Promise<void>) | undefined {
    const inner = this.inner;
    if (!inner.detachKernelDriver) return undefined;
    return (n: number) => this.#control("detach", n, () => inner.detachKernelDriver!(n));
  }

  override async transferOut(endpointNumber: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
    const p = this.#issue({ kind: "usb-out", t: this.#now(), ep: endpointNumber, data: data.slice() });
    try {
      return await this.inner.transferOut(endpointNumber, data);
    } finally {
      p.event.t = this.#now();
      this.#complete(p);
    }
  }

  override async transferIn(endpointNumber: number, length: number): Promise<UsbInResult> {
    const event = {
      kind: "usb-in" as const,
      t: this.#now(),
      ep: endpointNumber,
      length,
      data: new Uint8Array(0),
    };
    const p = this.#issue(event);
    try {
      const r = await this.inner.transferIn(endpointNumber, length);
      if (r.data) event.data = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength).slice();
      if (r.status && r.status !== "ok") (event as { status?: string }).status = r.status;
      return r;
    } finally {
      event.t = this.#now();
      this.#complete(p);
    }
  }

  async #control(op: string, arg: number | undefined, fn: () => Promise<void>): Promise<void> {
    const p = this.#issue({ kind: "usb", t: this.#now(), op, arg });
    try {
      await fn();
    } finally {
      p.event.t = this.#now();
      this.#complete(p);
    }
  }

  #issue(event: TraceEventInput): Pending {
    const p = { done: false, event };
    this.#queue.push(p);
    return p;
  }

  #complete(p: Pending): void {
    p.done = true;
    while (this.#queue.length && this.#queue[0].done) {
      this.#writer.event(this.#id, this.#queue.shift()!.event);
    }
  }

  #now(): number {
    return this.#clock.now() - this.#t0;
  }
}

/** Wrap a USB device so its transfers are recorded into `writer`, timed on `clock`. */
export function recordUsbDevice(
  device: UsbDeviceLike,
  writer: TraceWriter,
  clock: Clock,
  options: RecordOptions = {},
): RecordingUsbDevice {
  return new RecordingUsbDevice(device, writer, clock, options);
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}
