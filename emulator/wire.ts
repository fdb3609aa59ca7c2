/**
 * The virtual serial wire: a {@link ByteLink} whose far end is a {@link UartDevice}. It charges
 * 10 bits per byte at the baud rate in force, the device's own latencies and the USB-UART
 * turnaround, all on a virtual clock, so a job reports the time it would take on a real
 * wire while running in milliseconds. Bytes sent at a baud the other side is not using
 * arrive as garbage, as they would on a wire. Same seed, same bytes, same timings.
 *
 * @module
 */

import { concat } from "../core/bytes.ts";
import { VirtualClock } from "../core/clock.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "../core/io/link.ts";
import { DEFAULT_TIMING, type TimingModel, wireMs } from "../core/timing.ts";
import { baudsMatch } from "../core/uart/baud.ts";
import type { TxChunk, UartDevice } from "./uart_device.ts";
import { Rng } from "./rng.ts";

interface Segment {
  /** Time the first bit of the first byte leaves the device. */
  start: number;
  /** Milliseconds per byte. */
  byteMs: number;
  baud: number;
  data: Uint8Array;
  /** Bytes already handed to the host. */
  taken: number;
}

/** A record of one event on the wire, for traces and tests. */
export interface WireEvent {
  /** Time on the wire's clock (ms). */
  t: number;
  /** Host to chip, chip to host, a baud change or a modem-line change. */
  dir: "tx" | "rx" | "baud" | "signals";
  /** The bytes, for tx and rx. */
  data?: Uint8Array;
  /** The new rate, for baud. */
  baud?: number;
  /** The new levels, for signals. */
  signals?: ModemSignals;
}

/** Options of a {@link VirtualWire}. */
export interface VirtualWireOptions {
  name?: string;
  clock?: VirtualClock;
  timing?: Partial<TimingModel>;
  seed?: number;
  /** Observe every byte and event on the wire. */
  onEvent?: (e: WireEvent) => void;
}

/** Whether two baud rates are close enough for a UART to decode (one rule, in core/uart/baud.ts). */
export { baudsMatch };

/**
 * A host-side ByteLink connected to an emulated device.
 *
 * @example
 * ```ts
 * import type { UartDevice } from "./uart_device.ts";
 * declare const chip: UartDevice;
 * const wire = new VirtualWire(chip);
 * await wire.write(Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00));
 * await wire.read(64, 5); // 04 0e 05 01 e0 fc 01 00, about 1.5 ms of virtual time later
 * ```
 */
export class VirtualWire implements ByteLink {
  readonly name: string;
  readonly clock: VirtualClock;
  readonly hasModemLines = true;
  /** The timing the wire and the chip charge. */
  readonly timing: TimingModel;
  #device: UartDevice;
  #baud = 115200;
  #txFree = 0;
  #rxFree = 0;
  #segments: Segment[] = [];
  #rng: Rng;
  #closed = false;
  #signals = { dtr: false, rts: false };
  #onEvent?: (e: WireEvent) => void;

  /** A wire to `device`. */
  constructor(device: UartDevice, opts: VirtualWireOptions = {}) {
    this.#device = device;
    this.name = opts.name ?? "virtual";
    this.clock = opts.clock ?? new VirtualClock();
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.#rng = new Rng(opts.seed ?? 1);
    this.#onEvent = opts.onEvent;
  }

  get baud(): number {
    return this.#baud;
  }

