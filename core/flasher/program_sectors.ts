/**
 * Programming one sector of a write or erase job: erase it (unless the job's backup shows it
 * blank on the first pass), program what is not 0xFF, and re-erase + re-program a sector whose
 * check failed up to the attempt bound. It also keeps what a failure needs to name its damage:
 * the sectors done so far, and whether a flash-changing request went unanswered since.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../crc.ts";
import { checkCancelled, type FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { isTransient, reasonOf, withRetries } from "./retry.ts";
import type { FlashContent } from "./source.ts";
import { SECTOR } from "../target.ts";

/** The job's counters a {@link SectorProgrammer} adds to. */
export interface SectorCounts {
  sectorErases: number;
  sectorWrites: number;
  retries: number;
}

/** What a {@link SectorProgrammer} works with. */
export interface SectorProgrammerOptions {
  op: "write" | "erase";
  content: FlashContent;
  /** Attempts per sector: erase + program + CRC. */
  attempts: number;
  /** Sectors that need no erase on the first pass (the backup just showed them blank). */
  blank(sector: number): boolean;
  counts: SectorCounts;
}

/** Erases, programs and re-programs sectors of one job; see the module documentation. */
export class SectorProgrammer {
  /** Sectors checked and marked done, in order. */
  readonly doneSectors: number[] = [];
  /**
   * An erase or program request of this job went unanswered after the first sector was done:
   * its reply lost, it may have landed on one of them.
   */
  unansweredSinceDone = false;
  readonly #ctx: FlasherContext;
  readonly #o: SectorProgrammerOptions;

  /** A programmer for one job on `ctx`. */
  constructor(ctx: FlasherContext, options: SectorProgrammerOptions) {
    this.#ctx = ctx;
    this.#o = options;
  }

  /** Erase `s` (when `erase`, and not a blank sector on the first pass), then program its data. */
  async eraseAndProgram(s: number, erase: boolean, firstPass = false): Promise<void> {
    const { ctx, o } = { ctx: this.#ctx, o: this.#o };
    if (erase && !(firstPass && o.blank(s))) {
      await ctx.target.eraseSector(s);
      o.counts.sectorErases++;
    }
    const data = await o.content.bytes(s, SECTOR);
    if (!data.every((b) => b === 0xff)) {
      await ctx.target.writeSector(s, data);
      o.counts.sectorWrites++;
    }
  }

  /**
   * Run `fn` for sector `s`; a transient failure (a lost reply) is noted and left to the
   * sector's check, anything else is thrown.
   */
  async tolerate(s: number, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!isTransient(e)) throw e;
      this.noteUnanswered(e);
      this.#ctx.onEvent?.({ type: "note", message: `sector ${hex(s)}: ${reasonOf(e)}; checking it again` });
    }
  }

  /** Count a transient failure of a flash-changing request once a sector is done. */
  noteUnanswered(e: unknown): void {
    if (this.doneSectors.length && isTransient(e)) this.unansweredSinceDone = true;
  }

  /** Re-erase and re-program `s` until its chip CRC matches, up to the attempt bound. */
  async reprogram(s: number): Promise<void> {
    const ctx = this.#ctx;
    const { op, attempts, counts } = this.#o;
    const sectorData = (a: number) => this.#o.content.bytes(a, SECTOR);
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
      counts.retries++;
      await this.tolerate(s, () => this.eraseAndProgram(s, true));
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
}
