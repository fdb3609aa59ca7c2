/**
 * The engine behind write and erase: make a sector-aligned range of flash equal to expected
 * bytes, changing as little as possible and never losing data. The expected bytes are read
 * from their source sector by sector, so memory stays flat with the image size.
 *
 * 1. Find what differs, coarse to fine:
 *    - when a stored backup of this chip is still what the chip holds (one CheckCRC of the
 *      whole flash), it is the backup and it tells which sectors differ, at no further cost;
 *    - otherwise compare by chip CRC per 64 KiB window and stop if everything matches; then
 *      read a fresh backup (checked) and find the differing sectors from it, or, without a
 *      backup, narrow the differing windows down to sectors by CRC;
 *    - targets without a chip-side CRC (SPI) take the backup first (a compare would read the
 *      range, and the backup reads everything anyway); the backup reads every window twice,
 *      so its copy of each sector, including those about to be erased, reproduced.
 * 2. Start the journal; unprotect; then for each 64 KiB block: one block erase where the
 *    policy allows, 4 KiB erases otherwise; program sectors that are not all 0xFF; check the
 *    block's sectors (one CRC per run, or the read-back) and re-erase + re-program a failing
 *    sector up to the attempt bound.
 * 3. Verify the whole range by chip CRC, coarse to fine (one CRC when it matches). Without a
 *    chip CRC every programmed sector was already read back in step 2 and every other sector
 *    was read equal in step 1, so nothing is read a third time.
 * 4. Optionally save the flash content after the job next to the backup, for the next job.
 *
 * Any failure after the first erase becomes WRITE_FAILED / VERIFY_FAILED carrying the range
 * that may differ from the expected bytes and the backup location.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { startAccounting } from "./accounting.ts";
import type { BackupInfo } from "./backup_entry.ts";
import { saveBackup } from "./backup.ts";
import { backupBaseName, freshBase } from "./backup_name.ts";
import { reuseBackup } from "./backup_reuse.ts";
import { saveAfterImage } from "./after_image.ts";
import { storedSource } from "./store.ts";
import { BOOTLOADER_END } from "../chips/profiles.ts";
import { takeFingerprint } from "./fingerprint.ts";
import { guardResume } from "./resume_guard.ts";
import { differingSpans, sectorSpans, type Span } from "./compare.ts";
import { checkCancelled, type FlasherContext } from "./context.ts";
import { JournalWriter } from "./journal.ts";
import { ProgressMeter } from "./progress.ts";
import { planBlocks } from "./erase_plan.ts";
import { alignDown } from "./range.ts";
import { reasonOf, withRetries } from "./retry.ts";
import { BLOCK, SECTOR } from "../target.ts";
import { checkOutside, outsideSnapshot, restoreOutside } from "./integrity.ts";
import { verifyFlash } from "./verify.ts";
import { erasedCrc } from "./erased.ts";
import { DEFAULT_TIMING } from "../timing.ts";
import {
  PROGRAM_ATTEMPTS,
  type ProgramOptions,
  type ProgramPlan,
  type ProgramReport,
} from "./program_options.ts";
import { backupMatches, checkResumable, startJournal } from "./program_journal.ts";
import { jobFailure } from "./program_failure.ts";
import { SectorProgrammer } from "./program_sectors.ts";

export type { BlockPolicy } from "./erase_plan.ts";
export {
  PROGRAM_ATTEMPTS,
  type ProgramOptions,
  type ProgramPlan,
  type ProgramReport,
} from "./program_options.ts";

/**
 * Run a plan; see the module documentation for the steps. The store is held for the whole job
 * ({@link BackupStore.lock}): a second job on it is refused before it reads or changes any flash.
 */
export async function programRange(
  ctx: FlasherContext,
  plan: ProgramPlan,
  opts: ProgramOptions,
): Promise<ProgramReport> {
  const held = opts.store?.lock ? await opts.store.lock() : null;
  try {
    return await runPlan(ctx, plan, opts);
  } finally {
    held?.release();
  }
}

