/**
 * The rest of the chip around a job: a request corrupted on the wire can make the chip erase or
 * program a sector outside the job, and when its reply is lost too (or power fails before it
 * answers) nothing the host hears says so. A job therefore takes a chip-side CRC of each side
 * of its range before its first erase and compares after its final verify; a resumed job,
 * which has no such "before", compares the rest of the chip with the interrupted job's backup.
 * Sectors that changed are written back from the backup where there is one; what cannot be
 * written back is reported as damage.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { crc32 } from "../crc.ts";
import { type ChipIdentity, crcHex } from "./sidecar.ts";
import { freshName } from "./backup_name.ts";
import { type BackupStore, storedSource } from "./store.ts";
import { chipSpanCrc } from "./fingerprint.ts";
import { readSectorRun } from "./read_ahead.ts";
import { recheckSectors } from "./read.ts";
import { differingSpans, sectorSpans, type Span } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { isTransient, reasonOf, withRetries } from "./retry.ts";
import { FlashContent } from "./source.ts";
import { SECTOR } from "../target.ts";

/** Where the backup is and which range the job owns. */
export interface OutsideCheck {
  store: BackupStore;
  /** Location of the job's backup (the whole flash). */
  backup: string;
  /** The job's range `[addr, end)`; everything else must equal the backup. */
  addr: number;
  end: number;
  /** Attempts per sector when writing one back. */
  attempts: number;
  /** Where what a write-back overwrites is saved first. */
  save: SaveFirst;
}

/** Name and identity for the copy of sectors about to be overwritten. */
export interface SaveFirst {
  /** Base name in the store (`<name>.bin` and `<name>.json`). */
  name: string;
  identity: ChipIdentity;
  createdAt: Date;
}

/** Coarse-to-fine CRC windows: each side of the job in one CRC, then 256 KiB, then 64 KiB. */
const WINDOWS = [Number.POSITIVE_INFINITY, 0x40000, 0x10000];

/** Sectors as a short list of ranges, e.g. "0x0..0xfff, 0x1f8000..0x1f9fff". */
export function sectorRanges(sectors: readonly number[], limit = 4): string {
  const runs: [number, number][] = [];
  for (const s of [...sectors].sort((a, b) => a - b)) {
    const last = runs[runs.length - 1];
    if (last && last[1] === s) last[1] = s + SECTOR;
    else runs.push([s, s + SECTOR]);
  }
  const shown = runs.slice(0, limit).map(([a, b]) => `${hex(a)}..${hex(b - 1)}`);
  return shown.join(", ") + (runs.length > limit ? `, … (${runs.length} ranges)` : "");
}

/** The sidecar of a saved set of sectors. */
export interface SectorCopySidecar {
  tool: "bekenlab";
  kind: "sectors";
  chip: string;
  key: string | null;
  flashId: string | null;
  /** Flash address of each 4 KiB sector, in the order they follow each other in the file. */
  sectors: number[];
  /** Standard CRC-32 of the file, 8 hex digits. */
  crc32: string;
  createdAt: string;
  file: string;
  /** Why they were saved. */
  reason: string;
}

/**
 * Read `sectors` from the chip, each checked against the chip's CRC of it, and save them (file and
 * sidecar, read back and checked) before anything overwrites them. Resolves to the file's location.
 */
export async function saveSectors(
  ctx: FlasherContext,
  store: BackupStore,
  sectors: readonly number[],
  save: SaveFirst,
  reason: string,
): Promise<string> {
  const data = new Uint8Array(sectors.length * SECTOR);
  const index = new Map(sectors.map((s, i) => [s, i]));
  await readSectorRun(ctx, sectors, { op: "integrity", attempts: 3 }, (s, d) => {
    data.set(d, index.get(s)! * SECTOR);
  });
  // a read reply carries no checksum: a sector is saved only once it matches the chip's CRC of
  // it (on SPI, a second read), and read again until it does
  await recheckSectors(ctx, "integrity", 3, sectors, data, (s) => index.get(s)! * SECTOR);
  const crc = crc32(data);
  // one job may save twice (a resume's write-back, then its own end-of-job check) in one second
  let name: string;
  try {
    name = await freshName(store, save.name);
  } catch (e) {
    throw new FlashError(
      "BACKUP_FAILED",
      `could not list the backup directory to name the copy of ${sectors.length} sector(s) about to be written back: ${
        reasonOf(e)
      }; nothing was written`,
      "check permissions of the backup directory, then run again",
      { cause: e },
    );
  }
  const file = `${name}.bin`;
  const sidecar: SectorCopySidecar = {
    tool: "bekenlab",
    kind: "sectors",
    chip: save.identity.chip,
    key: save.identity.key,
    flashId: save.identity.flashId,
    sectors: [...sectors],
    crc32: crcHex(crc),
    createdAt: save.createdAt.toISOString(),
    file,
    reason,
  };
  let location: string;
  try {
    location = await store.put(file, data);
    await store.put(`${name}.json`, new TextEncoder().encode(JSON.stringify(sidecar, null, 2) + "\n"));
    const back = crc32(await store.get(location));
    if (back !== crc) throw new Error(`it reads back with CRC ${hex(back)}, expected ${hex(crc)}`);
  } catch (e) {
    throw new FlashError(
      "BACKUP_FAILED",
      `could not save the ${sectors.length} sector(s) about to be written back (${sectorRanges(sectors)}): ${
        reasonOf(e)
      }; nothing was written`,
      "check free space and permissions of the backup directory, then run again",
      { cause: e },
    );
  }
  return location;
}

