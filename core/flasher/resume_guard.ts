/**
 * What a resumed write must establish before it touches the chip: that the chip is the one the
 * interrupted job ran on, that the job's backup is the one it took, and that nothing outside
 * the job's range changed since. A resume that cannot establish all three is refused with one
 * line of cause and one of remedy and writes nothing; sectors outside the job that changed are
 * named and left alone unless the user asks for the backup's copy to be written back, which
 * then honours the bootloader guard and first saves what it overwrites.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../crc.ts";
import { type ChipIdentity, crcHex } from "./sidecar.ts";
import { type BackupStore, storedSource } from "./store.ts";
import type { FlasherContext } from "./context.ts";
import { chipSpanCrc, type Fingerprint, isFingerprint } from "./fingerprint.ts";
import { type SaveFirst, sectorRanges, writeBackSectors } from "./integrity.ts";
import { blockInFlux, type WriteJournal } from "./journal.ts";
import { alignDown, alignUp, hex, humanSize } from "./range.ts";
import { FlashContent } from "./source.ts";
import { readSectorRun } from "./read_ahead.ts";
import { BLOCK, SECTOR } from "../target.ts";
import { erasedCrc } from "./erased.ts";

/** What the guard needs besides the context. */
export interface ResumeGuardOptions {
  journal: WriteJournal;
  /** Name of the journal in the store (names the copy of what a write-back overwrites). */
  journalName: string;
  identity: ChipIdentity;
  store?: BackupStore;
  /** The job's expected content of `[content.addr, content.end)`. */
  content: FlashContent;
  /** Write the backup's copy back over changed sectors outside the job (`--restore-outside`). */
  restoreOutside: boolean;
  /** The bootloader window and whether the user allowed writing it (guard, or SPI `--yes`). */
  bootloader: { end: number; allowed: boolean };
  attempts: number;
  createdAt: Date;
}

/** What the guard established. */
export interface ResumeGuardResult {
  /** Sectors outside the job written back from the backup (with `restoreOutside`). */
  restored: number[];
}

const RESTART =
  "run the same command without --resume: it backs up the chip as it is now and writes only what differs";

/**
 * Check a resume against its journal, backup and chip; see the module documentation.
 *
 * @example
 * ```ts
 * import type { BackupStore } from "./store.ts";
 * import type { ChipIdentity } from "./sidecar.ts";
 * import type { FlasherContext } from "./context.ts";
 * import type { WriteJournal } from "./journal.ts";
 * import { FlashContent } from "./source.ts";
 * declare const ctx: FlasherContext;
 * declare const journal: WriteJournal;
 * declare const journalName: string;
 * declare const identity: ChipIdentity;
 * declare const store: BackupStore;
 * declare const content: FlashContent;
 * await guardResume(ctx, { journal, journalName, identity, store, content, restoreOutside: false,
 *   bootloader: { end: 0x11000, allowed: false }, attempts: 3, createdAt: new Date() });
 * ```
 */