async function runPlan(
  ctx: FlasherContext,
  plan: ProgramPlan,
  opts: ProgramOptions,
): Promise<ProgramReport> {
  const { addr, content, op } = plan;
  const size = content.size;
  const end = addr + size;
  const attempts = opts.attempts ?? PROGRAM_ATTEMPTS;
  const meter = startAccounting(ctx, op);
  const expectedCrc = await content.crc(addr, size);
  const report: ProgramReport = {
    op,
    addr,
    size,
    crc32: expectedCrc,
    changed: 0,
    unchanged: size / SECTOR,
    blockErases: 0,
    sectorErases: 0,
    sectorWrites: 0,
    retries: 0,
    backup: null,
    backupRecord: null,
    journal: null,
    afterImage: null,
    restoredOutside: [],
    unprotect: null,
    accounting: meter.finish(0),
  };
  if (opts.resume) checkResumable(opts.resume.journal, plan, expectedCrc);
  if (!opts.noBackup && !opts.store && !opts.resume) {
    throw new FlashError(
      "USAGE",
      "no place to keep the backup",
      "give a backup directory, or pass --no-backup",
    );
  }
  if (opts.resume) {
    const guarded = await guardResume(ctx, {
      journal: opts.resume.journal,
      journalName: opts.resume.name,
      identity: opts.identity,
      store: opts.store,
      content,
      restoreOutside: opts.restoreOutside ?? false,
      bootloader: { end: opts.bootloaderEnd ?? BOOTLOADER_END, allowed: opts.overwriteBootloader ?? false },
      attempts,
      createdAt: opts.createdAt,
    });
    report.restoredOutside = guarded.restored;
  }

  const willBackup = !opts.resume && !opts.noBackup && opts.store !== undefined;
  // one base name for this job's backup, journal and after-image
  const base = opts.store && !opts.resume
    ? await freshBase(opts.store, opts.identity, opts.createdAt)
    : backupBaseName(opts.identity, opts.createdAt);
  // what a write-back outside the job overwrites is saved beside the journal, under its name
  const journalBase = opts.resume ? opts.resume.name.replace(/\.journal\.json$/, "") : base;
  const all = sectorSpans(addr, size).map((sp) => sp.addr);
  let expectedCrcs: Uint32Array | null = null;
  const differingFrom = async (b: BackupInfo, candidates: readonly number[]) => {
    expectedCrcs ??= await content.sectorCrcs();
    const want = expectedCrcs;
    return candidates.filter((s) => b.sectorCrcs[s / SECTOR] !== want[(s - addr) / SECTOR]);
  };
  let backup: BackupInfo | null = null;
  const nothingToDo = async () => {
    ctx.onEvent?.({ type: "plan", op, changed: 0, unchanged: size / SECTOR, blocks: 0, sectors: 0 });
    // a resumed job whose range already holds the image is finished: its journal says so
    if (opts.resume && opts.store) {
      await new JournalWriter(opts.store, opts.resume.name, opts.resume.journal).finish("verified")
        .catch((e) => noteJournal(e));
    }
    report.accounting = meter.finish(size, { except: backup?.accounting, wire: op === "write" });
    return report;
  };

  let changed: number[] | null = null;
  if (willBackup && opts.store && opts.reuseBackup !== false) {
    backup = await reuseBackup(ctx, { store: opts.store, identity: opts.identity });
    if (backup) changed = await differingFrom(backup, all);
  }
  let comparing: ProgressMeter | null = null;
  if (!changed) {
    let candidates: number[] = all;
    if (ctx.target.hasChipCrc || !willBackup) {
      // with a backup coming, 64 KiB windows are enough: the backup tells the sectors
      comparing = new ProgressMeter("compare", size, ctx.clock, ctx.onProgress);
      const bad = await differingSpans(
        ctx,
        addr,
        content,
        willBackup ? blockSpans(addr, size) : sectorSpans(addr, size),
        {
          window: BLOCK,
          attempts: 3,
          op: "compare",
          meter: comparing,
        },
      );
      // a resumed job still owes the rest of the chip its check and the journal its end
      if (bad.length === 0 && !opts.resume) return nothingToDo();
      candidates = bad.flatMap((w) => sectorSpans(w.addr, w.len).map((sp) => sp.addr));
      if (!willBackup) changed = candidates;
    }
    if (willBackup && opts.store) {
      backup = await saveBackup(ctx, {
        store: opts.store,
        identity: opts.identity,
        createdAt: opts.createdAt,
        base,
      });
      changed = await differingFrom(backup, candidates);
    }
  }
  if (!changed) changed = all;
  comparing?.finish();
  report.backup = backup?.location ?? opts.resume?.journal.backup ?? null;
  report.backupRecord = backup;
  const work = planBlocks(changed, addr, end, plan.blockPolicy);
  // a 64 KiB erase where the backup shows so many of its sectors blank that erasing the others
  // one by one is cheaper is left to those (writes only: an erase job must blank the block)
  if (op === "write" && backup && !opts.resume && ctx.sparse !== false && !ctx.target.eraseBeforeProgram) {
    const blankSector = erasedCrc(SECTOR);
    for (const w of work) {
      const dirty = w.sectors.filter((s) => backup!.sectorCrcs[s / SECTOR] !== blankSector).length;
      if (w.useBlockErase && dirty * DEFAULT_TIMING.sectorEraseMs < DEFAULT_TIMING.blockEraseMs) {
        w.useBlockErase = false;
      }
    }
  }
  report.changed = changed.length;
  report.unchanged = size / SECTOR - changed.length;
  ctx.onEvent?.({
    type: "plan",
    op,
    changed: changed.length,
    unchanged: report.unchanged,
    blocks: work.filter((w) => w.useBlockErase).length,
    sectors: work.filter((w) => !w.useBlockErase).reduce((n, w) => n + w.sectors.length, 0),
  });
  if (changed.length === 0 && !opts.resume) return nothingToDo();

  report.unprotect = await ctx.target.unprotect();
  if (report.unprotect.wrote) ctx.onEvent?.({ type: "unprotect", report: report.unprotect });

  // the chip as this job found it, bound into the journal before the first erase, so a resume can
  // tell this chip from another and from newer data; the backup must reproduce it
  const fingerprint = opts.store && !opts.resume
    ? await takeFingerprint(
      ctx,
      addr,
      end,
      backup && opts.store ? storedSource(opts.store, backup.location, ctx.flashSize) : null,
    )
    : null;
  if (fingerprint?.source === "chip" && backup && opts.store) {
    await backupMatches(opts.store, backup, fingerprint);
  }
  const journal = await startJournal(ctx, opts, plan, expectedCrc, changed, backup, base, fingerprint);
  report.journal = journal?.location ?? null;
  // the rest of the chip, to notice a corrupted request that hit it; with a backup, the backup says
  const outside = ctx.target.hasChipCrc && !report.backup ? await outsideSnapshot(ctx, addr, end) : null;

  const progress = new ProgressMeter(op, changed.length * SECTOR, ctx.clock, ctx.onProgress);
  const lastChangedEnd = changed.length ? changed[changed.length - 1] + SECTOR : addr;
  let damageStart: number | null = null;

  // a sector the job's backup shows blank needs no erase on the first pass (its content is the
  // backup's: the backup was just read, or the chip matched it by CRC); never on a resumed job,
  // whose sectors may be half programmed, and never on a retry
  const blankSector = erasedCrc(SECTOR);
  const blank = (s: number) =>
    !opts.resume && backup !== null && backup.sectorCrcs[s / SECTOR] === blankSector;
  const sectors = new SectorProgrammer(ctx, { op, content, attempts, blank, counts: report });
  const doneSectors = sectors.doneSectors;
  let unansweredAtFirstDone = 0;

  try {
    for (const w of work) {
      if (damageStart !== null) damageStart = w.useBlockErase ? w.block : w.sectors[0];
      checkCancelled(ctx);
      damageStart = w.useBlockErase ? w.block : w.sectors[0];
      if (w.useBlockErase) {
        await withRetries(ctx, op, w.block, attempts, () =>
          ctx.target.eraseBlock(w.block).catch((e) => {
            sectors.noteUnanswered(e);
            throw e;
          }));
        report.blockErases++;
      }
      for (const s of w.sectors) {
        checkCancelled(ctx);
        await sectors.tolerate(s, () => sectors.eraseAndProgram(s, !w.useBlockErase, true));
      }
      const spans: Span[] = w.sectors.map((s) => ({ addr: s, len: SECTOR }));
      // from its check on, a unit's sectors count as done for a request that went unanswered
      const unansweredAtCheck = ctx.target.unansweredChanges ?? 0;
      const bad = await differingSpans(ctx, addr, content, spans, { window: BLOCK, attempts: 3, op });
      for (const { addr: s } of bad) {
        await sectors.reprogram(s);
      }
      await journal?.markDone(w.sectors).catch((e) => noteJournal(e));
      if (!doneSectors.length) unansweredAtFirstDone = unansweredAtCheck;
      doneSectors.push(...w.sectors);
      progress.advance(w.sectors.length * SECTOR);
    }
    damageStart = addr;
    // the rest of the chip may have been hit by a corrupted request the job never heard back from;
    // checked (and written back) before the final verify, which then also proves that writing
    // back did not touch the job's range (it would, through an alias, with a misdetected size)
    const repair = opts.store && report.backup
      ? {
        store: opts.store,
        backup: report.backup,
        save: {
          name: `${journalBase}.overwritten-${
            backupBaseName(opts.identity, opts.createdAt).split("_").pop()
          }`,
          identity: opts.identity,
          createdAt: opts.createdAt,
        },
      }
      : null;
    if (outside || (ctx.target.hasChipCrc && repair)) {
      const restored = outside
        ? await checkOutside(ctx, outside, { addr, end, attempts }, null)
        : await restoreOutside(ctx, {
          ...repair!,
          addr,
          end,
          attempts,
          bootloader: {
            end: opts.bootloaderEnd ?? BOOTLOADER_END,
            allowed: opts.overwriteBootloader ?? false,
          },
        });
      report.restoredOutside.push(...restored);
    }
    if (ctx.target.hasChipCrc) await verifyFlash(ctx, content, { addr, window: Number.POSITIVE_INFINITY });
  } catch (e) {
    if (damageStart === null) {
      await journal?.finish("failed", reasonOf(e)).catch((err) => noteJournal(err));
      throw e;
    }
    throw await jobFailure(ctx, e, {
      op,
      addr,
      end,
      content,
      from: damageStart,
      lastChangedEnd,
      backup: report.backup,
      journal,
      doneSectors,
      unansweredSinceDone: sectors.unansweredSinceDone,
      unansweredAtFirstDone,
      noteJournal,
    });
  }
  progress.finish();
  await journal?.finish("verified").catch((e) => noteJournal(e));
  if (opts.saveResult && opts.store && report.backup) {
    try {
      const after = await saveAfterImage(ctx, {
        store: opts.store,
        identity: opts.identity,
        createdAt: opts.createdAt,
        base,
        backup: { location: report.backup, size: ctx.flashSize },
        content,
      });
      report.afterImage = after.location;
      ctx.onEvent?.({ type: "note", message: `flash content after the ${op}: ${after.location}` });
    } catch (e) {
      ctx.onEvent?.({
        type: "note",
        message: `could not save the flash content after the ${op}: ${reasonOf(e)}`,
      });
    }
  }
  report.accounting = meter.finish(size, { except: backup?.accounting, wire: op === "write" });
  return report;

  function noteJournal(e: unknown): void {
    ctx.onEvent?.({ type: "note", message: `could not update the write journal: ${reasonOf(e)}` });
  }
}

/** The range split into spans that each stay inside one 64 KiB block. */
function blockSpans(addr: number, size: number): Span[] {
  const spans: Span[] = [];
  for (let a = addr; a < addr + size;) {
    const next = Math.min(addr + size, alignDown(a, BLOCK) + BLOCK);
    spans.push({ addr: a, len: next - a });
    a = next;
  }
  return spans;
}
