/**
 * An SPI master wired straight to an emulated chip's pins, without a USB programmer in
 * between: the same {@link SpiMaster} interface the CH341A driver implements, so everything
 * above it (SPI-mode entry, NOR operations, the SPI flash target, the flasher) runs exactly
 * as it does through a CH341A, only without emulating USB packets. The chip-mode matrix
 * uses it to keep the SPI half of `deno test` fast; the CH341A itself is covered by running
 * the suite through the virtual CH341A too.
 *
 * Time: each transaction costs one USB-like turnaround, each SPI byte 8 clocks at `sckHz`.
 *
 * @module
 */

import type { VirtualClock } from "../core/clock.ts";
import {
  emptySpiStats,
  frameLength,
  frameMosi,
  type SpiMaster,
  type SpiStats,
  type SpiStep,
} from "../core/io/spi.ts";
import type { SpiPinsDevice } from "../emulator/ch341a.ts";

/** Timing of a {@link DirectSpiMaster}. */
export interface DirectSpiTiming {
  /** SPI clock (default 1.5 MHz, a CH341A's). */
  sckHz: number;
  /** Cost of one transaction (ms; default 1, a USB full-speed frame). */
  transactionMs: number;
}

/** A master on the chip's pins. */
export class DirectSpiMaster implements SpiMaster {
  readonly name: string;
  readonly clock: VirtualClock;
  readonly stats: SpiStats = emptySpiStats();
  readonly #device: SpiPinsDevice;
  readonly #timing: DirectSpiTiming;
  #cenLow = false;
  #closed = false;

  constructor(
    device: SpiPinsDevice,
    clock: VirtualClock,
    name: string,
    timing: Partial<DirectSpiTiming> = {},
  ) {
    this.#device = device;
    this.clock = clock;
    this.name = name;
    this.#timing = { sckHz: 1_500_000, transactionMs: 1, ...timing };
  }

  transfer(steps: SpiStep[]): Promise<Uint8Array[]> {
    if (this.#closed) return Promise.reject(new Error(`${this.name} is closed`));
    const byteMs = (8 / this.#timing.sckHz) * 1000;
    let t = this.clock.now() + this.#timing.transactionMs;
    const out: Uint8Array[] = [];
    for (const step of steps) {
      if ("cen" in step) {
        this.#cenLow = step.cen === "low";
        this.#device.setCen?.(this.#cenLow, t);
      } else if ("delayUs" in step) {
        t += step.delayUs / 1000;
      } else {
        const mosi = frameMosi(step.frame);
        const rx = new Uint8Array(frameLength(step.frame));
        this.#device.select(t);
        for (let i = 0; i < rx.length; i++) {
          t += byteMs;
          rx[i] = this.#device.exchange(mosi[i], t) & 0xff;
        }
        this.#device.deselect(t);
        this.stats.spiBytes += rx.length;
        this.stats.bytesOut += rx.length;
        this.stats.bytesIn += rx.length;
        out.push(rx);
      }
    }
    this.clock.advanceTo(t);
    this.stats.transactions++;
    this.stats.outTransfers++;
    this.stats.inTransfers++;
    return Promise.resolve(out);
  }

  /** Release CEN if it is held low. */
  close(): Promise<void> {
    if (!this.#closed && this.#cenLow) this.#device.setCen?.(false, this.clock.now());
    this.#closed = true;
    return Promise.resolve();
  }
}