export async function guardResume(ctx: FlasherContext, o: ResumeGuardOptions): Promise<ResumeGuardResult> {
  const j = o.journal;
  const size = ctx.flashSize;
  const fp = j.version >= 2 && isFingerprint(j.fingerprint, size) ? j.fingerprint : null;
  if (!fp) {
    throw new FlashError(
      "USAGE",
      `the journal ${o.journalName} holds no fingerprint of the chip it was made on (${
        j.version < 2
          ? "an older bekenlab wrote it"
          : j.fingerprint
          ? `it does not cover this chip's ${humanSize(size)} flash`
          : "the job had neither a chip CRC nor a backup to take one from"
      }), so resuming from it could write over another device or newer data`,
      RESTART,
    );
  }
  checkIdentity(j, o.identity, size);
  const backup = j.backup ? await checkBackup(o, j.backup, fp, size) : null;

  // the chip against the fingerprint
  const { addr, end } = o.content;
  const changedOutside: { addr: number; len: number }[] = [];
  const unexplained: { addr: number; len: number }[] = [];
  // the one block the job was working on when it stopped may hold anything: erased, half programmed
  const inFlux = blockInFlux(j);
  for (const [a, len, want] of fp.spans) {
    const span = { addr: a, len };
    const chip = crcHex(await chipSpanCrc(ctx, span));
    if (chip === want) continue;
    if (a + len <= addr || a >= end) changedOutside.push(span);
    else if (chip !== crcHex(await o.content.crc(a, len)) && alignDown(a, BLOCK) !== inFlux) {
      const found = backup && o.store ? new FlashContent(0, storedSource(o.store, j.backup!, size)) : null;
      // the interrupted job's error named flash a request corrupted on the wire changed (the
      // chip's reply said where): those sectors may hold any of the job's data
      const c = j.corrupted;
      const named = c ? (s: number) => s < c.end && s + SECTOR > c.start : () => false;
      unexplained.push(
        ...await unexplainedSectors(ctx, span, o.content, backup?.sectorCrcs ?? null, found, named),
      );
    }
  }
  if (unexplained.length > 0) {
    const first = unexplained[0];
    throw new FlashError(
      "WRONG_CHIP",
      `this chip is not the one the interrupted job ran on, or its flash was rewritten since: ${
        unexplained.length + changedOutside.length
      } of ${fp.spans.length} regions differ from the journal's fingerprint, including ${hex(first.addr)}..${
        hex(first.addr + first.len - 1)
      } inside the image's range, which holds neither what the job found there nor what it wrote; nothing was written`,
      `connect the chip the job was interrupted on and resume there; to write this chip, ${RESTART}`,
    );
  }
  if (changedOutside.length === 0) return { restored: [] };

  // name the changed sectors: the backup (checked above) holds what each held before
  const sectors = backup
    ? await changedSectors(ctx, changedOutside, backup.sectorCrcs)
    : spanSectors(changedOutside);
  const named = sectorRanges(sectors);
  if (!o.restoreOutside || !backup) {
    throw new FlashError(
      "USAGE",
      `${sectors.length} sector(s) outside the image changed since the write was interrupted (${named}): newer data, or damage from the interrupted job; nothing was written`,
      backup
        ? `to keep them, ${RESTART}; to put the backup's copy back over them, add --restore-outside (what they hold now is saved first)`
        : `to keep them, ${RESTART} (the interrupted job has no backup to restore them from)`,
    );
  }
  const inLoader = sectors.filter((s) => s < o.bootloader.end);
  if (inLoader.length > 0 && !o.bootloader.allowed) {
    throw new FlashError(
      "BOOTLOADER_GUARD",
      `${inLoader.length} of the sector(s) to write back lie in the bootloader window 0x0..${
        hex(o.bootloader.end - 1)
      } (${sectorRanges(inLoader)}); nothing was written`,
      "add --overwrite-bootloader to write the backup's copy there too (what they hold now is saved first), or drop --restore-outside",
      {
        damage: {
          // the interrupted job's range stays as it left it, and so do the changed sectors
          start: Math.min(addr, ...sectors),
          end: Math.max(end, Math.max(...sectors) + SECTOR),
          backup: j.backup ?? undefined,
        },
      },
    );
  }
  const save: SaveFirst = {
    name: `${o.journalName.replace(/\.journal\.json$/, "")}.overwritten-${stamp(o.createdAt)}`,
    identity: o.identity,
    createdAt: o.createdAt,
  };
  // writeBackSectors clears the status register first: it may protect them again since the job
  const restored = await writeBackSectors(
    ctx,
    { store: o.store!, backup: j.backup!, attempts: o.attempts, save },
    sectors,
    "--restore-outside: they changed since the write was interrupted",
  );
  return { restored };
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
}

function checkIdentity(j: WriteJournal, id: ChipIdentity, size: number): void {
  const was = `${j.chip}, flash ${j.flashId ?? "?"}, key ${j.key ?? "none"}, ${humanSize(j.flashSize ?? 0)}`;
  const is = `${id.chip}, flash ${id.flashId ?? "?"}, key ${id.key ?? "none"}, ${humanSize(size)}`;
  if (was === is) return;
  throw new FlashError(
    "WRONG_CHIP",
    `this chip is not the one the interrupted job ran on: the journal names ${was}; this one is ${is}; nothing was written`,
    `connect the chip the job was interrupted on and resume there; to write this chip, ${RESTART}`,
  );
}

/**
 * The backup must match its sidecar, the journal, and the chip CRCs taken before the first
 * erase; a backup that does not is never used.
 */
async function checkBackup(
  o: ResumeGuardOptions,
  location: string,
  fp: Fingerprint,
  size: number,
): Promise<{ sectorCrcs: Uint32Array }> {
  const refuse = (why: string, cause?: unknown) =>
    new FlashError(
      "BACKUP_FAILED",
      `the backup ${location} of the interrupted job does not check out: ${why}; nothing was written`,
      `restore ${location} from a copy and resume again, or ${RESTART}`,
      { cause },
    );
  if (!o.store) throw refuse("there is no backup directory to read it from");
  const sidecarAt = location.replace(/\.bin$/, ".json");
  let sidecar: { crc32?: unknown; size?: unknown; chip?: unknown; flashId?: unknown; key?: unknown };
  try {
    sidecar = JSON.parse(new TextDecoder().decode(await o.store.get(sidecarAt)));
  } catch (e) {
    throw refuse(`its sidecar ${sidecarAt} cannot be read (${e instanceof Error ? e.message : e})`, e);
  }
  if (sidecar.size !== size || sidecar.chip !== o.journal.chip || sidecar.flashId !== o.journal.flashId) {
    throw refuse(`its sidecar ${sidecarAt} describes another chip or size`);
  }
  const source = storedSource(o.store, location, size);
  const sectorCrcs = new Uint32Array(size / SECTOR);
  const windows: string[] = [];
  let whole = 0;
  try {
    for (const [a, len] of fp.spans) {
      const data = await source.read(a, len);
      if (data.length !== len) throw new Error(`it is shorter than the ${humanSize(size)} flash`);
      whole = crc32(data, whole);
      windows.push(crcHex(crc32(data)));
      for (let s = 0; s < len; s += SECTOR) {
        sectorCrcs[(a + s) / SECTOR] = crc32(data.subarray(s, s + SECTOR));
      }
    }
  } catch (e) {
    throw refuse(`it cannot be read (${e instanceof Error ? e.message : e})`, e);
  }
  const got = crcHex(whole);
  if (got !== sidecar.crc32) throw refuse(`its CRC-32 is ${got}, its sidecar says ${String(sidecar.crc32)}`);
  if (o.journal.backupCrc32 && got !== o.journal.backupCrc32) {
    throw refuse(`its CRC-32 is ${got}, the journal says ${o.journal.backupCrc32}`);
  }
  const off = fp.spans.findIndex((w, i) => w[2] !== windows[i]);
  if (off >= 0) {
    const [a, len] = fp.spans[off];
    throw refuse(
      `${hex(a)}..${hex(a + len - 1)} differs from what the chip held before the job's first erase`,
    );
  }
  return { sectorCrcs };
}

