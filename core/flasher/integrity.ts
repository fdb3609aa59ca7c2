/**
 * The rest of the chip around a job: a request corrupted on the wire can make the chip erase or
 * program a sector outside the job, and when its reply is lost too (or power fails before it
 * answers) nothing the host hears says so. A job therefore takes a chip-side CRC of each side
 * of its range before its first erase and compares after its final verify; a resumed job,
 * which has no such "before", compares the rest of the chip with the interrupted job's backup.
 * Sectors that changed are written back from the backup where there is one; what cannot be
 * written back is reported as damage.
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
  // writing a sector back is a request too, and one corrupted on the wire can land on another
  // sector outside the job: the rest of the chip is compared again after every round
  const restored: number[] = [];
  for (let round = 0; round < check.attempts; round++) {
    const now = await restoreRound(ctx, check);
    if (now.length === 0) return restored;
    restored.push(...now);
  }
  const left = await outsideDiffering(ctx, check);
  if (left.length === 0) return restored;
  const first = left[0].addr;
  const last = left[left.length - 1].addr + SECTOR;
  throw new FlashError(
    "WRITE_FAILED",
    `${left.length} sector(s) outside the job still differ from the backup after ${check.attempts} rounds of writing back (${
      hex(first)
    }..${hex(last - 1)}): requests are being corrupted on the wire`,
    `shorten the wires or lower --baud, then write the backup ${check.backup} back over that range`,
    { damage: { start: first, end: last, backup: check.backup } },
  );
}

/** The sectors outside the job that differ from the backup. */
function outsideDiffering(ctx: FlasherContext, check: OutsideCheck): Promise<Span[]> {
  const size = ctx.flashSize;
  const backup = new FlashContent(0, storedSource(check.store, check.backup, size));
  const spans: Span[] = [...sectorSpans(0, check.addr), ...sectorSpans(check.end, size - check.end)];
  return differingSpans(ctx, 0, backup, spans, { window: WINDOWS, attempts: 3, op: "integrity" });
}

/** One round of {@link restoreOutside}: compare, write back what differs; the sectors written back. */
async function restoreRound(ctx: FlasherContext, check: OutsideCheck): Promise<number[]> {
  const size = ctx.flashSize;
  const backup = new FlashContent(0, storedSource(check.store, check.backup, size));
  const bad = await outsideDiffering(ctx, check);
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

/** CRCs of the flash on each side of a job's range, taken before its first erase. */
export interface OutsideSnapshot {
  spans: Span[];
  crcs: number[];
}

/** The non-empty sides of `[addr, end)` in a flash of `size` bytes. */
function sides(addr: number, end: number, size: number): Span[] {
  return [{ addr: 0, len: addr }, { addr: end, len: size - end }].filter((s) => s.len > 0);
}

/** Take the CRC of each side of `[addr, end)` (chip-side CRC targets only). */
export async function outsideSnapshot(
  ctx: FlasherContext,
  addr: number,
  end: number,
): Promise<OutsideSnapshot> {
  const spans = sides(addr, end, ctx.flashSize);
  const crcs: number[] = [];
  for (const s of spans) {
    crcs.push(await withRetries(ctx, "integrity", s.addr, 3, () => ctx.target.crc(s.addr, s.len)));
  }
  return { spans, crcs };
}

/**
 * Compare the sides of a job's range with their {@link outsideSnapshot}. When one changed,
 * write the changed sectors back from `repair` (the job's backup) if there is one, else throw
 * WRITE_FAILED naming the side that changed. Resolves to the sectors written back.
 */
export async function checkOutside(
  ctx: FlasherContext,
  before: OutsideSnapshot,
  job: { addr: number; end: number; attempts: number },
  repair: { store: BackupStore; backup: string } | null,
): Promise<number[]> {
  const changed: Span[] = [];
  for (const [i, s] of before.spans.entries()) {
    const now = await withRetries(ctx, "integrity", s.addr, 3, () => ctx.target.crc(s.addr, s.len));
    if (now !== before.crcs[i]) changed.push(s);
  }
  if (changed.length === 0) return [];
  if (repair) return await restoreOutside(ctx, { ...repair, ...job });
  const start = changed[0].addr;
  const last = changed[changed.length - 1];
  throw new FlashError(
    "WRITE_FAILED",
    `flash outside the job changed while it ran (${hex(start)}..${
      hex(last.addr + last.len - 1)
    }): a request was corrupted on the wire`,
    "there is no backup to restore it from (--no-backup): shorten the wires or lower --baud, and check the firmware there",
    { damage: { start, end: last.addr + last.len } },
  );
}
