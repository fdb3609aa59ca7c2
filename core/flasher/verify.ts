/**
 * Verifying flash against an image by CRC: one CRC per window, then per-sector CRCs inside a
 * window that differs, so a failure names the first differing sector.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../uart/crc.ts";
import { type Accounting, startAccounting } from "./accounting.ts";
import { differingSpans, sectorSpans } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import { ProgressMeter } from "./progress.ts";
import { checkInFlash, hex } from "./range.ts";

/** The flash does not hold the image; carries the first differing address. */
export class VerifyMismatchError extends FlashError {
  /** First address (sector start, or the range start) that differs. */
  readonly first: number;
  /** Number of differing sectors. */
  readonly sectors: number;
  constructor(addr: number, size: number, first: number, sectors: number) {
    super(
      "VERIFY_FAILED",
      `flash differs from the image in ${sectors} sector(s) of ${hex(addr)}..${
        hex(addr + size - 1)
      }, first at ${hex(first)}`,
      "check --addr and --chip; write the image again with write-flash (only differing sectors are rewritten)",
    );
    this.first = first;
    this.sectors = sectors;
  }
}

/** Where and how to verify. */
export interface VerifyOptions {
  addr: number;
  /** Bytes covered by one coarse CRC (default 256 KiB). */
  window?: number;
  /** Attempts per CRC call (default 3). */
  attempts?: number;
}

/** A successful verification. */
export interface VerifyResult {
  addr: number;
  size: number;
  /** Standard CRC-32 of the image, which the flash matched. */
  crc32: number;
  accounting: Accounting;
}

/** Default coarse window of a verification. */
export const VERIFY_WINDOW = 0x40000;

/**
 * Check that the flash at `opts.addr` holds `image`; throws VERIFY_FAILED naming the first
 * differing sector otherwise.
 *
 * @example
 * ```ts
 * await verifyFlash(ctx, image, { addr: 0x11000 });
 * ```
 */
export async function verifyFlash(
  ctx: FlasherContext,
  image: Uint8Array,
  opts: VerifyOptions,
): Promise<VerifyResult> {
  const { addr } = opts;
  if (image.length === 0) {
    throw new FlashError("BAD_IMAGE", "the image is empty", "pass the firmware file you meant to verify");
  }
  checkInFlash("verify", addr, image.length, ctx.flashSize);
  const meter = startAccounting(ctx, "verify");
  const progress = new ProgressMeter("verify", image.length, ctx.clock, ctx.onProgress);
  const bad = await differingSpans(ctx, addr, image, sectorSpans(addr, image.length), {
    window: opts.window ?? VERIFY_WINDOW,
    attempts: opts.attempts ?? 3,
    op: "verify",
    meter: progress,
  });
  if (bad.length) throw new VerifyMismatchError(addr, image.length, bad[0].addr, bad.length);
  return {
    addr,
    size: image.length,
    crc32: crc32(image),
    accounting: meter.finish(image.length, { wire: false }),
  };
}
