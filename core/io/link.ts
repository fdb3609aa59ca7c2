/**
 * The byte link: the narrow interface every UART-like transport implements (a real serial
 * port, a TCP bridge, the emulator's virtual wire, a trace replayer). Framing lives above it.
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** Modem-control lines a link may drive. Links without them (TCP, PTY) ignore the call. */
export interface ModemSignals {
  /** DTR level (true = asserted); unchanged when absent. */
  dtr?: boolean;
  /** RTS level (true = asserted); unchanged when absent. */
  rts?: boolean;
}

/** A bidirectional byte stream with a settable baud rate. */
export interface ByteLink {
  /** Human-readable name of the port ("/dev/ttyUSB0", "virtual:bk7231n", "tcp://…"). */
  readonly name: string;
  /** The clock this link's timeouts run on: real for hardware, virtual for the emulator. */
  readonly clock: Clock;
  /** The host-side baud rate currently configured. */
  readonly baud: number;
  /** Whether DTR/RTS actually reach a device (false for TCP and PTY targets). */
  readonly hasModemLines: boolean;
  /** Queue bytes for transmission. Resolves when they are handed to the OS / wire. */
  write(data: Uint8Array): Promise<void>;
  /**
   * Wait up to `timeoutMs` for at least one byte, then return what has arrived (at most `max`
   * bytes). Returns an empty array on timeout. Throws {@link LinkClosedError} when the device
   * went away.
   */
  read(max: number, timeoutMs: number): Promise<Uint8Array>;
  /** Wait until everything written has left the host. */
  drain(): Promise<void>;
  /** Discard bytes received but not yet read. */
  flushInput(): Promise<void>;
  /** Reprogram the host side's baud rate. */
  setBaud(baud: number): Promise<void>;
  /** Drive DTR/RTS where the transport has them. */
  setSignals(signals: ModemSignals): Promise<void>;
  /** Release the port. Safe to call twice. */
  close(): Promise<void>;
}

/** The device behind a link disappeared (unplugged adapter, closed socket, dead PTY). */
export class LinkClosedError extends Error {
  /** The link to `port` was closed, with an optional reason. */
  constructor(port: string, detail = "") {
    super(`device disconnected: ${port}${detail ? ` (${detail})` : ""}`);
    this.name = "LinkClosedError";
  }
}
