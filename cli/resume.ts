/**
 * Finding the journal of an interrupted write for `write-flash --resume`: the newest
 * unfinished journal in the backup directory that describes the same job (same image, same
 * address), or the one the user named.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { FlashError } from "../core/errors.ts";
import { crcHex } from "../core/flasher/sidecar.ts";
import { parseJournal, type WriteJournal } from "../core/flasher/journal.ts";
import { type ByteSource, FlashContent, toSource } from "../core/flasher/source.ts";

/** A journal to resume from: its content and its name inside the backup directory. */
export interface ResumePoint {
  journal: WriteJournal;
  /** File name inside the backup directory (the store writes it back under this name). */
  name: string;
  /** Path of the journal file. */
  path: string;
}

/** The job a journal must describe: the image padded to sectors, its size and CRC. */
export interface WriteJob {
  addr: number;
  /** Padded size. */
  size: number;
  /** CRC-32 of the padded image, 8 hex digits. */
  crc32: string;
}

/** The {@link WriteJob} of writing `image` at `addr` (the image is read piece by piece). */
export async function writeJobOf(addr: number, image: Uint8Array | ByteSource): Promise<WriteJob> {
  const content = new FlashContent(addr, toSource(image));
  return { addr, size: content.size, crc32: crcHex(await content.crc(addr, content.size)) };
}

/** Whether `journal` describes `job` and is not finished. */
export function journalMatches(journal: WriteJournal, job: WriteJob): boolean {
  return journal.op === "write" && journal.state !== "verified" && journal.addr === job.addr &&
    journal.size === job.size && journal.crc32 === job.crc32;
}

/**
 * The journal to resume: `explicit` (a path) when given, else the newest unfinished journal
 * in `dir` matching the job; null when there is none.
 *
 * @example
 * ```ts
 * const point = await findResumePoint("backups", 0x11000, image);
 * ```
 */
export async function findResumePoint(
  dir: string,
  addr: number,
  image: Uint8Array | ByteSource,
  explicit?: string,
): Promise<ResumePoint | null> {
  if (explicit !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(explicit);
    } catch (e) {
      throw new FlashError(
        "USAGE",
        `cannot read the journal ${explicit}: ${(e as Error).message}`,
        "pass the .journal.json of the interrupted job, or --resume alone to find it in --backup-dir",
      );
    }
    const journal = parseJournal(text);
    if (resolve(dirname(explicit)) !== resolve(dir)) {
      throw new FlashError(
        "USAGE",
        `the journal ${explicit} is not in the backup directory ${dir}`,
        `pass --backup-dir ${dirname(explicit)}`,
      );
    }
    return { journal, name: basename(explicit), path: explicit };
  }
  const found: ResumePoint[] = [];
  const job = await writeJobOf(addr, image);
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".journal.json")) continue;
      const path = join(dir, e.name);
      try {
        const journal = parseJournal(await Deno.readTextFile(path));
        if (journalMatches(journal, job)) found.push({ journal, name: e.name, path });
      } catch {
        // not a journal of ours, or a torn copy: not a resume point
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  found.sort((a, b) => b.journal.createdAt.localeCompare(a.journal.createdAt));
  return found[0] ?? null;
}
