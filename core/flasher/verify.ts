/**
 * Verifying flash against an image by CRC, coarse to fine: one CRC over the whole image, then
 * one per 64 KiB window and per sector only where it differs, so a failure names the first
 * differing sector. Without a chip CRC (SPI) every sector is read once and compared locally.
 * The image is read from its source piece by piece.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { type Accounting, startAccounting } from "./accounting.ts";
import { differingSpans, sectorSpans } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import { ProgressMeter } from "./progress.ts";
import { checkInFlash, hex } from "./range.ts";
import { type ByteSource, FlashContent, toSource } from "./source.ts";
import { BLOCK } from "../target.ts";

/** The flash does not hold the image; carries the first differing address. */
export class VerifyMismatchError extends FlashError {
  /** First address (sector start, or the range start) that differs. */
  readonly first: number;
  /** Number of differing sectors. */
  readonly sectors: number;
  /** Start of each differing span (a sector, or the range start when not told apart). */
  readonly differing: readonly number[];
  /**
   * `sectors` sectors of `[addr, addr + size)` differ, the first at `first`; `differing` lists
   * where each starts, when known.
   */
  constructor(
    addr: number,
    size: number,
    first: number,
    sectors: number,
    differing: readonly number[] = [first],
  ) {
    super(
      "VERIFY_FAILED",
      `flash differs from the image in ${sectors} sector(s) of ${hex(addr)}..${
        hex(addr + size - 1)
      }, first at ${hex(first)}`,
      "check --addr and --chip; write the image again with write-flash (only differing sectors are rewritten)",
    );
    this.first = first;
    this.sectors = sectors;
    this.differing = differing;
  }
}

/** Where and how to verify. */
export interface VerifyOptions {
  /** Flash address the expected bytes start at. */
  addr: number;
  /**
   * Window of the coarse CRC, or several levels largest first (default: the whole image, then
   * 64 KiB windows, then sectors).
   */
  window?: number | readonly number[];
  /** Attempts per CRC call (default 3). */
  attempts?: number;
}

/** A successful verification. */
export interface VerifyResult {
  /** Start of the range checked. */
  addr: number;
  /** Bytes checked. */
  size: number;
  /** Standard CRC-32 of the image, which the flash matched. */
  crc32: number;
  /** What the check cost on the wire. */
  accounting: Accounting;
}

/** Default levels of a verification: the whole image, then 64 KiB windows. */
export const VERIFY_WINDOW: readonly number[] = [Number.POSITIVE_INFINITY, BLOCK];

/**
 * Check that the flash at `opts.addr` holds `image`; throws VERIFY_FAILED naming the first
 * differing sector otherwise.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const image: Uint8Array;
 * await verifyFlash(ctx, image, { addr: 0x11000 });
 * ```
 */
export async function verifyFlash(
  ctx: FlasherContext,
  image: Uint8Array | ByteSource | FlashContent,
  opts: VerifyOptions,
): Promise<VerifyResult> {
  const { addr } = opts;
  const content = image instanceof FlashContent ? image : new FlashContent(addr, toSource(image));
  const size = content.length;
  if (size === 0) {
    throw new FlashError("BAD_IMAGE", "the image is empty", "pass the firmware file you meant to verify");
  }
  checkInFlash("verify", addr, size, ctx.flashSize);
  const meter = startAccounting(ctx, "verify");
  const progress = new ProgressMeter("verify", size, ctx.clock, ctx.onProgress);
  const bad = await differingSpans(ctx, addr, content, sectorSpans(addr, size), {
    window: opts.window ?? VERIFY_WINDOW,
    attempts: opts.attempts ?? 3,
    op: "verify",
    meter: progress,
  });
  if (bad.length) {
    throw new VerifyMismatchError(addr, size, bad[0].addr, bad.length, bad.map((b) => b.addr));
  }
  progress.finish();
  return {
    addr,
    size,
    crc32: await content.crc(addr, size),
    accounting: meter.finish(size, { wire: false }),
  };
}
