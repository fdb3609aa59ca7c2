/**
 * The part of a serial {@link ByteLink} that is the same on Linux and macOS: a non-blocking
 * descriptor read and written synchronously while data flows, a wait on a worker thread when
 * it would block, a wake-up descriptor so `close()` ends every pending wait at once, and the
 * rule that end-of-file, EIO or a hang-up means the device is gone.
 *
 * @module
 */

import { type Clock, realClock } from "../../clock.ts";
import { FlashError } from "../../errors.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "../link.ts";

/** What a wait on the descriptor ended with. */
export type WaitResult = "ready" | "hangup" | "timeout" | "woken";

/** The outcome of a non-blocking read or write: a byte count, or a classified failure. */
export type IoResult = number | "again" | "gone" | { errno: string };

/** Operating-system specifics a {@link PosixSerialLink} is built on. */
export interface PosixPort {
  /** Non-blocking read into `buf`: bytes read (> 0), "again", or "gone" (EOF, EIO, ENXIO…). */
  read(buf: Uint8Array): IoResult;
  /** Non-blocking write of `buf`: bytes accepted, "again", or "gone". */
  write(buf: Uint8Array): IoResult;
  /** Wait off the main thread until the descriptor is readable ("in") or writable ("out"). */
  wait(dir: "in" | "out", timeoutMs: number): Promise<WaitResult>;
  /** Make every pending and later {@link wait} return "woken". */
  wake(): void;
  /** Program the line rate; returns the rate the driver reports back. */
  setBaud(baud: number): number;
  /** Assert (`true`) or release (`false`) modem lines; returns false when the tty has none. */
  setModem(lines: { dtr?: boolean; rts?: boolean }): boolean;
  /** Start (`true`) or end a break condition. */
  setBreak(on: boolean): void;
  /** Resolve when the output queue has left the UART. */
  drain(): Promise<void>;
  /** Discard received, unread input. */
  flushInput(): void;
  /** Discard output not yet sent (lets a pending drain finish when closing). */
  flushOutput(): void;
  /** Release the descriptors. */
  close(): void;
}

/** Longest a write may make no progress before it is reported, beyond the bytes' own wire time. */
const WRITE_STALL_MS = 10_000;
/** poll(2) takes an int of milliseconds. */
const MAX_WAIT_MS = 2 ** 31 - 1;

/** A {@link ByteLink} over a POSIX tty descriptor. */
export class PosixSerialLink implements ByteLink {
  readonly name: string;
  readonly clock: Clock = realClock;
  #baud: number;
  #hasModemLines: boolean;
  #port: PosixPort;
  #closed = false;
  #draining = 0;
  #pending = new Set<Promise<unknown>>();

  /** Wrap an opened, configured port. `hasModemLines` is what the open-time probe found. */
  constructor(name: string, port: PosixPort, baud: number, hasModemLines: boolean) {
    this.name = name;
    this.#port = port;
    this.#baud = baud;
    this.#hasModemLines = hasModemLines;
  }

  get baud(): number {
    return this.#baud;
  }

  get hasModemLines(): boolean {
    return this.#hasModemLines;
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    this.#open();
    const buf = new Uint8Array(Math.max(1, max));
    const deadline = this.clock.now() + timeoutMs;
    let hungUp = false;
    for (;;) {
      const r = this.#port.read(buf);
      if (typeof r === "number" && r > 0) return buf.slice(0, r);
      if (r === "gone" || (r === "again" && hungUp)) throw this.#gone();
      if (typeof r === "object") throw this.#failed("read", r.errno);
      const left = deadline - this.clock.now();
      if (left <= 0) return new Uint8Array(0);
      const w = await this.#wait("in", left);
      if (w === "woken") throw new LinkClosedError(this.name, "port closed");
      if (w === "hangup") hungUp = true;
    }
  }

  async write(data: Uint8Array): Promise<void> {
    this.#open();
    let at = 0;
    let lastProgress = this.clock.now();
    const wireMs = (data.length * 10_000) / this.#baud;
    while (at < data.length) {
      const r = this.#port.write(data.subarray(at));
      if (typeof r === "number" && r > 0) {
        at += r;
        lastProgress = this.clock.now();
        continue;
      }
      if (r === "gone") throw this.#gone();
      if (typeof r === "object") throw this.#failed("write", r.errno);
      const left = lastProgress + WRITE_STALL_MS + wireMs - this.clock.now();
      if (left <= 0) {
        throw new FlashError(
          "PORT",
          `writing to ${this.name} stalled: ${data.length - at} of ${data.length} bytes not accepted`,
          "unplug and replug the adapter; if it has hardware flow control wiring, check CTS",
        );
      }
      const w = await this.#wait("out", left);
      if (w === "woken") throw new LinkClosedError(this.name, "port closed");
      if (w === "hangup") throw this.#gone();
    }
  }

  async drain(): Promise<void> {
    this.#open();
    this.#draining++;
    try {
      await this.#track(this.#port.drain());
    } finally {
      this.#draining--;
    }
  }

  flushInput(): Promise<void> {
    this.#open();
    this.#port.flushInput();
    return Promise.resolve();
  }

  setBaud(baud: number): Promise<void> {
    this.#open();
    if (!Number.isInteger(baud) || baud <= 0) {
      return Promise.reject(
        new FlashError("USAGE", `invalid baud rate ${baud}`, "use a positive integer rate"),
      );
    }
    const actual = this.#port.setBaud(baud);
    if (Math.abs(actual - baud) > baud * 0.03) {
      return Promise.reject(
        new FlashError(
          "PORT",
          `${this.name} cannot run at ${baud} baud (the driver set ${actual})`,
          "choose a rate the adapter supports with --baud (CH340: up to 2000000; CP2102: 921600)",
        ),
      );
    }
    this.#baud = baud;
    return Promise.resolve();
  }

  setSignals(signals: ModemSignals): Promise<void> {
    this.#open();
    if (this.#hasModemLines && !this.#port.setModem(signals)) this.#hasModemLines = false;
    return Promise.resolve();
  }

  /** Hold the line in break (TX low) for `ms` milliseconds. */
  async sendBreak(ms: number): Promise<void> {
    this.#open();
    this.#port.setBreak(true);
    try {
      await this.clock.sleep(ms);
    } finally {
      if (!this.#closed) this.#port.setBreak(false);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // bytes already written still go out, unless a drain is waiting on them: then the caller
    // wants the port back now
    if (this.#draining > 0) this.#port.flushOutput();
    this.#port.wake();
    await Promise.allSettled([...this.#pending]);
    this.#port.close();
  }

  #open(): void {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
  }

  #wait(dir: "in" | "out", ms: number): Promise<WaitResult> {
    if (this.#closed) return Promise.resolve("woken");
    return this.#track(this.#port.wait(dir, Math.min(MAX_WAIT_MS, Math.ceil(ms))));
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    return p.finally(() => this.#pending.delete(p));
  }

  #gone(): LinkClosedError {
    return new LinkClosedError(this.name);
  }

  #failed(op: string, errno: string): FlashError {
    return new FlashError(
      "PORT",
      `${op} on ${this.name} failed: ${errno}`,
      "unplug and replug the adapter, then try again",
    );
  }
}
