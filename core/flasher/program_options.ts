/**
 * What a write or erase job is asked to do and what it reports: the options every job shares
 * (backup, resume, guards, attempts), the plan of one job, and its report.
 *
 * @module
 */

import type { Accounting } from "./accounting.ts";
import type { BackupInfo } from "./backup_entry.ts";
import type { BlockPolicy } from "./erase_plan.ts";
import type { WriteJournal } from "./journal.ts";
import type { ChipIdentity } from "./sidecar.ts";
import type { FlashContent } from "./source.ts";
import type { BackupStore } from "./store.ts";
import type { UnprotectReport } from "../target.ts";

/** Safety and retry settings shared by write and erase. */
export interface ProgramOptions {
  /** Where the backup and journal go; required unless `noBackup`. */
  store?: BackupStore;
  /** Chip identity for backup names and sidecars. */
  identity: ChipIdentity;
  /** Wall time of the job (names the backup and journal). */
  createdAt: Date;
  /** Skip the full backup (the user asked for it). */
  noBackup?: boolean;
  /**
   * Continue an interrupted job: reuse its backup and journal instead of taking a new backup,
   * once `guardResume` (resume_guard.ts) has checked the chip, the backup and the rest of the chip.
   */
  resume?: { journal: WriteJournal; name: string };
  /**
   * On a resume, write the backup's copy back over sectors outside the job that changed since
   * the interruption (saved first) instead of refusing (default false).
   */
  restoreOutside?: boolean;
  /** Allow writing into the bootloader window (also for a resume's write-back). */
  overwriteBootloader?: boolean;
  /** End of the bootloader window (default 0x11000). */
  bootloaderEnd?: number;
  /** Attempts per sector: erase + program + CRC (default 3). */
  attempts?: number;
  /**
   * Reuse a stored backup of this chip that the chip still matches by its whole-flash CRC
   * instead of reading the flash (default true; needs a chip CRC and a listable store).
   */
  reuseBackup?: boolean;
  /**
   * After a verified job, save the flash content next to the backup (streamed from the backup
   * and the image, nothing read from the chip), so the next job can reuse it (default false).
   */
  saveResult?: boolean;
}

/** What to program. */
export interface ProgramPlan {
  op: "write" | "erase";
  /** Sector-aligned start. */
  addr: number;
  /** Expected content of `[addr, addr + content.size)`. */
  content: FlashContent;
  blockPolicy: BlockPolicy;
}

/** What a write or erase did. */
export interface ProgramReport {
  /** The job that ran. */
  op: "write" | "erase";
  /** Start of the range. */
  addr: number;
  /** Bytes of the range (whole sectors). */
  size: number;
  /** Standard CRC-32 of the range's expected content, which the flash now matches. */
  crc32: number;
  /** Sectors that differed and were programmed. */
  changed: number;
  /** Sectors that already matched. */
  unchanged: number;
  /** 64 KiB block erases issued. */
  blockErases: number;
  /** 4 KiB sector erases issued. */
  sectorErases: number;
  /** Sectors programmed. */
  sectorWrites: number;
  /** Sector re-erase + re-program rounds after a failed check. */
  retries: number;
  /** The backup taken for this job, or the one a resumed job reuses. */
  backup: string | null;
  /** Details of the backup this run took or reused. */
  backupRecord: BackupInfo | null;
  /** Location of the job's journal, or null without a store. */
  journal: string | null;
  /** Where the flash content after the job was saved (`saveResult`), or null. */
  afterImage: string | null;
  /** Sectors outside the job written back from the backup (each saved first). */
  restoredOutside: number[];
  /** What clearing the flash protection did, or null when nothing was protected. */
  unprotect: UnprotectReport | null;
  /** What the job cost on the wire. */
  accounting: Accounting;
}

/** Default attempts per sector. */
export const PROGRAM_ATTEMPTS = 3;
