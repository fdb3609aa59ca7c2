/**
 * A backup image in a store: what one is ({@link BackupInfo}), what saving one needs
 * ({@link BackupOptions}), and the one way both backups and after-write images are saved
 * ({@link storeChecked}: streamed, with their sidecar, then read back and compared by CRC before
 * anything relies on them).
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { Accounting } from "./accounting.ts";
import { hex } from "./range.ts";
import type { BackupSidecar, ChipIdentity } from "./sidecar.ts";
import { scanSource } from "./source.ts";
import { type BackupStore, openWriter, storedSource, type StoreWriter } from "./store.ts";

/** A backup that was taken, reused or made, and checked. */
export interface BackupInfo {
  /** Location of the image, as the store reported it. */
  location: string;
  /** Location of the JSON sidecar. */
  sidecar: string;
  /** Base name shared by the image and its sidecar. */
  base: string;
  /** Bytes in the backup. */
  size: number;
  /** Standard CRC-32 of the backup. */
  crc32: number;
  /** Standard CRC-32 of every 4 KiB sector of the image, in order. */
  sectorCrcs: Uint32Array;
  /** An earlier backup that the chip still matches was used instead of reading the flash. */
  reused: boolean;
  /** What taking (or checking) it cost on the wire. */
  accounting: Accounting;
}

/** What a backup needs besides the context. */
export interface BackupOptions {
  /** Where to save the image and its sidecar. */
  store: BackupStore;
  /** The chip the backup comes from, for its name and sidecar. */
  identity: ChipIdentity;
  /** Wall time of the backup, supplied by the caller (the core has no calendar). */
  createdAt: Date;
  /** Base name of the files (default `backupBaseName`; see `freshBase`, both in `backup_name.ts`). */
  base?: string;
}

/** The error for a store that failed while `what` was being done. */
export function storeFailure(what: string, e: unknown): FlashError {
  return new FlashError(
    "BACKUP_FAILED",
    `could not ${what}: ${e instanceof Error ? e.message : String(e)}`,
    "check free space and permissions of the backup directory, or pass --no-backup to skip the backup (not recommended)",
    { cause: e },
  );
}

/**
 * Write `file` and its sidecar `base.json` from `fill`, which streams the bytes into the
 * writer and resolves to their CRC; then read the entry back and check it. Returns the
 * locations.
 */
export async function storeChecked(
  store: BackupStore,
  base: string,
  file: string,
  fill: (w: StoreWriter) => Promise<{ size: number; crc32: number }>,
  sidecar: (size: number, crc: number) => BackupSidecar,
): Promise<{ location: string; sidecar: string; size: number; crc32: number }> {
  let writer: StoreWriter;
  try {
    writer = await openWriter(store, file);
  } catch (e) {
    throw storeFailure(`create the backup ${file}`, e);
  }
  let got: { size: number; crc32: number };
  try {
    got = await fill(writer);
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
  let location: string, sidecarLocation: string, back: number;
  try {
    location = await writer.commit();
    sidecarLocation = await store.put(
      `${base}.json`,
      new TextEncoder().encode(JSON.stringify(sidecar(got.size, got.crc32), null, 2) + "\n"),
    );
    back = (await scanSource(storedSource(store, location, got.size))).crc32;
  } catch (e) {
    if (e instanceof FlashError) throw e;
    throw storeFailure(`save the backup ${file}`, e);
  }
  if (back !== got.crc32) {
    throw new FlashError(
      "BACKUP_FAILED",
      `the saved backup ${location} reads back differently (CRC ${hex(back)}, expected ${hex(got.crc32)})`,
      "check the disk holding the backup directory, or pass --no-backup to skip the backup (not recommended)",
    );
  }
  return { location, sidecar: sidecarLocation, ...got };
}
