/**
 * The SPI master: the narrow interface every SPI adapter implements (CH341A over USB, Linux
 * spidev + GPIO, the emulator's virtual CH341A through the real driver). A caller hands over a
 * whole sequence of steps (chip-select frames, reset-line changes, short delays) so an adapter
 * can put it on the bus in as few transfers as its hardware allows.
 *
 * @example
 * ```ts
 * declare const spi: SpiMaster;
 * // JEDEC ID: one frame, opcode then three bytes in
 * const [rx] = await spi.transfer([{ frame: { out: Uint8Array.of(0x9f), read: 3, tolerant: true } }]);
 * const id = rx.subarray(1, 4);
 * ```
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** One chip-select assertion: CS low, `out` then `read` fill bytes clocked, CS high. */
export interface SpiFrame {
  /** Bytes shifted out first (opcode, address, data). */
  out: Uint8Array;
  /** Bytes clocked in after `out` while sending `fill`. */
  read?: number;
  /** MOSI value while reading (default 0xFF). */
  fill?: number;
  /**
   * Clocking extra trailing bytes is harmless (reads, status and ID reads). An adapter may
   * then pad the frame to its packet size to batch more; the extra bytes are dropped.
   */
  tolerant?: boolean;
  /**
   * Bytes that may follow `out` (in this order, as many as the adapter wants, none at all
   * included) without changing what the command does: a whole-page program can repeat the
   * page's first bytes, since the page buffer wraps and they land on themselves. Lets an
   * adapter with packet rules (the CH341A) pad a frame instead of ending a transfer.
   */
  pad?: Uint8Array;
}

/** One step of a transaction. */
export type SpiStep =
  | { frame: SpiFrame }
  /** Drive the chip's reset line: `low` = CEN held low (chip in reset). */
  | { cen: "low" | "high" }
  /** A short pause on the bus, in microseconds (adapters may round up). */
  | { delayUs: number };

/** Counters an adapter keeps. */
export interface SpiStats {
  /** Calls of {@link SpiMaster.transfer}. */
  transactions: number;
  /** Bus-level OUT transfers (USB bulk OUTs, ioctls). */
  outTransfers: number;
  /** Bus-level IN transfers. */
  inTransfers: number;
  /** Bytes sent on the bus, framing included. */
  bytesOut: number;
  /** Bytes received on the bus. */
  bytesIn: number;
  /** SPI bytes clocked. */
  spiBytes: number;
}

/** An SPI master with a reset (CEN) line. */
export interface SpiMaster {
  /** Human-readable adapter name ("ch341a:0", "spidev:/dev/spidev0.0", "ch341a:virtual:bk7231n"). */
  readonly name: string;
  /** The clock this adapter's waits run on. */
  readonly clock: Clock;
  /**
   * Run the steps in order. Returns, for each frame step, the MISO bytes clocked during it:
   * `out.length + read` bytes, full duplex.
   */
  transfer(steps: SpiStep[]): Promise<Uint8Array[]>;
  /** Counters since open. */
  readonly stats: SpiStats;
  /** Largest frame (bytes clocked under one CS) the adapter can carry, when it is limited (spidev). */
  readonly maxFrame?: number;
  /** Release the adapter; leaves CS high and CEN released. Safe to call twice. */
  close(): Promise<void>;
}

/** Fresh zeroed counters. */
export function emptySpiStats(): SpiStats {
  return { transactions: 0, outTransfers: 0, inTransfers: 0, bytesOut: 0, bytesIn: 0, spiBytes: 0 };
}

/** Number of bytes a frame clocks. */
export function frameLength(f: SpiFrame): number {
  return f.out.length + (f.read ?? 0);
}

/** The MOSI bytes of a frame: `out` then `read` fill bytes. */
export function frameMosi(f: SpiFrame, length = frameLength(f)): Uint8Array {
  const mosi = new Uint8Array(length).fill(f.fill ?? 0xff);
  mosi.set(f.out.subarray(0, length));
  return mosi;
}
