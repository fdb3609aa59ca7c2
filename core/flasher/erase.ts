/**
 * erase-region: blank a sector-aligned range, backup first, with 64 KiB erases for every
 * aligned block the range covers and 4 KiB erases elsewhere; sectors already blank are left
 * alone.
 *
 * @module
 */

import { BOOTLOADER_END } from "../chips/profiles.ts";
import type { FlasherContext } from "./context.ts";
import { type ProgramOptions, programRange, type ProgramReport } from "./program.ts";
import { checkInFlash, checkSectorAligned, guardBootloader } from "./range.ts";
import { blankSource, FlashContent } from "./source.ts";

/** What to erase and which guards apply. */
export interface EraseOptions extends ProgramOptions {
  /** 4 KiB-aligned start. */
  addr: number;
  /** Multiple of 4 KiB. */
  size: number;
  /** Allow erasing inside the bootloader window. */
  overwriteBootloader?: boolean;
  /** End of the bootloader window (default 0x11000). */
  bootloaderEnd?: number;
}

/**
 * Erase `[addr, addr+size)` and verify it reads blank.
 *
 * @example
 * ```ts
 * import type { BackupStore } from "./store.ts";
 * import type { ChipIdentity } from "./sidecar.ts";
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const store: BackupStore;
 * declare const identity: ChipIdentity;
 * await eraseRegion(ctx, { addr: 0x1d0000, size: 0x2000, store, identity, createdAt: new Date() });
 * ```
 */
export async function eraseRegion(ctx: FlasherContext, opts: EraseOptions): Promise<ProgramReport> {
  checkInFlash("erase", opts.addr, opts.size, ctx.flashSize);
  checkSectorAligned("erase", opts.addr, opts.size);
  guardBootloader(
    "erase",
    opts.addr,
    opts.size,
    opts.overwriteBootloader ?? false,
    opts.bootloaderEnd ?? BOOTLOADER_END,
  );
  const content = new FlashContent(opts.addr, blankSource(opts.size));
  return await programRange(ctx, { op: "erase", addr: opts.addr, content, blockPolicy: "covered" }, opts);
}