/**
 * Save what `sectors` hold now ({@link saveSectors}), then write each back from the backup and
 * check it by CRC. Said on stderr (a notice, shown without -v). Resolves to the sectors written
 * back; throws WRITE_FAILED naming the range when one cannot be restored.
 */
export async function writeBackSectors(
  ctx: FlasherContext,
  check: Omit<OutsideCheck, "addr" | "end">,
  sectors: readonly number[],
  reason: string,
): Promise<number[]> {
  if (sectors.length === 0) return [];
  const size = ctx.flashSize;
  const backup = new FlashContent(0, storedSource(check.store, check.backup, size));
  const saved = await saveSectors(ctx, check.store, sectors, check.save, reason);
  ctx.onEvent?.({
    type: "notice",
    message: `writing back ${sectors.length} sector(s) outside the job from the backup ${check.backup} (${
      sectorRanges(sectors)
    }): ${reason}; what they held is saved in ${saved}`,
  });
  // the status register may protect them again (a resume writes back before its job clears
  // it; firmware or a glitch may have set it since): clearing it writes only when it must
  const unprotect = await ctx.target.unprotect();
  if (unprotect.wrote) ctx.onEvent?.({ type: "unprotect", report: unprotect });
  const failed: number[] = [];
  // a write-back request corrupted on the wire can change another sector, and the error that
  // says so (its reply named that address) must not be lost with the sector that failed
  const named: { start: number; end: number }[] = [];
  for (const s of sectors) {
    const data = await backup.bytes(s, SECTOR);
    let ok = false;
    for (let attempt = 1; attempt <= check.attempts && !ok; attempt++) {
      try {
        await ctx.target.eraseSector(s);
        if (!data.every((b) => b === 0xff)) await ctx.target.writeSector(s, data);
        ok = (await chipSpanCrc(ctx, { addr: s, len: SECTOR }, "integrity")) === crc32(data);
      } catch (e) {
        if (e instanceof FlashError && e.damage) named.push({ start: e.damage.start, end: e.damage.end });
        if (!isTransient(e)) {
          ctx.onEvent?.({ type: "note", message: `sector ${hex(s)} cannot be written back: ${reasonOf(e)}` });
          break;
        }
      }
    }
    if (!ok) failed.push(s);
  }
  if (failed.length > 0) {
    const first = Math.min(failed[0], ...named.map((d) => d.start));
    const last = Math.max(failed[failed.length - 1] + SECTOR, ...named.map((d) => d.end));
    throw new FlashError(
      "WRITE_FAILED",
      `${failed.length} sector(s) outside the job differ from the backup and could not be written back (${
        sectorRanges(failed)
      }); flash that may differ: ${hex(first)}..${hex(last - 1)}`,
      `write the backup ${check.backup} back over that range (over SPI for the bootloader window); what they held is in ${saved}`,
      { damage: { start: first, end: last, backup: check.backup } },
    );
  }
  return [...sectors];
}

/**
 * Compare the flash outside `[addr, end)` with the backup and write back the sectors that
 * differ, after saving what they hold. Used at the end of a job, under its locks: the backup
 * was read from this chip by this job (or, on a resume, checked against the chip and the
 * journal's fingerprint before anything was written), so a sector that differs now was changed
 * by one of this run's own requests, corrupted on the wire. Sectors in the bootloader window
 * are written back only where the user allowed writing there; otherwise they are named as
 * damage (WRITE_FAILED) after the others are restored. Resolves to the sectors written back.
 *
 * @example
 * ```ts
 * import type { BackupStore } from "./store.ts";
 * import type { FlasherContext } from "./context.ts";
 * import type { SaveFirst } from "./integrity.ts";
 * declare const ctx: FlasherContext;
 * declare const store: BackupStore;
 * declare const backup: string; // the backup's location in the store
 * declare const save: SaveFirst;
 * const restored = await restoreOutside(ctx, {
 *   store, backup, addr: 0x11000, end: 0x40000, attempts: 3, save,
 *   bootloader: { end: 0x11000, allowed: false },
 * });
 * ```
 */
