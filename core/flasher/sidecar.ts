/**
 * The JSON sidecar saved next to every backup image: who the backup belongs to, its size and
 * CRC-32, when it was taken, and how (read from the chip, or made after a verified job). Written
 * by `backup.ts` and `after_image.ts`, read back by `backup_reuse.ts` and `after_image.ts`.
 *
 * @module
 */

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
  /** Marks the file as written by this tool. */
  tool: "bekenlab";
  /** Chip profile id. */
  chip: string;
  /** The eFuse key as printed (`510fb093 ...`), or null where it cannot be read. */
  key: string | null;
  /** JEDEC ID as hex, or null when unknown. */
  flashId: string | null;
  /** Flash address of the first byte of the backup. */
  addr: number;
  /** Bytes in the backup. */
  size: number;
  /** Standard CRC-32 of the backup, 8 lowercase hex digits. */
  crc32: string;
  /** ISO 8601 time of the backup. */
  createdAt: string;
  /** Name of the backup image next to this file. */
  file: string;
  /**
   * "backup" (absent in older sidecars): read from the chip before a job. "after-write": the
   * flash content after a verified job, made from the job's backup and what it wrote.
   */
  kind?: "backup" | "after-write";
  /** For "after-write": the backup it was made from. */
  from?: string;
  /**
   * Regions taken as erased and not read (absent when every byte was read): how they were
   * checked, and the regions (`[addr, len]` pairs) filled with 0xFF in the image.
   */
  erased?: { method: string; checks: number; bytes: number; regions: [number, number][] };
}

/** CRC-32 as 8 lowercase hex digits. */
export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, "0");
}

/** The sidecar of a whole-flash image `file` of `size` bytes with CRC-32 `crc`. */
export function sidecarOf(
  identity: ChipIdentity,
  createdAt: Date,
  file: string,
  size: number,
  crc: number,
  extra: Pick<BackupSidecar, "kind" | "from" | "erased"> = {},
): BackupSidecar {
  return {
    tool: "bekenlab",
    chip: identity.chip,
    key: identity.key,
    flashId: identity.flashId,
    addr: 0,
    size,
    crc32: crcHex(crc),
    createdAt: createdAt.toISOString(),
    file,
    ...extra,
  };
}

/** The sidecar in `bytes`, or `null` when they are not one this tool wrote. */
export function parseSidecar(bytes: Uint8Array): BackupSidecar | null {
  try {
    const o = JSON.parse(new TextDecoder().decode(bytes));
    if (o?.tool !== "bekenlab" || typeof o.file !== "string" || typeof o.crc32 !== "string") return null;
    return o as BackupSidecar;
  } catch {
    return null;
  }
}

/** The sidecar was written for the chip `identity` names (same chip mode, flash ID and key). */
export function sameChip(sidecar: BackupSidecar, identity: ChipIdentity): boolean {
  return sidecar.chip === identity.chip && sidecar.flashId === identity.flashId &&
    sidecar.key === identity.key;
}
