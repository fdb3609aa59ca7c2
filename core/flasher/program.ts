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
import { crc32 } from "../crc.ts";
import { type Accounting, startAccounting } from "./accounting.ts";
import {
  backupBaseName,
  type BackupInfo,
  type BackupStore,
  type ChipIdentity,
  crcHex,
  freshBase,
  reuseBackup,
  saveAfterImage,
  saveBackup,
  storedSource,
} from "./backup.ts";
import { BOOTLOADER_END } from "../chips/profiles.ts";
import { type Fingerprint, sourceSpanCrcs, takeFingerprint } from "./fingerprint.ts";
import { guardResume } from "./resume_guard.ts";
import { differingSpans, sectorSpans, type Span } from "./compare.ts";
import { checkCancelled, type FlasherContext } from "./context.ts";
import { JOURNAL_VERSION, JournalWriter, type WriteJournal } from "./journal.ts";
import { ProgressMeter } from "./progress.ts";
import { type BlockPolicy, planBlocks } from "./erase_plan.ts";
import { alignDown, hex } from "./range.ts";
import { isTransient, reasonOf, withRetries } from "./retry.ts";
import type { FlashContent } from "./source.ts";
import { BLOCK, SECTOR, type UnprotectReport } from "../target.ts";
import { checkOutside, outsideSnapshot, restoreOutside } from "./integrity.ts";
import { verifyFlash, VerifyMismatchError } from "./verify.ts";
import { erasedCrc } from "./erased.ts";
import { DEFAULT_TIMING } from "../timing.ts";

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
   * once {@link guardResume} has checked the chip, the backup and the rest of the chip.
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