export async function restoreOutside(
  ctx: FlasherContext,
  check: OutsideCheck & { bootloader: { end: number; allowed: boolean } },
): Promise<number[]> {
  // writing a sector back is a request too, and one corrupted on the wire can land on another
  // sector outside the job: the rest of the chip is compared again after every round
  const restored: number[] = [];
  const guarded = (s: number) => !check.bootloader.allowed && s < check.bootloader.end;
  let left = await outsideDiffering(ctx, check);
  for (let round = 0; round < check.attempts; round++) {
    const sectors = left.map((b) => b.addr).filter((s) => !guarded(s));
    if (sectors.length === 0) break;
    // each round saves what it overwrites under its own name, so a later round keeps the first copy
    const save = round === 0 ? check.save : { ...check.save, name: `${check.save.name}.round${round + 1}` };
    restored.push(
      ...await writeBackSectors(
        ctx,
        { ...check, save },
        sectors,
        round === 0
          ? "they changed while this job ran (a request corrupted on the wire)"
          : "they changed while sectors were being written back (a write-back corrupted on the wire)",
      ),
    );
    left = await outsideDiffering(ctx, check);
  }
  if (left.length === 0) return restored;
  const first = left[0].addr;
  const last = left[left.length - 1].addr + SECTOR;
  const stuck = left.map((b) => b.addr);
  if (stuck.some((s) => !guarded(s))) {
    throw new FlashError(
      "WRITE_FAILED",
      `${stuck.length} sector(s) outside the job still differ from the backup after ${check.attempts} rounds of writing back (${
        sectorRanges(stuck)
      }): requests are being corrupted on the wire`,
      `shorten the wires or lower --baud, then write the backup ${check.backup} back over ${hex(first)}..${
        hex(last - 1)
      }`,
      { damage: { start: first, end: last, backup: check.backup } },
    );
  }
  throw new FlashError(
    "WRITE_FAILED",
    `${stuck.length} sector(s) of the bootloader window changed while this job ran (${
      sectorRanges(stuck)
    }: a request corrupted on the wire), and writing there needs --overwrite-bootloader`,
    "keep the chip powered and run the same command with --resume --restore-outside --overwrite-bootloader: it puts the backup's copy back (what they hold now is saved first)",
    { damage: { start: first, end: last, backup: check.backup } },
  );
}

/** The sectors outside the job that differ from the backup. */
function outsideDiffering(ctx: FlasherContext, check: OutsideCheck): Promise<Span[]> {
  const size = ctx.flashSize;
  const backup = new FlashContent(0, storedSource(check.store, check.backup, size));
  const spans: Span[] = [...sectorSpans(0, check.addr), ...sectorSpans(check.end, size - check.end)];
  return differingSpans(ctx, 0, backup, spans, { window: WINDOWS, attempts: 3, op: "integrity" });
}

/** CRCs of the flash on each side of a job's range, taken before its first erase. */
export interface OutsideSnapshot {
  spans: Span[];
  crcs: number[];
}

/** The non-empty sides of `[addr, end)` in a flash of `size` bytes. */
function sides(addr: number, end: number, size: number): Span[] {
  return [{ addr: 0, len: addr }, { addr: end, len: size - end }].filter((s) => s.len > 0);
}

/** Take the CRC of each side of `[addr, end)` (chip-side CRC targets only). */
export async function outsideSnapshot(
  ctx: FlasherContext,
  addr: number,
  end: number,
): Promise<OutsideSnapshot> {
  const spans = sides(addr, end, ctx.flashSize);
  const crcs: number[] = [];
  for (const s of spans) {
    crcs.push(await withRetries(ctx, "integrity", s.addr, 3, () => ctx.target.crc(s.addr, s.len)));
  }
  return { spans, crcs };
}

/**
 * Compare the sides of a job's range with their {@link outsideSnapshot}. When one changed,
 * write the changed sectors back from `repair` (the job's backup) if there is one, else throw
 * WRITE_FAILED naming the side that changed. Resolves to the sectors written back.
 */
export async function checkOutside(
  ctx: FlasherContext,
  before: OutsideSnapshot,
  job: { addr: number; end: number; attempts: number },
  repair: {
    store: BackupStore;
    backup: string;
    save: SaveFirst;
    bootloader: { end: number; allowed: boolean };
  } | null,
): Promise<number[]> {
  const changed: Span[] = [];
  for (const [i, s] of before.spans.entries()) {
    const now = await withRetries(ctx, "integrity", s.addr, 3, () => ctx.target.crc(s.addr, s.len));
    if (now !== before.crcs[i]) changed.push(s);
  }
  if (changed.length === 0) return [];
  if (repair) return await restoreOutside(ctx, { ...repair, ...job });
  const start = changed[0].addr;
  const last = changed[changed.length - 1];
  throw new FlashError(
    "WRITE_FAILED",
    `flash outside the job changed while it ran (${hex(start)}..${
      hex(last.addr + last.len - 1)
    }): a request was corrupted on the wire`,
    "there is no backup to restore it from (--no-backup): shorten the wires or lower --baud, and check the firmware there",
    { damage: { start, end: last.addr + last.len } },
  );
}