/**
 * The sectors of a region inside the image's range that hold neither what the job found there
 * (the backup's copy), nor the image, nor erased flash, nor what programming over one of those
 * leaves. Each of these is what the interrupted job, or a request of it corrupted on the wire
 * (the boot protocol has no checksum on requests: an erase or a program that landed elsewhere
 * in the range), can leave: programming only clears bits, so a sector whose set bits are a
 * subset of the found content's or the image's is explained without an erase in between. A
 * corrupted address moves a whole 4 KiB program to another sector (the job programs nothing
 * smaller), so the image's content for any of its sectors may be found at any other, over
 * erased flash or over what was there. Anything else is another chip's or newer data.
 */
async function unexplainedSectors(
  ctx: FlasherContext,
  span: { addr: number; len: number },
  content: FlashContent,
  backupCrcs: Uint32Array | null,
  found: FlashContent | null,
  named: (s: number) => boolean,
): Promise<{ addr: number; len: number }[]> {
  const blank = erasedCrc(SECTOR);
  const inImage = (s: number) => s >= content.addr && s + SECTOR <= content.addr + content.size;
  const suspects: number[] = [];
  for (const s of spanSectors([span])) {
    if (named(s)) continue;
    const chip = await chipSpanCrc(ctx, { addr: s, len: SECTOR });
    if (chip === blank || (backupCrcs && chip === backupCrcs[s / SECTOR])) continue;
    if (inImage(s) && chip === await content.crc(s, SECTOR)) continue;
    suspects.push(s);
  }
  const out: { addr: number; len: number }[] = [];
  const programmedOver = (now: Uint8Array, was: Uint8Array) =>
    now.every((b, i) => (b & ~was[i] & 0xff) === 0);
  // programs whose address a fault moved here: each cleared the bits its 4 KiB clears, over
  // erased flash or over what the sector held. What they can leave is exactly the AND of some of
  // those sources, so the sector is explained when the AND of every source it is a subset of
  // clears no bit fewer than it has (a subset test alone would let a nearly blank source
  // explain almost anything)
  let image: Uint8Array | null = null;
  const misdirected = async (s: number, now: Uint8Array) => {
    image ??= await content.bytes(content.addr, content.size);
    const left = new Uint8Array(SECTOR).fill(0xff);
    const meet = (x: Uint8Array) => {
      if (!programmedOver(now, x)) return;
      for (let k = 0; k < SECTOR; k++) left[k] &= x[k];
    };
    if (found) meet(await found.bytes(s, SECTOR));
    for (let t = alignUp(content.addr, SECTOR); inImage(t); t += SECTOR) {
      meet(image.subarray(t - content.addr, t - content.addr + SECTOR));
    }
    return left.every((b, k) => b === now[k]);
  };
  await readSectorRun(ctx, suspects, { op: "resume", attempts: 3 }, async (s, now) => {
    if (found && programmedOver(now, await found.bytes(s, SECTOR))) return;
    if (inImage(s) && programmedOver(now, await content.bytes(s, SECTOR))) return;
    if (await misdirected(s, now)) return;
    out.push({ addr: s, len: SECTOR });
  });
  return out.sort((a, b) => a.addr - b.addr);
}

/** The sectors of changed spans whose chip CRC differs from the backup's. */
async function changedSectors(
  ctx: FlasherContext,
  spans: readonly { addr: number; len: number }[],
  backupCrcs: Uint32Array,
): Promise<number[]> {
  const out: number[] = [];
  for (const s of spanSectors(spans)) {
    const chip = await chipSpanCrc(ctx, { addr: s, len: SECTOR });
    if (chip !== backupCrcs[s / SECTOR]) out.push(s);
  }
  return out;
}

function spanSectors(spans: readonly { addr: number; len: number }[]): number[] {
  const out: number[] = [];
  for (const sp of spans) for (let s = sp.addr; s < sp.addr + sp.len; s += SECTOR) out.push(s);
  return out;
}
