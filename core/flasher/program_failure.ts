/**
 * What a write or erase job that failed after its first erase tells the user: the error it
 * becomes (WRITE_FAILED, VERIFY_FAILED, or CANCELLED when the user stopped it) with the range
 * of flash that may differ from the expected bytes and where the backup is, and what its journal
 * keeps (sectors the job saw differ, or a corrupted request named, are no longer done).
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { differingSpans } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import type { JournalWriter } from "./journal.ts";
import { alignDown, hex } from "./range.ts";
import { reasonOf } from "./retry.ts";
import type { FlashContent } from "./source.ts";
import { BLOCK, SECTOR } from "../target.ts";
import { VerifyMismatchError } from "./verify.ts";

/** Where the job stood when it failed. */
export interface FailureState {
  op: "write" | "erase";
  /** The job's range. */
  addr: number;
  end: number;
  content: FlashContent;
  /** Start of the unit the job was working on (the range's start once every unit was done). */
  from: number;
  /** End of the last sector the job planned to change. */
  lastChangedEnd: number;
  /** The job's backup, or null. */
  backup: string | null;
  journal: JournalWriter | null;
  /** Sectors checked and marked done, in order. */
  doneSectors: readonly number[];
  /** An erase or program request went unanswered after the first sector was done. */
  unansweredSinceDone: boolean;
  /** The target's count of unanswered flash-changing requests when the first unit was checked. */
  unansweredAtFirstDone: number;
  /** Tell the user the journal could not be updated. */
  noteJournal(e: unknown): void;
}

/**
 * The error a job that failed with `e` after its first erase throws, its damage range covering
 * every byte that may differ; finishes the journal as failed.
 */
export async function jobFailure(ctx: FlasherContext, e: unknown, f: FailureState): Promise<FlashError> {
  const { op, addr, end, content, from, lastChangedEnd, journal, noteJournal } = f;
  // the cause may name flash it changed itself (a request corrupted on the wire): keep that covered
  const own = e instanceof FlashError ? e.damage : undefined;
  const damage = {
    start: Math.min(from, own?.start ?? from),
    end: Math.min(Math.max(lastChangedEnd, from + SECTOR, own?.end ?? 0), Math.max(ctx.flashSize, end)),
    backup: f.backup ?? undefined,
  };
  // a request of this job whose reply never came may have been carried out elsewhere (corrupted
  // on the wire): the sectors already done are compared once more, and any that differ (all of
  // them, when the comparison itself fails or the user's stop cuts it short) are named too, and
  // are no longer done in the journal
  const hit: number[] = [];
  const unansweredSinceDone = f.unansweredSinceDone ||
    ((ctx.target.unansweredChanges ?? 0) > f.unansweredAtFirstDone && f.doneSectors.length > 0);
  if (unansweredSinceDone && !(e instanceof VerifyMismatchError)) {
    let compared = false;
    if (ctx.target.hasChipCrc) {
      try {
        const spans = f.doneSectors.map((d) => ({ addr: d, len: SECTOR }));
        const bad = await differingSpans(ctx, addr, content, spans, { op, window: BLOCK, attempts: 3 });
        hit.push(...bad.map((b) => b.addr));
        compared = true;
      } catch {
        // the link is gone too, or the user stopped the job: every sector done may be the one hit
      }
    }
    if (!compared) hit.push(...f.doneSectors);
    if (hit.length) damage.start = Math.min(damage.start, ...hit);
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
  journal?.recordStop();
  journal?.unmark(differs);
  await journal?.finish("failed", out.message, own).catch((err) => noteJournal(err));
  return out;
}
