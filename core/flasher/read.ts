/**
 * Reading flash: 4 KiB reads, each window checked against the target's CRC, mismatching
 * sectors re-read a bounded number of times.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../uart/crc.ts";
import { type Accounting, startAccounting } from "./accounting.ts";
import { differingSpans, sectorSpans } from "./compare.ts";
import { checkCancelled, type FlasherContext } from "./context.ts";
import { ProgressMeter } from "./progress.ts";
import { alignDown, alignUp, checkInFlash, hex } from "./range.ts";
import { withRetries } from "./retry.ts";
import { SECTOR } from "./target.ts";

/** What to read and how carefully. */
export interface ReadOptions {
  addr: number;
  size: number;
  /** Attempts per sector, for transient errors and CRC mismatches alike (default 5). */
  attempts?: number;
  /** Bytes covered by one CRC check (default 32 KiB). */
  window?: number;
  /** Check every window against the target's CRC (default true). */
  check?: boolean;
  /** Name the progress events carry (default "read"). */
  op?: "read" | "backup";
}

/** The bytes read and what it cost. */
export interface ReadResult {
  data: Uint8Array;
  /** Standard CRC-32 of `data`. */
  crc32: number;
  /** Sectors read more than once because their CRC did not match. */
  rereads: number;
  accounting: Accounting;
}

/** Default attempts per sector. */
export const READ_ATTEMPTS = 5;
/** Default CRC window of reads. */
export const READ_WINDOW = 0x8000;

/**
 * Read `size` bytes at `addr` (any alignment; whole sectors are read underneath).
 *
 * @example
 * ```ts
 * const { data, crc32 } = await readFlash(ctx, { addr: 0, size: ctx.flashSize });
 * ```
 */
export async function readFlash(ctx: FlasherContext, opts: ReadOptions): Promise<ReadResult> {
  const { addr, size } = opts;
  const attempts = opts.attempts ?? READ_ATTEMPTS;
  const window = opts.window ?? READ_WINDOW;
  const op = opts.op ?? "read";
  checkInFlash(op, addr, size, ctx.flashSize);
  const meter = startAccounting(ctx, op);
  const progress = new ProgressMeter(op, size, ctx.clock, ctx.onProgress);
  const lo = alignDown(addr, SECTOR);
  const hi = alignUp(addr + size, SECTOR);
  const buf = new Uint8Array(hi - lo);
  const readOne = async (s: number) => {
    const data = await withRetries(ctx, op, s, attempts, () => ctx.target.readSector(s));
    if (data.length !== SECTOR) {
      throw new FlashError(
        "BAD_REPLY",
        `read of sector ${hex(s)} returned ${data.length} bytes instead of ${SECTOR}`,
        "retry at a lower --baud; if it persists, report the port type and chip",
      );
    }
    buf.set(data, s - lo);
  };
  let rereads = 0;
  for (let w = lo; w < hi;) {
    const wEnd = Math.min(hi, alignDown(w, window) + window);
    for (let s = w; s < wEnd; s += SECTOR) {
      checkCancelled(ctx);
      await readOne(s);
      progress.advance(Math.min(s + SECTOR, addr + size) - Math.max(s, addr));
    }
    if (opts.check ?? true) {
      const bad = await differingSpans(ctx, lo, buf, sectorSpans(w, wEnd - w), { window, attempts, op });
      for (const { addr: s } of bad) {
        rereads++;
        await rereadUntilMatch(
          ctx,
          op,
          s,
          attempts,
          readOne,
          () => crc32(buf.subarray(s - lo, s - lo + SECTOR)),
        );
      }
    }
    w = wEnd;
  }
  progress.finish();
  const data = buf.slice(addr - lo, addr - lo + size);
  return { data, crc32: crc32(data), rereads, accounting: meter.finish(size) };
}

async function rereadUntilMatch(
  ctx: FlasherContext,
  op: string,
  s: number,
  attempts: number,
  readOne: (s: number) => Promise<void>,
  localCrc: () => number,
): Promise<void> {
  let chip: number | null = null;
  for (let attempt = 2; attempt <= attempts; attempt++) {
    ctx.onEvent?.({ type: "retry", op, addr: s, attempt, of: attempts, reason: "sector CRC mismatch" });
    await readOne(s);
    chip = await withRetries(ctx, op, s, attempts, () => ctx.target.crc(s, SECTOR));
    if (chip === localCrc()) return;
  }
  throw new FlashError(
    "CRC_MISMATCH",
    `sector ${hex(s)} read back with a wrong CRC ${attempts} times${
      chip === null ? "" : ` (chip ${hex(chip)}, data ${hex(localCrc())})`
    }`,
    "lower --baud (e.g. 115200), shorten the wires and check the 3.3 V supply, then read again",
  );
}