export type { BlockPolicy };

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
  const sectorData = (s: number) => content.bytes(s, SECTOR);
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
  const eraseAndProgram = async (s: number, erase: boolean, firstPass = false) => {
    if (erase && !(firstPass && blank(s))) {
      await ctx.target.eraseSector(s);
      report.sectorErases++;
    }
    const data = await sectorData(s);
    if (!data.every((b) => b === 0xff)) {
      await ctx.target.writeSector(s, data);
      report.sectorWrites++;
    }
  };
  // sectors verified and done, and whether an erase or program request of this job went
  // unanswered since the first of them: its reply lost, it may have landed on one of them
  const doneSectors: number[] = [];
  let unansweredSinceDone = false;
  let unansweredAtFirstDone = 0;
  const tolerateTransient = async (s: number, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (!isTransient(e)) throw e;
      if (doneSectors.length) unansweredSinceDone = true;
      ctx.onEvent?.({ type: "note", message: `sector ${hex(s)}: ${reasonOf(e)}; checking it again` });
    }
  };

  try {
    for (const w of work) {
      if (damageStart !== null) damageStart = w.useBlockErase ? w.block : w.sectors[0];
      checkCancelled(ctx);
      damageStart = w.useBlockErase ? w.block : w.sectors[0];
      if (w.useBlockErase) {
        await withRetries(ctx, op, w.block, attempts, () =>
          ctx.target.eraseBlock(w.block).catch((e) => {
            if (doneSectors.length && isTransient(e)) unansweredSinceDone = true;
            throw e;
          }));
        report.blockErases++;
      }
      for (const s of w.sectors) {
        checkCancelled(ctx);
        await tolerateTransient(s, () => eraseAndProgram(s, !w.useBlockErase, true));
      }
      const spans: Span[] = w.sectors.map((s) => ({ addr: s, len: SECTOR }));
      // from its check on, a unit's sectors count as done for a request that went unanswered
      const unansweredAtCheck = ctx.target.unansweredChanges ?? 0;
      const bad = await differingSpans(ctx, addr, content, spans, { window: BLOCK, attempts: 3, op });
      for (const { addr: s } of bad) {
        await reprogram(s);
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
    throw await failure(e, damageStart);
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

  async function reprogram(s: number): Promise<void> {
    let chip: number | null = null;
    for (let attempt = 2; attempt <= attempts; attempt++) {
      checkCancelled(ctx);
      ctx.onEvent?.({
        type: "retry",
        op,
        addr: s,
        attempt,
        of: attempts,
        reason: "sector CRC mismatch after programming",
      });
      report.retries++;
      await tolerateTransient(s, () => eraseAndProgram(s, true));
      chip = await withRetries(ctx, op, s, 3, () => ctx.target.crc(s, SECTOR));
      if (chip === crc32(await sectorData(s))) return;
    }
    const want = crc32(await sectorData(s));
    throw new FlashError(
      "WRITE_FAILED",
      `sector ${hex(s)} still differs after ${attempts} erase + ${
        op === "erase" ? "erase" : "program"
      } attempts` +
        (chip === null ? "" : ` (chip CRC ${hex(chip)}, expected ${hex(want)})`),
      "the flash may be write-protected or worn, or the supply too weak: check the 3.3 V supply, then run the same command again",
    );
  }

  function noteJournal(e: unknown): void {
    ctx.onEvent?.({ type: "note", message: `could not update the write journal: ${reasonOf(e)}` });
  }

  async function failure(e: unknown, from: number): Promise<FlashError> {
    // the cause may name flash it changed itself (a request corrupted on the wire): keep that covered
    const own = e instanceof FlashError ? e.damage : undefined;
    const damage = {
      start: Math.min(from, own?.start ?? from),
      end: Math.min(Math.max(lastChangedEnd, from + SECTOR, own?.end ?? 0), Math.max(ctx.flashSize, end)),
      backup: report.backup ?? undefined,
    };
    // a request of this job whose reply never came may have been carried out elsewhere (corrupted
    // on the wire): the sectors already done are compared once more, and any that differ (all of
    // them, when the comparison itself fails) are named too
    const hit: number[] = [];
    if ((ctx.target.unansweredChanges ?? 0) > unansweredAtFirstDone && doneSectors.length) {
      unansweredSinceDone = true;
    }
    if (unansweredSinceDone && !(e instanceof VerifyMismatchError)) {
      let compared = false;
      if (ctx.target.hasChipCrc) {
        try {
          const spans = doneSectors.map((d) => ({ addr: d, len: SECTOR }));
          const bad = await differingSpans(ctx, addr, content, spans, { op, window: BLOCK, attempts: 3 });
          hit.push(...bad.map((b) => b.addr));
          compared = true;
        } catch {
          // the link is gone too: every sector done may be the one hit
        }
      }
      const from = compared ? hit : doneSectors;
      if (from.length) damage.start = Math.min(damage.start, ...from);
    }
    let out: FlashError;
    if (e instanceof VerifyMismatchError) {
      damage.start = e.first;
      damage.end = end;
      out = new FlashError(
        "VERIFY_FAILED",
        `${op} finished but the final check failed: ${e.message}`,
        "check the 3.3 V supply and wiring, then run the same command again (matching sectors are skipped)",
        { damage, cause: e },
      );
    } else if (e instanceof FlashError && e.code === "WRITE_FAILED") {
      out = e;
      out.damage = damage;
    } else if (e instanceof FlashError && e.code === "CANCELLED") {
      // the user stopped it: still a cancellation (exit 130 on the CLI), with the range it may have left
      out = new FlashError(
        "CANCELLED",
        `${op} interrupted at ${hex(damage.start)}`,
        op === "write"
          ? "run the same command with --resume to finish it (sectors already written are skipped)"
          : "run the same command again to finish the erase (sectors already blank are skipped)",
        { damage, cause: e },
      );
    } else {
      const code = e instanceof FlashError ? ` [${e.code}]` : "";
      out = new FlashError(
        "WRITE_FAILED",
        `${op} failed at ${hex(damage.start)}: ${reasonOf(e)}${code}`,
        "check the 3.3 V supply and wiring, then run the same command again (matching sectors are skipped)",
        { damage, cause: e },
      );
    }
    // a sector marked done that the job then saw differ (its final verify), or that a reply
    // named a change in (a request corrupted on the wire), is no longer done: a resume must not
    // take it for finished work
    const differs = e instanceof VerifyMismatchError
      ? e.differing.map((a) => alignDown(a, SECTOR))
      : own
      ? (journal?.journal.done ?? []).filter((s) => s < own.end && s + SECTOR > own.start)
      : [];
    differs.push(...hit);
    journal?.unmark(differs);
    await journal?.finish("failed", out.message, own).catch((err) => noteJournal(err));
    return out;
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

/** The backup must reproduce the chip CRCs of the fingerprint, or nothing is erased. */
async function backupMatches(store: BackupStore, backup: BackupInfo, fp: Fingerprint): Promise<void> {
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

function checkResumable(journal: WriteJournal, plan: ProgramPlan, crc: number): void {
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

async function startJournal(
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
