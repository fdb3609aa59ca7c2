/**
 * The journal side of a write or erase job: starting (or taking over) its journal before the
 * first erase, checking that a resume names the same job, and checking the fresh backup against
 * the fingerprint the journal will carry.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { BackupInfo } from "./backup_entry.ts";
import type { FlasherContext } from "./context.ts";
import { type Fingerprint, sourceSpanCrcs } from "./fingerprint.ts";
import { JOURNAL_VERSION, JournalWriter, type WriteJournal } from "./journal.ts";
import type { ProgramOptions, ProgramPlan } from "./program_options.ts";
import { hex } from "./range.ts";
import { reasonOf } from "./retry.ts";
import { crcHex } from "./sidecar.ts";
import { type BackupStore, storedSource } from "./store.ts";

/** The backup must reproduce the chip CRCs of the fingerprint, or nothing is erased. */
export async function backupMatches(store: BackupStore, backup: BackupInfo, fp: Fingerprint): Promise<void> {
  const spans = fp.spans.map(([addr, len]) => ({ addr, len }));
  const crcs = await sourceSpanCrcs(storedSource(store, backup.location, backup.size), spans);
  const i = fp.spans.findIndex((w, k) => w[2] !== crcHex(crcs[k]));
  if (i < 0) return;
  const [a, len] = fp.spans[i];
  throw new FlashError(
    "BACKUP_FAILED",
    `the backup ${backup.location} differs from the chip at ${hex(a)}..${hex(a + len - 1)} (chip CRC ${
      fp.spans[i][2]
    }, backup ${crcHex(crcs[i])}): it cannot be trusted`,
    "nothing was erased: check the wiring and use a lower --baud, then run again",
  );
}

/** A resume must name the same job: operation, range and the image's CRC. */
export function checkResumable(journal: WriteJournal, plan: ProgramPlan, crc: number): void {
  if (
    journal.op !== plan.op || journal.addr !== plan.addr || journal.size !== plan.content.size ||
    journal.crc32 !== crcHex(crc)
  ) {
    throw new FlashError(
      "USAGE",
      `the journal describes a different job (${journal.op} of ${hex(journal.size)} bytes at ${
        hex(journal.addr)
      }, CRC ${journal.crc32})`,
      "resume with the same image and --addr as the interrupted job, or start a new job without --resume",
    );
  }
}

/**
 * Start the job's journal (or take over the interrupted job's, on a resume) and save it before
 * the first erase; null without a store.
 */
export async function startJournal(
  ctx: FlasherContext,
  opts: ProgramOptions,
  plan: ProgramPlan,
  crc: number,
  changed: number[],
  backup: BackupInfo | null,
  base: string,
  fingerprint: Fingerprint | null,
): Promise<JournalWriter | null> {
  const store = opts.store;
  if (!store) return null;
  let writer: JournalWriter;
  if (opts.resume) {
    const j = opts.resume.journal;
    j.state = "in-progress";
    delete j.error;
    // where the interrupted run stopped is past: if this run is killed, its first sector not done is
    delete j.stoppedAt;
    writer = new JournalWriter(store, opts.resume.name, j);
  } else {
    const name = `${base}.journal.json`;
    writer = new JournalWriter(store, name, {
      version: JOURNAL_VERSION,
      op: plan.op,
      chip: opts.identity.chip,
      flashId: opts.identity.flashId,
      key: opts.identity.key,
      flashSize: ctx.flashSize,
      fingerprint,
      backupCrc32: backup ? crcHex(backup.crc32) : null,
      addr: plan.addr,
      size: plan.content.size,
      crc32: crcHex(crc),
      backup: backup?.location ?? null,
      planned: changed,
      done: [],
      state: "in-progress",
      createdAt: opts.createdAt.toISOString(),
    });
  }
  try {
    await writer.save();
  } catch (e) {
    throw new FlashError(
      "BACKUP_FAILED",
      `could not save the write journal ${writer.name}: ${reasonOf(e)}`,
      "check free space and permissions of the backup directory",
      { cause: e },
    );
  }
  ctx.onEvent?.({ type: "note", message: `journal: ${writer.location}` });
  return writer;
}