  write(data: Uint8Array): Promise<void> {
    this.#check();
    if (data.length === 0) return Promise.resolve();
    const start = Math.max(this.clock.now(), this.#txFree);
    const end = start + wireMs(data.length, this.#baud);
    this.#txFree = end;
    this.#onEvent?.({ t: start, dir: "tx", data: data.slice(), baud: this.#baud });
    const chipBaud = this.#device.baudAt(end);
    const heard = baudsMatch(chipBaud, this.#baud) ? data : this.#garble(data.length, this.#baud, chipBaud);
    this.#schedule(this.#device.receive(heard, end));
    return Promise.resolve();
  }

  #schedule(chunks: TxChunk[]): void {
    for (const c of chunks) {
      if (c.data.length === 0) continue;
      const start = Math.max(c.at, this.#rxFree);
      const byteMs = wireMs(1, c.baud);
      this.#rxFree = start + byteMs * c.data.length;
      this.#segments.push({ start, byteMs, baud: c.baud, data: c.data, taken: 0 });
    }
  }

  /** Time the host can have byte `i` of segment `s`. */
  #avail(s: Segment, i: number): number {
    return s.start + (i + 1) * s.byteMs + this.timing.usbTurnaroundMs;
  }

  read(max: number, timeoutMs: number): Promise<Uint8Array> {
    this.#check();
    const now = this.clock.now();
    // with nothing under way, the device may start talking on its own before the deadline
    if (this.#segments.length === 0) this.#schedule(this.#device.spontaneous?.(now + timeoutMs) ?? []);
    const first = this.#segments[0];
    if (!first) {
      this.clock.advanceTo(now + timeoutMs);
      return Promise.resolve(new Uint8Array(0));
    }
    const deadline = now + timeoutMs;
    const next = this.#avail(first, first.taken);
    if (next > deadline) {
      this.clock.advanceTo(deadline);
      return Promise.resolve(new Uint8Array(0));
    }
    // wait for the rest of this segment (up to `max` bytes), but not past the deadline
    const want = Math.min(first.data.length, first.taken + max) - 1;
    this.clock.advanceTo(Math.max(now, Math.min(deadline, this.#avail(first, want))));
    return Promise.resolve(this.#take(max));
  }

  #take(max: number): Uint8Array {
    const now = this.clock.now();
    const parts: Uint8Array[] = [];
    let n = 0;
    while (n < max && this.#segments.length) {
      const s = this.#segments[0];
      // bytes of this segment the host can have by now: avail(k) <= now
      const arrived = Math.floor((now - s.start - this.timing.usbTurnaroundMs) / s.byteMs + 1e-9);
      const limit = Math.min(s.data.length, s.taken + (max - n));
      let k = Math.min(limit, Math.max(s.taken, arrived));
      while (k > s.taken && this.#avail(s, k - 1) > now) k--;
      // the division can land just below an integer late in a long session: count up too
      while (k < limit && this.#avail(s, k) <= now) k++;
      if (k === s.taken) break;
      let bytes = s.data.subarray(s.taken, k);
      if (!baudsMatch(s.baud, this.#baud)) bytes = this.#garble(bytes.length, s.baud, this.#baud);
      parts.push(bytes);
      n += bytes.length;
      s.taken = k;
      if (s.taken === s.data.length) this.#segments.shift();
      else break;
    }
    const out = concat(parts);
    if (out.length) this.#onEvent?.({ t: now, dir: "rx", data: out, baud: this.#baud });
    return out;
  }

  /** What a UART at `rxBaud` makes of `n` bytes sent at `txBaud`. */
  #garble(n: number, txBaud: number, rxBaud: number): Uint8Array {
    const m = Math.max(0, Math.round((n * rxBaud) / txBaud));
    return this.#rng.fill(new Uint8Array(m));
  }

  drain(): Promise<void> {
    this.clock.advanceTo(this.#txFree);
    return Promise.resolve();
  }

  flushInput(): Promise<void> {
    this.#take(Number.MAX_SAFE_INTEGER);
    return Promise.resolve();
  }

  setBaud(baud: number): Promise<void> {
    this.#check();
    this.#baud = baud;
    this.#onEvent?.({ t: this.clock.now(), dir: "baud", baud });
    return Promise.resolve();
  }

  setSignals(signals: ModemSignals): Promise<void> {
    this.#check();
    this.#signals = { dtr: signals.dtr ?? this.#signals.dtr, rts: signals.rts ?? this.#signals.rts };
    this.#onEvent?.({ t: this.clock.now(), dir: "signals", signals: { ...this.#signals } });
    this.#device.signals(this.#signals, this.clock.now());
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #check(): void {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
  }
}
