/**
 * The Beken chip's SPI-mode entry, as a model (docs/spi-ch341.md B.2, B.4). After CEN is released
 * the ROM samples the SPI pins for a window; if enough 0xD2 bytes arrive while CS is low, and
 * this attempt is a lucky one, it answers the first byte of the window with 0xD2 and the rest
 * with zeros, settles for a while (zeros: the flash "does not answer yet"), then passes every
 * CS frame through to the NOR flash. Without entry the chip boots its firmware and the pins
 * read 0xFF. Every number here is a model parameter: the real ROM rule is an open question
 * (docs/spi-ch341.md E.1, E.2).
 *
 * @example
 * ```ts
 * import { NorFlash } from "./nor.ts";
 * const chip = new SpiModeChip(new NorFlash(), { succeedOnAttempt: 3 });
 * ```
 *
 * @module
 */

import { BEKEN_SPI_SYNC } from "../core/spi/opcodes.ts";
import type { NorFlash } from "./nor.ts";
import { Rng } from "./rng.ts";

/** Entry-model parameters. */
export interface SpiEntryModel {
  /** How long after CEN release the ROM samples for 0xD2 (ms). Default 50. */
  windowMs: number;
  /** 0xD2 bytes needed inside the window. Default 32. */
  requiredD2: number;
  /**
   * After entry, time during which every byte reads 0x00 (ms): drawn per entry between
   * `settleMs` and `settleMaxMs` (seeded). Clients flush 32 to 25 000 zero bytes (0.2–130 ms at
   * 1.5 MHz) or poll the ID up to 500 times before the flash answers; default 2–100 ms.
   */
  settleMs: number;
  /** Upper end of the settle time (ms); at or below `settleMs` the settle time is fixed. */
  settleMaxMs: number;
  /**
   * Per-attempt success probability (seeded). Ignored with `succeedOnAttempt`. Default 0.25:
   * most boards enter within the GUI's 10 attempts (94 %); a stubborn BK7252 needed 398
   * (`successProbability: 1 / 400` reproduces that).
   */
  successProbability: number;
  /** Attempts (CEN releases) before this one fail; from this one on, entry works. */
  succeedOnAttempt?: number;
  /** MISO during the opcode byte of a pass-through frame (PYSPI saw 0x00). Default 0x00. */
  opcodeSlotMiso: number;
  /** Seed of the success draw. */
  seed: number;
}

/** Model defaults. */
export const DEFAULT_SPI_ENTRY_MODEL: Readonly<SpiEntryModel> = Object.freeze({
  windowMs: 50,
  requiredD2: 32,
  settleMs: 2,
  settleMaxMs: 100,
  successProbability: 0.25,
  opcodeSlotMiso: 0x00,
  seed: 1,
});

/** Where the chip is. */
export type SpiModeState = "reset" | "window" | "settling" | "spi" | "booted";

/** The SPI-pin face of a Beken chip: CSN, SCK+SI/SO as byte exchanges, and CEN. */
export class SpiModeChip {
  /** The flash behind the chip. */
  readonly nor: NorFlash;
  /** Parameters (mutable between attempts for tests). */
  readonly model: SpiEntryModel;
  /** CEN releases seen. */
  attempts = 0;
  /** Successful entries. */
  entries = 0;
  /** Called on every CEN change (e.g. to reset a UART-side model of the same chip). */
  onCen?: (low: boolean, now: number) => void;

  readonly #rng: Rng;
  #state: SpiModeState = "booted";
  #cenLow = false;
  #releasedAt = 0;
  #lucky = false;
  #d2 = 0;
  #firstByte = true;
  #settledAt = 0;
  #csLow = false;
  #frameIndex = 0;

  /** A chip whose SPI-mode entry follows `model`, with `nor` behind it. */
  constructor(nor: NorFlash, model: Partial<SpiEntryModel> = {}) {
    this.nor = nor;
    this.model = { ...DEFAULT_SPI_ENTRY_MODEL, ...model };
    this.#rng = new Rng(this.model.seed);
  }

  /** State at `now`. */
  stateAt(now: number): SpiModeState {
    if (this.#cenLow) return "reset";
    if (this.#state === "window" && now >= this.#releasedAt + this.model.windowMs) return "booted";
    if (this.#state === "settling" && now >= this.#settledAt) return "spi";
    return this.#state;
  }

  /** Drive CEN: `low` holds the chip in reset; a release starts a new entry attempt. */
  setCen(low: boolean, now: number): void {
    if (low === this.#cenLow) return;
    this.#cenLow = low;
    this.onCen?.(low, now);
    if (low) {
      this.#state = "reset";
      this.nor.reset(now);
      return;
    }
    this.attempts++;
    const m = this.model;
    this.#lucky = m.succeedOnAttempt !== undefined
      ? this.attempts >= m.succeedOnAttempt
      : this.#rng.float() < m.successProbability;
    this.#state = "window";
    this.#releasedAt = now;
    this.#d2 = 0;
    this.#firstByte = true;
  }

  /** CS# falls. */
  select(now: number): void {
    this.#settle(now);
    this.#csLow = true;
    this.#frameIndex = 0;
    if (this.#state === "spi") this.nor.select(now);
  }

  /** One byte both ways. With CS high the pins read 0xFF and nothing is sampled. */
  exchange(mosi: number, now: number): number {
    this.#settle(now);
    if (!this.#csLow) return 0xff;
    const index = this.#frameIndex++;
    switch (this.#state) {
      case "reset":
      case "booted":
        return 0xff;
      case "settling":
        return 0x00;
      case "spi": {
        const miso = this.nor.exchange(mosi, now);
        return index === 0 ? this.model.opcodeSlotMiso : miso;
      }
      case "window": {
        const first = this.#firstByte;
        this.#firstByte = false;
        if (mosi === BEKEN_SPI_SYNC) this.#d2++;
        if (this.#lucky && this.#d2 >= this.model.requiredD2) {
          this.#state = "settling";
          const { settleMs: lo, settleMaxMs: hi } = this.model;
          this.#settledAt = now + (hi > lo ? lo + this.#rng.float() * (hi - lo) : lo);
          this.entries++;
        }
        return first && this.#lucky ? BEKEN_SPI_SYNC : 0x00;
      }
    }
  }

  /** CS# rises. */
  deselect(now: number): void {
    this.#settle(now);
    if (this.#csLow && this.#state === "spi") this.nor.deselect(now);
    this.#csLow = false;
  }

  #settle(now: number): void {
    const s = this.stateAt(now);
    if (s === this.#state) return;
    const enteringSpi = s === "spi";
    this.#state = s;
    // a frame that was already open when the flash came alive is not passed through
    if (enteringSpi && this.#csLow) this.#csLow = false;
  }
}
