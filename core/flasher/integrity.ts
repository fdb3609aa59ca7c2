/**
 * The rest of the chip after an interrupted job: a request corrupted on the wire can make the
 * chip erase or program a sector outside the job, and if power fails before it answers, no
 * reply ever says so. A resumed job therefore checks the flash outside its range against the
 * backup of the interrupted job (a few chip-side CRCs) and writes back any sector that no
 * longer matches; what cannot be written back is reported as damage.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../uart/crc.ts";
import { type BackupStore, storedSource } from "./backup.ts";
import { differingSpans, sectorSpans, type Span } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { isTransient, reasonOf, withRetries } from "./retry.ts";
import { FlashContent } from "./source.ts";
import { SECTOR } from "./target.ts";

/** Where the backup is and which range the job owns. */
export interface OutsideCheck {
  store: BackupStore;
  /** Location of the job's backup (the whole flash). */
  backup: string;
  /** The job's range `[addr, end)`; everything else must equal the backup. */
  addr: number;
  end: number;
  /** Attempts per sector when writing one back. */
  attempts: number;
}

/** Coarse-to-fine CRC windows: each side of the job in one CRC, then 256 KiB, then 64 KiB. */
const WINDOWS = [Number.POSITIVE_INFINITY, 0x40000, 0x10000];

/**
 * Compare the flash outside `[addr, end)` with the backup and write back the sectors that
 * differ. Resolves to the sectors written back; throws WRITE_FAILED naming the range when a
 * sector cannot be restored.
 *
 * @example
 * ```ts
 * const restored = await restoreOutside(ctx, { store, backup, addr: 0x11000, end: 0x40000, attempts: 3 });
 * ```
 */
export async function restoreOutside(ctx: FlasherContext, check: OutsideCheck): Promise<number[]> {
  const size = ctx.flashSize;
  const backup = new FlashContent(0, storedSource(check.store, check.backup, size));
  const spans: Span[] = [...sectorSpans(0, check.addr), ...sectorSpans(check.end, size - check.end)];
  const bad = await differingSpans(ctx, 0, backup, spans, { window: WINDOWS, attempts: 3, op: "integrity" });
  if (bad.length === 0) return [];
  ctx.onEvent?.({
    type: "note",
    message: `${bad.length} sector(s) outside the job no longer match the backup (first at ${
      hex(bad[0].addr)
    }): writing them back`,
  });
  const failed: number[] = [];
  for (const { addr: s } of bad) {
    const data = await backup.bytes(s, SECTOR);
    let ok = false;
    for (let attempt = 1; attempt <= check.attempts && !ok; attempt++) {
      try {
        await ctx.target.eraseSector(s);
        if (!data.every((b) => b === 0xff)) await ctx.target.writeSector(s, data);
        ok = (await withRetries(ctx, "integrity", s, 3, () => ctx.target.crc(s, SECTOR))) === crc32(data);
      } catch (e) {
        if (!isTransient(e)) {
          ctx.onEvent?.({ type: "note", message: `sector ${hex(s)} cannot be written back: ${reasonOf(e)}` });
          break;
        }
      }
    }
    if (!ok) failed.push(s);
  }
  if (failed.length > 0) {
    const first = failed[0];
    const last = failed[failed.length - 1] + SECTOR;
    throw new FlashError(
      "WRITE_FAILED",
      `${failed.length} sector(s) outside the job differ from the backup and could not be written back (${
        hex(first)
      }..${hex(last - 1)})`,
      `write the backup ${check.backup} back over that range (over SPI for the bootloader window)`,
      { damage: { start: first, end: last, backup: check.backup } },
    );
  }
  return bad.map((b) => b.addr);
}
