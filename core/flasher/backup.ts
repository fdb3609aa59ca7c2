/**
 * The full backup taken before any write or erase: the whole flash read with CRC checks,
 * saved through an injected {@link BackupStore} under a name carrying chip, flash ID and
 * time, with a JSON sidecar, and read back to check it before anything is erased.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../uart/crc.ts";
import type { Accounting } from "./accounting.ts";
import type { FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { readFlash } from "./read.ts";

/**
 * Where backups and journals are kept. The CLI implements it on files; the core only names
 * things and never touches a file system itself.
 */
export interface BackupStore {
  /** Store `data` under `name` (replacing an earlier entry); resolves to its location (a path). */
  put(name: string, data: Uint8Array): Promise<string>;
  /** The bytes stored at `location`. */
  get(location: string): Promise<Uint8Array>;
}

/** A {@link BackupStore} in memory, for tests and hosts without a file system. */
export class MemoryStore implements BackupStore {
  /** Entries by name. */
  readonly entries: Map<string, Uint8Array> = new Map();
  put(name: string, data: Uint8Array): Promise<string> {
    this.entries.set(name, data.slice());
    return Promise.resolve(name);
  }
  get(location: string): Promise<Uint8Array> {
    const data = this.entries.get(location);
    return data ? Promise.resolve(data.slice()) : Promise.reject(new Error(`no entry ${location}`));
  }
}

/** Who the backup belongs to; goes into names and sidecars. */
export interface ChipIdentity {
  /** Display name of the chip mode ("BK7231N", or "SPI" for a raw SPI flash). */
  chip: string;
  /** JEDEC ID in wire order as lowercase hex ("eb6015"), when known. */
  flashId: string | null;
  /** Efuse key as four hex words, when read. */
  key: string | null;
}

/** The JSON saved next to a backup. */
export interface BackupSidecar {
  tool: "bekenlab";
  chip: string;
  key: string | null;
  flashId: string | null;
  addr: number;
  size: number;
  /** Standard CRC-32 of the backup, 8 lowercase hex digits. */
  crc32: string;
  /** ISO 8601 time of the backup. */
  createdAt: string;
  /** Name of the backup image next to this file. */
  file: string;
}

/** A backup that was taken and checked. */
export interface BackupRecord {
  /** Location of the image, as the store reported it. */
  location: string;
  /** Location of the JSON sidecar. */
  sidecar: string;
  /** Base name shared by the image, sidecar and journal. */
  base: string;
  size: number;
  crc32: number;
  /** The bytes saved (the whole flash). */
  data: Uint8Array;
  accounting: Accounting;
}

/** What {@link takeBackup} needs besides the context. */
export interface BackupOptions {
  store: BackupStore;
  identity: ChipIdentity;
  /** Wall time of the backup, supplied by the caller (the core has no calendar). */
  createdAt: Date;
}

/** CRC-32 as 8 lowercase hex digits. */
export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, "0");
}

/**
 * The shared base name, e.g. `BK7231N_eb6015_20261122T013012Z`.
 *
 * @example
 * ```ts
 * backupBaseName({ chip: "BK7231N", flashId: "eb6015", key: null }, new Date("2026-11-22T01:30:12Z"));
 * // "BK7231N_eb6015_20261122T013012Z"
 * ```
 */
export function backupBaseName(identity: ChipIdentity, createdAt: Date): string {
  const stamp = createdAt.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
  const safe = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, "-");
  return `${safe(identity.chip)}_${safe(identity.flashId ?? "noid")}_${stamp}`;
}

function storeFailure(what: string, e: unknown): FlashError {
  return new FlashError(
    "BACKUP_FAILED",
    `could not ${what}: ${e instanceof Error ? e.message : String(e)}`,
    "check free space and permissions of the backup directory, or pass --no-backup to skip the backup (not recommended)",
    { cause: e },
  );
}

/**
 * Read the whole flash, save it with its sidecar and check the saved copy by CRC.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * const rec = await takeBackup(ctx, { store, identity, createdAt: new Date() });
 * ```
 */
export async function takeBackup(ctx: FlasherContext, opts: BackupOptions): Promise<BackupRecord> {
  const { data, crc32: crc, accounting } = await readFlash(ctx, {
    addr: 0,
    size: ctx.flashSize,
    op: "backup",
  });
  const base = backupBaseName(opts.identity, opts.createdAt);
  const file = `${base}.bin`;
  const sidecar: BackupSidecar = {
    tool: "bekenlab",
    chip: opts.identity.chip,
    key: opts.identity.key,
    flashId: opts.identity.flashId,
    addr: 0,
    size: data.length,
    crc32: crcHex(crc),
    createdAt: opts.createdAt.toISOString(),
    file,
  };
  let location: string, sidecarLocation: string, back: Uint8Array;
  try {
    location = await opts.store.put(file, data);
    sidecarLocation = await opts.store.put(
      `${base}.json`,
      new TextEncoder().encode(JSON.stringify(sidecar, null, 2) + "\n"),
    );
    back = await opts.store.get(location);
  } catch (e) {
    if (e instanceof FlashError) throw e;
    throw storeFailure(`save the backup ${file}`, e);
  }
  if (back.length !== data.length || crc32(back) !== crc) {
    throw new FlashError(
      "BACKUP_FAILED",
      `the saved backup ${location} reads back differently (CRC ${hex(crc32(back))}, expected ${hex(crc)})`,
      "check the disk holding the backup directory, or pass --no-backup to skip the backup (not recommended)",
    );
  }
  ctx.onEvent?.({ type: "backup", location, size: data.length, crc32: crc });
  return { location, sidecar: sidecarLocation, base, size: data.length, crc32: crc, data, accounting };
}
