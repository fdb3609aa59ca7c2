/**
 * The write journal: a small JSON document kept next to the backup that records which
 * sectors a write or erase planned to change and which are already programmed and verified.
 * After a power loss or a killed process it tells a resumed run which backup belongs to the
 * job and what is left to do.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { BackupStore } from "./store.ts";
import type { Fingerprint } from "./fingerprint.ts";
import { alignDown } from "./range.ts";
import { BLOCK } from "../target.ts";

/**
 * Journal format version. 2 binds the journal to its device (key, flash size, fingerprint) and
 * to its backup (CRC); version-1 journals are still read, so a resume can refuse them by name.
 */
export const JOURNAL_VERSION = 2;

/** The journal document. Addresses are absolute flash addresses of 4 KiB sectors. */
export interface WriteJournal {
  /** Format version ({@link JOURNAL_VERSION}; version 1 journals are read, never resumed). */
  version: 1 | typeof JOURNAL_VERSION;
  /** The job the journal records. */
  op: "write" | "erase";
  /** Chip profile id. */
  chip: string;
  /** JEDEC ID as hex, or null when unknown. */
  flashId: string | null;
  /** Efuse key of the chip as four hex words, when read (version 2). */
  key?: string | null;
  /** Flash size in bytes (version 2). */
  flashSize?: number;
  /** The chip before the first erase (version 2); null when it could not be taken. */
  fingerprint?: Fingerprint | null;
  /** Standard CRC-32 of the backup, 8 hex digits (version 2, with a backup). */
  backupCrc32?: string | null;
  /** Start of the range being programmed. */
  addr: number;
  /** Length of the range (the image padded to whole sectors). */
  size: number;
  /** Standard CRC-32 of the expected content of the range, 8 hex digits. */
  crc32: string;
  /** Location of the full backup taken before the first erase, or null with --no-backup. */
  backup: string | null;
  /** Sectors that differed from the expected content when the job started. */
  planned: number[];
  /** Planned sectors already programmed and verified. */
  done: number[];
  /** Where the job stands. */
  state: "in-progress" | "verified" | "failed";
  /** ISO 8601 time the job started. */
  createdAt: string;
  /** Cause of the failure, when `state` is "failed". */
  error?: string;
  /**
   * Flash the failure's cause named as changed by a request corrupted on the wire (the chip's
   * reply echoed an address nobody asked for), when it named some.
   */
  corrupted?: { start: number; end: number };
  /**
   * Set by a failing job: the first sector it had not finished when it stopped (null: it had
   * finished every one), recorded before its failure took sectors out of {@link done}. A resumed
   * job drops it. See {@link blockInFlux}.
   */
  stoppedAt?: number | null;
}

/**
 * The 64 KiB block an interrupted job may have left in any state (erased, half programmed), or
 * null: the block of the first sector it had not finished. That is the one its failure recorded
 * ({@link WriteJournal.stoppedAt}), which stays exact when the failure took finished sectors out
 * of the done list; otherwise (a killed process leaves no failure) the first planned sector not
 * done, since a job finishes its sectors in order.
 */
export function blockInFlux(journal: WriteJournal): number | null {
  const first = journal.stoppedAt !== undefined ? journal.stoppedAt : firstNotDone(journal);
  return first === null ? null : alignDown(first, BLOCK);
}

/** The lowest planned sector not done, or null. */
function firstNotDone(journal: WriteJournal): number | null {
  const left = remainingSectors(journal);
  return left.length ? Math.min(...left) : null;
}

/** Sectors of a journal still to program. */
export function remainingSectors(journal: WriteJournal): number[] {
  const done = new Set(journal.done);
  return journal.planned.filter((s) => !done.has(s));
}

/** Parse and check a journal read back from a store. */
export function parseJournal(text: string): WriteJournal {
  const bad = (why: string) =>
    new FlashError(
      "USAGE",
      `not a usable bekenlab write journal: ${why}`,
      "pass the .journal.json written next to the backup of the interrupted job",
    );
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw bad(e instanceof Error ? e.message : "invalid JSON");
  }
  if (typeof j !== "object" || j === null) throw bad("not an object");
  const o = j as Record<string, unknown>;
  if (o.version !== 1 && o.version !== JOURNAL_VERSION) throw bad(`version ${String(o.version)}`);
  if (o.op !== "write" && o.op !== "erase") throw bad("unknown op");
  for (const k of ["addr", "size"]) if (!Number.isSafeInteger(o[k])) throw bad(`missing ${k}`);
  for (const k of ["planned", "done"]) {
    if (!Array.isArray(o[k]) || !(o[k] as unknown[]).every(Number.isSafeInteger)) throw bad(`missing ${k}`);
  }
  if (typeof o.crc32 !== "string" || typeof o.chip !== "string") throw bad("missing crc32 or chip");
  if (o.stoppedAt !== undefined && o.stoppedAt !== null && !Number.isSafeInteger(o.stoppedAt)) {
    throw bad("stoppedAt is not a sector address");
  }
  return o as unknown as WriteJournal;
}

/** Keeps a journal and saves it to a store as the job advances. */
export class JournalWriter {
  readonly journal: WriteJournal;
  readonly name: string;
  #store: BackupStore;
  #location: string | null = null;

  constructor(store: BackupStore, name: string, journal: WriteJournal) {
    this.#store = store;
    this.name = name;
    this.journal = journal;
  }

  /** Where the journal was saved, once it was. */
  get location(): string | null {
    return this.#location;
  }

  /** Save the journal now. */
  async save(): Promise<void> {
    this.#location = await this.#store.put(
      this.name,
      new TextEncoder().encode(JSON.stringify(this.journal) + "\n"),
    );
  }

  /** Record sectors as programmed and verified, and save. */
  async markDone(sectors: readonly number[]): Promise<void> {
    this.journal.done.push(...sectors.filter((s) => !this.journal.done.includes(s)));
    await this.save();
  }

  /**
   * Take back sectors marked done that the job later saw differ from the image (its final verify,
   * or a reply naming a change there); saved with the next {@link finish} or {@link markDone}.
   */
  unmark(sectors: readonly number[]): void {
    this.journal.done = this.journal.done.filter((s) => !sectors.includes(s));
  }

  /**
   * Record where a failing job stopped ({@link WriteJournal.stoppedAt}), before anything is
   * taken out of the done list; saved with the next {@link finish}.
   */
  recordStop(): void {
    this.journal.stoppedAt = firstNotDone(this.journal);
  }

  /**
   * Record the end of the job, and save. A verified job verified its whole range, so every
   * planned sector is done (also those a resumed job found already written).
   */
  async finish(
    state: "verified" | "failed",
    error?: string,
    corrupted?: { start: number; end: number },
  ): Promise<void> {
    this.journal.state = state;
    if (corrupted !== undefined) this.journal.corrupted = { start: corrupted.start, end: corrupted.end };
    if (state === "verified") this.journal.done = [...this.journal.planned];
    if (error !== undefined) this.journal.error = error;
    await this.save();
  }
}
