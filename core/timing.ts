/**
 * The timing model: one documented place for every duration the tool assumes. The emulator
 * charges these times on its virtual clock, the flasher derives timeouts from them, and the
 * benchmark divides by them. Tests must not depend on the exact values.
 *
 * Sources (see the project's protocol notes, timing.md):
 * - Flash: Winbond W25Q32JV datasheet rev G §9.6 typical values (tPP 0.4 ms, tSE 45 ms,
 *   tBE64 150 ms, tCE 10 s) and tW 10 ms from Winbond's simulation model. The TH25Q16HB and
 *   XT25F16B on BK7231N modules have no AC table we could read; the W25Q32JV stands in.
 * - USB-UART turnaround: about 1 ms per round trip (FTDI with a 1 ms latency timer, CH340
 *   with its low-latency bit; measured 1.0–1.6 ms byte echo on Linux).
 * - Loader reply latency and CRC speed: no public measurement. bk7231tools budgets at least
 *   400 000 B/s for the chip CRC; we assume the ROM's table-driven CRC runs from the flash
 *   cache at 8 MB/s (an assumption, flagged as such).
 * - Boot window: a Beken bootloader log prints `wait uart download timeout: 400` (unit
 *   probably ms).
 *
 * @module
 */

/** Every duration the model charges, in milliseconds or bytes per second. */
export interface TimingModel {
  /** USB-UART adapter latency added to every reply the host receives (ms). */
  usbTurnaroundMs: number;
  /** Loader latency between the last request byte and the first reply byte (ms). */
  loaderReplyMs: number;
  /** Chip-side CRC throughput (bytes/s). */
  crcBytesPerSec: number;
  /** Page program time, 256 bytes (ms). */
  pageProgramMs: number;
  /** 4 KiB sector erase (ms). */
  sectorEraseMs: number;
  /** 32 KiB block erase (ms). */
  block32EraseMs: number;
  /** 64 KiB block erase (ms). */
  blockEraseMs: number;
  /** Whole-chip erase (ms). */
  chipEraseMs: number;
  /** Status-register write (ms). */
  srWriteMs: number;
  /** Time from CEN release to the loader listening (ms). */
  resetToWindowMs: number;
  /** How long the loader listens for a link check after reset (ms). */
  bootWindowMs: number;
}

/** The model used by the emulator, the CLI's modelled durations and the benchmark. */
export const DEFAULT_TIMING: Readonly<TimingModel> = Object.freeze({
  usbTurnaroundMs: 1,
  loaderReplyMs: 0.05,
  crcBytesPerSec: 8_000_000,
  pageProgramMs: 0.4,
  sectorEraseMs: 45,
  block32EraseMs: 120,
  blockEraseMs: 150,
  chipEraseMs: 10_000,
  srWriteMs: 10,
  resetToWindowMs: 10,
  bootWindowMs: 400,
});

/** Milliseconds a UART at `baud` (8N1: 10 bits per byte) needs for `bytes` bytes. */
export function wireMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}
