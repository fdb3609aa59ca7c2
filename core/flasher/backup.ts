/**
 * The full backup taken before any write or erase: the whole flash read with CRC checks and
 * streamed into an injected {@link BackupStore} under a name carrying chip, flash ID and time,
 * with a JSON sidecar, then read back from the store to check it before anything is erased.
 *
 * The rest of the backup lives beside it, one job a file: the store interface and
 * {@link MemoryStore} (`store.ts`), the sidecar format (`sidecar.ts`), the names
 * (`backup_name.ts`), saving a checked entry (`backup_entry.ts`), reusing an earlier backup the
 * chip still matches (`backup_reuse.ts`), and the images saved after a verified job
 * (`after_image.ts`).
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { readFlashTo } from "./read.ts";
import { readSparseTo, sparseAllowed } from "./sparse_read.ts";
import type { ErasedReport } from "./erased.ts";
import { withRetries } from "./retry.ts";
import { type BackupInfo, type BackupOptions, storeChecked, storeFailure } from "./backup_entry.ts";
import { backupBaseName } from "./backup_name.ts";
import { sidecarOf } from "./sidecar.ts";

/** A backup with its bytes in memory ({@link takeBackup}). */
export interface BackupRecord extends BackupInfo {
  /** The bytes saved (the whole flash). */
  data: Uint8Array;
}

/**
 * Read the whole flash into the store (streamed: memory stays flat), save the sidecar, and
 * check the saved copy by CRC. `tee` also receives every chunk.
 */
export async function saveBackup(
  ctx: FlasherContext,
  opts: BackupOptions,
  tee?: (chunk: Uint8Array, offset: number) => void,
): Promise<BackupInfo> {
  const base = opts.base ?? backupBaseName(opts.identity, opts.createdAt);
  const file = `${base}.bin`;
  let read: Awaited<ReturnType<typeof readFlashTo>> | null = null;
  let erased: ErasedReport | null = null;
  const saved = await storeChecked(
    opts.store,
    base,
    file,
    async (w) => {
      if (sparseAllowed(ctx)) {
        // the erased-region map is taken before anything is read and every read region is
        // checked against it: it replaces the whole-flash CRC below (sparse_read.ts)
        const r = await readSparseTo(
          ctx,
          { addr: 0, size: ctx.flashSize, op: "backup" },
          async (chunk, offset) => {
            tee?.(chunk, offset);
            await w.write(chunk).catch((e) => Promise.reject(storeFailure(`write the backup ${file}`, e)));
          },
        );
        read = r;
        erased = r.erased;
        return { size: r.size, crc32: r.crc32 };
      }
      // a read corrupted on the wire into an erase changes the chip while it is being read, and
      // the backup then holds the damage: one chip CRC of the whole flash first tells
      const before = ctx.target.hasChipCrc
        ? await withRetries(ctx, "backup", 0, 3, () => ctx.target.crc(0, ctx.flashSize))
        : null;
      // every window checked (by chip CRC, or on SPI by a second read): a backup is kept as good
      // only once each of its sectors reproduced
      const whole = { addr: 0, size: ctx.flashSize, op: "backup" as const, check: true };
      try {
        read = await readFlashTo(ctx, whole, async (chunk, offset) => {
          tee?.(chunk, offset);
          await w.write(chunk).catch((e) => Promise.reject(storeFailure(`write the backup ${file}`, e)));
        });
      } catch (e) {
        // a corrupted request noticed while reading (its reply named a change) may not be the only
        // one: another whose reply was lost changed flash unseen, and the whole-flash comparison
        // below, which would have caught it, never comes; so the whole flash is named
        if (e instanceof FlashError && e.damage) {
          e.damage = { ...e.damage, start: 0, end: Math.max(ctx.flashSize, e.damage.end) };
        }
        throw e;
      }
      if (before !== null && read.crc32 !== before) {
        throw new FlashError(
          "BACKUP_FAILED",
          `the flash changed while it was being backed up (CRC ${hex(before)} before, ${
            hex(read.crc32)
          } read): a request was corrupted on the wire`,
          "nothing was erased by this job, but a sector may have been: check the wiring and use a lower --baud, then compare the chip with an older backup",
          { damage: { start: 0, end: ctx.flashSize } },
        );
      }
      return { size: read.size, crc32: read.crc32 };
    },
    (size, crc) =>
      sidecarOf(opts.identity, opts.createdAt, file, size, crc, {
        kind: "backup",
        ...(erased && erased.bytes > 0
          ? {
            erased: {
              method: erased.method,
              checks: erased.confirmations + Object.values(erased.units).reduce((a, b) => a + b, 0),
              bytes: erased.bytes,
              regions: erased.regions.map((g): [number, number] => [g.addr, g.len]),
            },
          }
          : {}),
      }),
  );
  const r = read!;
  ctx.onEvent?.({ type: "backup", location: saved.location, size: saved.size, crc32: saved.crc32 });
  return { ...saved, base, sectorCrcs: r.sectorCrcs, reused: false, accounting: r.accounting };
}

/**
 * Read the whole flash, save it with its sidecar and check the saved copy by CRC; the bytes
 * are also returned (see {@link saveBackup} for the streaming form).
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * import type { ChipIdentity } from "./sidecar.ts";
 * import { MemoryStore } from "./store.ts";
 * declare const ctx: FlasherContext;
 * declare const identity: ChipIdentity;
 * const store = new MemoryStore();
 * const rec = await takeBackup(ctx, { store, identity, createdAt: new Date() });
 * ```
 */
export async function takeBackup(ctx: FlasherContext, opts: BackupOptions): Promise<BackupRecord> {
  const data = new Uint8Array(ctx.flashSize);
  const info = await saveBackup(ctx, opts, (chunk, offset) => data.set(chunk, offset));
  return { ...info, data };
}
