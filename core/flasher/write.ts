/**
 * write-flash: put an image at an address, backup first, skipping what already matches.
 *
 * @module
 */

import { BOOTLOADER_END } from "../chips/profiles.ts";
import { FlashError } from "../errors.ts";
import type { FlasherContext } from "./context.ts";
import { type ProgramOptions, programRange, type ProgramReport } from "./program.ts";
import { alignUp, checkInFlash, checkSectorAligned, guardBootloader, humanSize } from "./range.ts";
import { type ByteSource, FlashContent, toSource } from "./source.ts";
import { SECTOR } from "../target.ts";

/** Where to write and which guards apply. */
export interface WriteOptions extends ProgramOptions {
  /** Sector-aligned flash address of the image's first byte. */
  addr: number;
  /** Allow writing into the bootloader window. */
  overwriteBootloader?: boolean;
  /** End of the bootloader window (default 0x11000). */
  bootloaderEnd?: number;
}

/** The image padded with 0xFF to a whole number of sectors. */
export function padToSectors(image: Uint8Array): Uint8Array {
  if (image.length % SECTOR === 0) return image;
  const out = new Uint8Array(alignUp(image.length, SECTOR)).fill(0xff);
  out.set(image);
  return out;
}

/**
 * Write `image` (bytes, or a source read piece by piece) at `opts.addr` and verify it; see
 * {@link programRange} for the steps.
 *
 * @example
 * ```ts
 * import type { BackupStore } from "./store.ts";
 * import type { ChipIdentity } from "./sidecar.ts";
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const app: Uint8Array;
 * declare const store: BackupStore;
 * declare const identity: ChipIdentity;
 * const report = await writeFlash(ctx, app, {
 *   addr: 0x11000, store, identity, createdAt: new Date(),
 * });
 * ```
 */
export async function writeFlash(
  ctx: FlasherContext,
  image: Uint8Array | ByteSource,
  opts: WriteOptions,
): Promise<ProgramReport> {
  const source = toSource(image);
  if (source.size === 0) {
    throw new FlashError(
      "BAD_IMAGE",
      "the image is empty (0 bytes)",
      "pass the firmware file you meant to write",
    );
  }
  if (source.size > ctx.flashSize) {
    throw new FlashError(
      "BAD_RANGE",
      `the image is ${source.size} bytes, larger than the ${humanSize(ctx.flashSize)} flash`,
      "check that this is the right file for this chip, or --chip / the detected flash size",
    );
  }
  const content = new FlashContent(opts.addr, source);
  checkSectorAligned("write", opts.addr, content.size);
  checkInFlash("write", opts.addr, content.size, ctx.flashSize);
  guardBootloader(
    "write",
    opts.addr,
    content.size,
    opts.overwriteBootloader ?? false,
    opts.bootloaderEnd ?? BOOTLOADER_END,
  );
  return await programRange(ctx, { op: "write", addr: opts.addr, content, blockPolicy: "all-differ" }, opts);
}
