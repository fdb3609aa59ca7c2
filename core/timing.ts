/**
 * The timing model: one documented place for every duration the tool assumes. The emulator
 * charges these times on its virtual clock (the serial wire, the chip, the NOR flash and the
 * virtual CH341A all read them from here), the flasher derives timeouts from them, and the
 * benchmark divides by them. Tests must not depend on the exact values.
 *
 * Sources (docs/timing.md):
 * - Flash: Winbond W25Q32JV datasheet rev G §9.6 typical values (tPP 0.4 ms, tSE 45 ms,
 *   tBE32 120 ms, tBE64 150 ms, tCE 10 s) and tW 10 ms from Winbond's simulation model. The
 *   TH25Q16HB and XT25F16B on BK7231N modules have no AC table we could read; the W25Q32JV
 *   stands in for every part.
 * - USB-UART turnaround: about 1 ms per round trip (FTDI with a 1 ms latency timer, CH340
 *   with its low-latency bit; measured 1.0–1.6 ms byte echo on Linux). Charged once per
 *   reply, on its way to the host.
 * - Loader: it answers one request at a time; what it does with bytes that arrive while it is
 *   busy, its reply latency and its SetBaudRate delay depend on the loader family
 *   (core/chips/loaders.ts). The reply latency has no public measurement (0.05 ms assumed).
 * - Chip CRC (docs/silicon.md §1): real logs bound it from below (a 2 MiB + 1 CRC within 5 s:
 *   faster than 0.42 MB/s); the loaders compute it byte by byte in a 256-byte SPI read loop, and
 *   2–3 s per 2 MiB is the best estimate: 0.8 MB/s here, with the range 0.42–1.5 MB/s in
 *   {@link TIMING_RANGES} (the bench reports figures at both ends).
 * - Boot window: a Beken bootloader log prints `wait uart download timeout: 400` (unit
 *   probably ms).
 *
 * The CH341A half ({@link CH341A_TIMING}) is documented on its own interface.
 *
 * @module
 */

/** Every duration the model charges, in milliseconds or bytes per second. */
export interface TimingModel {
  /** USB-UART adapter latency added to every reply the host receives (ms). */
  usbTurnaroundMs: number;
  /** Loader latency between taking up a request and the first reply byte (ms). */
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
  crcBytesPerSec: 800_000,
  pageProgramMs: 0.4,
  sectorEraseMs: 45,
  block32EraseMs: 120,
  blockEraseMs: 150,
  chipEraseMs: 10_000,
  srWriteMs: 10,
  resetToWindowMs: 10,
  bootWindowMs: 400,
});

/** A model value where the evidence gives a range: the value used, both ends, and why. */
export interface RangedValue {
  readonly default: number;
  readonly low: number;
  readonly high: number;
  readonly source: string;
}

/** The ranges behind the model's most uncertain values. */
export const TIMING_RANGES: {
  readonly crcBytesPerSec: RangedValue;
  readonly usbTurnaroundMs: RangedValue;
} = Object.freeze({
  crcBytesPerSec: {
    default: 800_000,
    low: 420_000,
    high: 1_500_000,
    source: "real logs: a 2 MiB CRC within 5 s, 905 216 bytes within 3 s; estimate 2–3 s per 2 MiB",
  },
  usbTurnaroundMs: {
    default: 1,
    low: 1,
    high: 16,
    source: "FTDI/CH340 with a 1 ms latency timer (low-latency); 16 ms is FTDI's default timer",
  },
});

/**
 * The chip-side CRC budget a client should allow for `bytes` (ms): the slow end of the
 * calibrated range with a 1.5 × margin, plus half a second for everything else.
 */
export function crcBudgetMs(bytes: number): number {
  return Math.max(1000, (bytes / TIMING_RANGES.crcBytesPerSec.low) * 1000 * 1.5 + 500);
}

/**
 * What the virtual CH341A charges (docs/spi-ch341.md A.3–A.8). Assumptions, each flagged:
 *
 * - SCK: fixed, about 1.5 MHz (12 MHz / 8 per the fz spi-ch341 driver; other sources say
 *   1.4–1.7 MHz). Every SPI byte costs 8 clocks; the model assumes **no gaps between bytes or
 *   packets** (unknown: published reads with pipelined tools reach 120–130 KiB/s, ch341prog and
 *   IMSProg, below the 183 KiB/s ceiling, so real parts probably have gaps or a slower clock;
 *   expect real reads 20–30 % slower than modelled).
 * - USB frame: every bulk OUT transfer costs one full-speed frame (1 ms) before its first
 *   packet is executed. That is the latency of a synchronous round trip (the host submits,
 *   the controller schedules it in a frame, the last IN packet is reported at a frame
 *   boundary); charging it to each transfer, even ones the host queued back to back, is
 *   pessimistic for transactions that need several transfers. IN transfers are queued ahead
 *   (32 in flight), so they add no latency of their own.
 * - USB bus time: a 32-byte bulk transaction occupies the bus about 35 µs (USB 2.0 §5.8.4:
 *   13 bytes of protocol overhead, worst-case bit stuffing 7/6, at 12 Mbit/s). A packet's
 *   OUT transaction and its IN reply overlap with the SPI clocking of the previous packet, so
 *   a packet costs the larger of its SPI time and its bus time (SPI time dominates: 165 µs
 *   for 31 bytes).
 * - UIO sub-commands: about 0.75 µs each (flashrom's measured 2.25 µs minimum CS-high time
 *   for two dummy commands plus the CS edge).
 */
export interface Ch341aTimingModel {
  /** SPI clock (Hz). */
  sckHz: number;
  /** Latency of one bulk OUT transfer: one USB full-speed frame (ms). */
  usbFrameMs: number;
  /** Bus time of one 32-byte bulk transaction, OUT or IN (ms). */
  usbPacketMs: number;
  /** One UIO sub-command (ms). */
  uioCommandMs: number;
}

/** The CH341A model used by the virtual programmer and the benchmark. */
export const CH341A_TIMING: Readonly<Ch341aTimingModel> = Object.freeze({
  sckHz: 1_500_000,
  usbFrameMs: 1,
  usbPacketMs: 0.035,
  uioCommandMs: 0.00075,
});

/** Milliseconds a UART at `baud` (8N1: 10 bits per byte) needs for `bytes` bytes. */
export function wireMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}
