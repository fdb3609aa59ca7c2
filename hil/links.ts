/**
 * Small ByteLink decorators the benches use: a borrowed link whose `close` leaves the port
 * open (the bench owns it, scenarios only borrow it), and an adapter with a baud ceiling (the
 * emulator's stand-in for a USB-UART that cannot do 3 Mbaud).
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import type { ByteLink, ModemSignals } from "../core/io/link.ts";

/** Forwards everything to `inner`; subclasses override what they change. */
class ForwardingLink implements ByteLink {
  readonly inner: ByteLink;
  constructor(inner: ByteLink) {
    this.inner = inner;
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
  write(data: Uint8Array): Promise<void> {
    return this.inner.write(data);
  }
  read(max: number, timeoutMs: number): Promise<Uint8Array> {
    return this.inner.read(max, timeoutMs);
  }
  drain(): Promise<void> {
    return this.inner.drain();
  }
  flushInput(): Promise<void> {
    return this.inner.flushInput();
  }
  setBaud(baud: number): Promise<void> {
    return this.inner.setBaud(baud);
  }
  setSignals(signals: ModemSignals): Promise<void> {
    return this.inner.setSignals(signals);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A view of a link that a connection may "close" without closing the port underneath. */
export class BorrowedLink extends ForwardingLink {
  override close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A USB-UART adapter that refuses rates above `maxBaud`, as a CP2102 refuses 3 Mbaud: the
 * host side fails before anything reaches the chip.
 */
export class BaudCeilingLink extends ForwardingLink {
  readonly maxBaud: number;
  constructor(inner: ByteLink, maxBaud: number) {
    super(inner);
    this.maxBaud = maxBaud;
  }
  override setBaud(baud: number): Promise<void> {
    if (baud > this.maxBaud) {
      return Promise.reject(
        new FlashError(
          "PORT",
          `${this.name} cannot run at ${baud} baud (this adapter stops at ${this.maxBaud})`,
          `choose --baud ${this.maxBaud} or lower`,
        ),
      );
    }
    return this.inner.setBaud(baud);
  }
}
