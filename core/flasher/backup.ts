/**
 * The full backup taken before any write or erase: the whole flash read with CRC checks and
 * streamed into an injected {@link BackupStore} under a name carrying chip, flash ID and time,
 * with a JSON sidecar, then read back from the store to check it before anything is erased.
 *
 * A backup costs a read of the whole flash, so an earlier one is reused when the chip still
 * holds exactly its content: one CheckCRC of the whole flash against the CRCs of the stored
 * backups of the same chip ({@link reuseBackup}). After a verified job the new content of the
 * flash can be saved the same way ({@link saveAfterImage}), so the next job of a develop–flash
 * loop needs no read at all.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { inUseError } from "../io/lock.ts";
import { crc32 } from "../crc.ts";
import { type Accounting, startAccounting } from "./accounting.ts";
import type { FlasherContext } from "./context.ts";
import { hex } from "./range.ts";
import { readFlashTo } from "./read.ts";
import { readSparseTo, sparseAllowed } from "./sparse_read.ts";
import type { ErasedReport } from "./erased.ts";
import { reasonOf, withRetries } from "./retry.ts";
import { type ByteSource, type FlashContent, scanSource, STREAM_CHUNK } from "./source.ts";
import { SECTOR } from "../target.ts";

/** An entry of a {@link BackupStore}. */
export interface StoreEntry {
  /** Name of the entry in the store. */
  name: string;
  /** Where the store keeps it (a path for a directory store). */
  location: string;
}

/** An entry being written piece by piece. */
export interface StoreWriter {
  /** Append bytes (copied or written at once: the caller reuses its buffer). */
  write(chunk: Uint8Array): Promise<void>;
  /** Make the entry visible under its name; resolves to its location. */
  commit(): Promise<string>;
  /** Drop what was written. */
  abort(): Promise<void>;
}

/**
 * Where backups and journals are kept. The CLI implements it on files; the core only names
 * things and never touches a file system itself. The optional members let backups stream
 * (memory stays flat with the flash size) and let an earlier backup be found and reused.
 */
export interface BackupStore {
  /** Store `data` under `name` (replacing an earlier entry); resolves to its location (a path). */
  put(name: string, data: Uint8Array): Promise<string>;
  /** The bytes stored at `location`. */
  get(location: string): Promise<Uint8Array>;
  /** Write an entry piece by piece; without it the pieces are joined and `put`. */
  create?(name: string): Promise<StoreWriter>;
  /** `length` bytes at `offset` of the entry at `location`; without it the entry is read whole. */
  read?(location: string, offset: number, length: number): Promise<Uint8Array>;
  /** Every entry; without it no earlier backup is ever reused. */
  list?(): Promise<StoreEntry[]>;
  /** Delete the entry at `location`; without it superseded after-write images are kept. */
  remove?(location: string): Promise<void>;
  /**
   * Take the store for one job (its backup, journal and after-image) and hold it until
   * released; rejects with a {@link FlashError} naming the store when another job holds it.
   * Every write or erase job takes it first, so two jobs never pick the same backup name or
   * write one journal. Without it a store is taken to have one user.
   */
  lock?(): Promise<StoreLock>;
}

/** A {@link BackupStore} held by one job. */
export interface StoreLock {
  /** Give the store back (idempotent). */
  release(): void;
}

/** A {@link BackupStore} in memory, for tests and hosts without a file system. */
export class MemoryStore implements BackupStore {
  /** Entries by name. */
  readonly entries: Map<string, Uint8Array> = new Map();
  put(name: string, data: Uint8Array): Promise<string> {
    this.entries.set(name, data.slice());
    return Promise.resolve(name);
  }
  get(location: string): Promise<Uint8Array> {
    const data = this.entries.get(location);
    return data ? Promise.resolve(data.slice()) : Promise.reject(new Error(`no entry ${location}`));
  }
  create(name: string): Promise<StoreWriter> {
    return Promise.resolve(joiningWriter((data) => this.put(name, data)));
  }
  read(location: string, offset: number, length: number): Promise<Uint8Array> {
    const data = this.entries.get(location);
    if (!data) return Promise.reject(new Error(`no entry ${location}`));
    return Promise.resolve(data.slice(offset, offset + length));
  }
  list(): Promise<StoreEntry[]> {
    return Promise.resolve([...this.entries.keys()].map((name) => ({ name, location: name })));
  }
  remove(location: string): Promise<void> {
    this.entries.delete(location);
    return Promise.resolve();
  }
  #held = false;
  /** Held by one job at a time within this process. */
  lock(): Promise<StoreLock> {
    if (this.#held) return Promise.reject(inUseError("the backup store"));
    this.#held = true;
    let open = true;
    return Promise.resolve({
      release: () => {
        if (open) this.#held = open = false;
      },
    });
  }
}

/** A writer that collects the pieces and hands them to `put` on commit. */
function joiningWriter(put: (data: Uint8Array) => Promise<string>): StoreWriter {
  let parts: Uint8Array[] = [];
  return {
    write(chunk) {
      parts.push(chunk.slice());
      return Promise.resolve();
    },
    commit() {
      const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        data.set(p, o);
        o += p.length;
      }
      parts = [];
      return put(data);
    },
    abort() {
      parts = [];
      return Promise.resolve();
    },
  };
}

/** A writer for `name` on any store. */
export async function openWriter(store: BackupStore, name: string): Promise<StoreWriter> {
  return store.create ? await store.create(name) : joiningWriter((data) => store.put(name, data));
}

/** The entry at `location` (of `size` bytes) as a {@link ByteSource}, read piece by piece where the store can. */
export function storedSource(store: BackupStore, location: string, size: number): ByteSource {
  let whole: Promise<Uint8Array> | null = null;
  return {
    size,
    read(offset, length) {
      if (store.read) return store.read(location, offset, Math.min(length, size - offset));
      whole ??= store.get(location);
      return whole.then((d) => d.subarray(offset, Math.min(size, offset + length)));
    },
  };
}

/** Who the backup belongs to; goes into names and sidecars. */
export interface ChipIdentity {
  /** Display name of the chip mode ("BK7231N", or "SPI" for a raw SPI flash). */
  chip: string;
  /** JEDEC ID in wire order as lowercase hex ("eb6015"), when known. */
  flashId: string | null;
  /** Efuse key as four hex words, when read. */
  key: string | null;
}

/** The JSON saved next to a backup. */
export interface BackupSidecar {
  /** Marks the file as written by this tool. */
  tool: "bekenlab";
  /** Chip profile id. */
  chip: string;
  /** The eFuse key as printed (`510fb093 ...`), or null where it cannot be read. */
  key: string | null;
  /** JEDEC ID as hex, or null when unknown. */
  flashId: string | null;
  /** Flash address of the first byte of the backup. */
  addr: number;
  /** Bytes in the backup. */
  size: number;
  /** Standard CRC-32 of the backup, 8 lowercase hex digits. */
  crc32: string;
  /** ISO 8601 time of the backup. */
  createdAt: string;
  /** Name of the backup image next to this file. */
  file: string;
  /**
   * "backup" (absent in older sidecars): read from the chip before a job. "after-write": the
   * flash content after a verified job, made from the job's backup and what it wrote.
   */
  kind?: "backup" | "after-write";
  /** For "after-write": the backup it was made from. */
  from?: string;
  /**
   * Regions taken as erased and not read (absent when every byte was read): how they were
   * checked, and the regions (`[addr, len]` pairs) filled with 0xFF in the image.
   */
  erased?: { method: string; checks: number; bytes: number; regions: [number, number][] };
}

/** A backup that was taken, reused or made, and checked. */
export interface BackupInfo {
  /** Location of the image, as the store reported it. */
  location: string;
  /** Location of the JSON sidecar. */
  sidecar: string;
  /** Base name shared by the image and its sidecar. */
  base: string;
  /** Bytes in the backup. */
  size: number;
  /** Standard CRC-32 of the backup. */
  crc32: number;
  /** Standard CRC-32 of every 4 KiB sector of the image, in order. */
  sectorCrcs: Uint32Array;
  /** An earlier backup that the chip still matches was used instead of reading the flash. */
  reused: boolean;
  /** What taking (or checking) it cost on the wire. */
  accounting: Accounting;
}

/** A backup with its bytes in memory ({@link takeBackup}). */
export interface BackupRecord extends BackupInfo {
  /** The bytes saved (the whole flash). */
  data: Uint8Array;
}

/** What a backup needs besides the context. */
export interface BackupOptions {
  /** Where to save the image and its sidecar. */
  store: BackupStore;
  /** The chip the backup comes from, for its name and sidecar. */
  identity: ChipIdentity;
  /** Wall time of the backup, supplied by the caller (the core has no calendar). */
  createdAt: Date;
  /** Base name of the files (default {@link backupBaseName}; see {@link freshBase}). */
  base?: string;
}

/** CRC-32 as 8 lowercase hex digits. */
export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, "0");
}

/**
 * The shared base name, e.g. `BK7231N_eb6015_20261122T013012Z`.
 *
 * @example
 * ```ts
 * backupBaseName({ chip: "BK7231N", flashId: "eb6015", key: null }, new Date("2026-11-22T01:30:12Z"));
 * // "BK7231N_eb6015_20261122T013012Z"
 * ```
 */
export function backupBaseName(identity: ChipIdentity, createdAt: Date): string {
  const stamp = createdAt.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
  const safe = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, "-");
  return `${safe(identity.chip)}_${safe(identity.flashId ?? "noid")}_${stamp}`;
}

/**
 * {@link backupBaseName}, with `-2`, `-3`, … appended while the store already holds files of
 * that base (two jobs in the same second must not overwrite each other's backups).
 */
export async function freshBase(
  store: BackupStore,
  identity: ChipIdentity,
  createdAt: Date,
): Promise<string> {
  const base = backupBaseName(identity, createdAt);
  if (!store.list) return base;
  const names = (await store.list().catch(() => [])).map((e) => e.name);
  let candidate = base;
  for (let n = 2; names.some((name) => name.startsWith(`${candidate}.`)); n++) candidate = `${base}-${n}`;
  return candidate;
}

function storeFailure(what: string, e: unknown): FlashError {
  return new FlashError(
    "BACKUP_FAILED",
    `could not ${what}: ${e instanceof Error ? e.message : String(e)}`,
    "check free space and permissions of the backup directory, or pass --no-backup to skip the backup (not recommended)",
    { cause: e },
  );
}

function sidecarOf(
  identity: ChipIdentity,
  createdAt: Date,
  file: string,
  size: number,
  crc: number,
  extra: Pick<BackupSidecar, "kind" | "from" | "erased"> = {},
): BackupSidecar {
  return {
    tool: "bekenlab",
    chip: identity.chip,
    key: identity.key,
    flashId: identity.flashId,
    addr: 0,
    size,
    crc32: crcHex(crc),
    createdAt: createdAt.toISOString(),
    file,
    ...extra,
  };
}

/**
 * Write `file` and its sidecar `base.json` from `fill`, which streams the bytes into the
 * writer and resolves to their CRC; then read the entry back and check it. Returns the
 * locations.
 */
async function storeChecked(
  store: BackupStore,
  base: string,
  file: string,
  fill: (w: StoreWriter) => Promise<{ size: number; crc32: number }>,
  sidecar: (size: number, crc: number) => BackupSidecar,
): Promise<{ location: string; sidecar: string; size: number; crc32: number }> {
  let writer: StoreWriter;
  try {
    writer = await openWriter(store, file);
  } catch (e) {
    throw storeFailure(`create the backup ${file}`, e);
  }
  let got: { size: number; crc32: number };
  try {
    got = await fill(writer);
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
  let location: string, sidecarLocation: string, back: number;
  try {
    location = await writer.commit();
    sidecarLocation = await store.put(
      `${base}.json`,
      new TextEncoder().encode(JSON.stringify(sidecar(got.size, got.crc32), null, 2) + "\n"),
    );
    back = (await scanSource(storedSource(store, location, got.size))).crc32;
  } catch (e) {
    if (e instanceof FlashError) throw e;
    throw storeFailure(`save the backup ${file}`, e);
  }
  if (back !== got.crc32) {
    throw new FlashError(
      "BACKUP_FAILED",
      `the saved backup ${location} reads back differently (CRC ${hex(back)}, expected ${hex(got.crc32)})`,
      "check the disk holding the backup directory, or pass --no-backup to skip the backup (not recommended)",
    );
  }
  return { location, sidecar: sidecarLocation, ...got };
}

/**
 * Read the whole flash into the store (streamed: memory stays flat), save the sidecar, and
 * check the saved copy by CRC. `tee` also receives every chunk.
 */
export async function saveBackup(
  ctx: FlasherContext,
  opts: BackupOptions,
  tee?: (chunk: Uint8Array, offset: number) => void,
): Promise<BackupInfo> {
  const base = opts.base ?? backupBaseName(opts.identity, opts.createdAt);
  const file = `${base}.bin`;
  let read: Awaited<ReturnType<typeof readFlashTo>> | null = null;
  let erased: ErasedReport | null = null;
  const saved = await storeChecked(
    opts.store,
    base,
    file,
    async (w) => {
      if (sparseAllowed(ctx)) {
        // the erased-region map is taken before anything is read and every read region is
        // checked against it: it replaces the whole-flash CRC below (sparse_read.ts)
        const r = await readSparseTo(
          ctx,
          { addr: 0, size: ctx.flashSize, op: "backup" },
          async (chunk, offset) => {
            tee?.(chunk, offset);
            await w.write(chunk).catch((e) => Promise.reject(storeFailure(`write the backup ${file}`, e)));
          },
        );
        read = r;
        erased = r.erased;
        return { size: r.size, crc32: r.crc32 };
      }
      // a read corrupted on the wire into an erase changes the chip while it is being read, and
      // the backup then holds the damage: one chip CRC of the whole flash first tells
      const before = ctx.target.hasChipCrc
        ? await withRetries(ctx, "backup", 0, 3, () => ctx.target.crc(0, ctx.flashSize))
        : null;
      // every window checked (by chip CRC, or on SPI by a second read): a backup is kept as good
      // only once each of its sectors reproduced
      const whole = { addr: 0, size: ctx.flashSize, op: "backup" as const, check: true };
      try {
        read = await readFlashTo(ctx, whole, async (chunk, offset) => {
          tee?.(chunk, offset);
          await w.write(chunk).catch((e) => Promise.reject(storeFailure(`write the backup ${file}`, e)));
        });
      } catch (e) {
        // a corrupted request noticed while reading (its reply named a change) may not be the only
        // one: another whose reply was lost changed flash unseen, and the whole-flash comparison
        // below, which would have caught it, never comes; so the whole flash is named
        if (e instanceof FlashError && e.damage) {
          e.damage = { ...e.damage, start: 0, end: Math.max(ctx.flashSize, e.damage.end) };
        }
        throw e;
      }
      if (before !== null && read.crc32 !== before) {
        throw new FlashError(
          "BACKUP_FAILED",
          `the flash changed while it was being backed up (CRC ${hex(before)} before, ${
            hex(read.crc32)
          } read): a request was corrupted on the wire`,
          "nothing was erased by this job, but a sector may have been: check the wiring and use a lower --baud, then compare the chip with an older backup",
          { damage: { start: 0, end: ctx.flashSize } },
        );
      }
      return { size: read.size, crc32: read.crc32 };
    },
    (size, crc) =>
      sidecarOf(opts.identity, opts.createdAt, file, size, crc, {
        kind: "backup",
        ...(erased && erased.bytes > 0
          ? {
            erased: {
              method: erased.method,
              checks: erased.confirmations + Object.values(erased.units).reduce((a, b) => a + b, 0),
              bytes: erased.bytes,
              regions: erased.regions.map((g): [number, number] => [g.addr, g.len]),
            },
          }
          : {}),
      }),
  );
  const r = read!;
  ctx.onEvent?.({ type: "backup", location: saved.location, size: saved.size, crc32: saved.crc32 });
  return { ...saved, base, sectorCrcs: r.sectorCrcs, reused: false, accounting: r.accounting };
}

/**
 * Read the whole flash, save it with its sidecar and check the saved copy by CRC; the bytes
 * are also returned (see {@link saveBackup} for the streaming form).
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const identity: ChipIdentity;
 * const store = new MemoryStore();
 * const rec = await takeBackup(ctx, { store, identity, createdAt: new Date() });
 * ```
 */
export async function takeBackup(ctx: FlasherContext, opts: BackupOptions): Promise<BackupRecord> {
  const data = new Uint8Array(ctx.flashSize);
  const info = await saveBackup(ctx, opts, (chunk, offset) => data.set(chunk, offset));
  return { ...info, data };
}

function parseSidecar(bytes: Uint8Array): BackupSidecar | null {
  try {
    const o = JSON.parse(new TextDecoder().decode(bytes));
    if (o?.tool !== "bekenlab" || typeof o.file !== "string" || typeof o.crc32 !== "string") return null;
    return o as BackupSidecar;
  } catch {
    return null;
  }
}

/**
 * Find an earlier whole-flash backup of this chip (same chip mode, flash ID and key) that the
 * chip still holds exactly: one CheckCRC of the whole flash, compared with the CRCs of every
 * candidate; the newest match whose stored bytes still have that CRC is returned, `null` when
 * none (or the target has no chip CRC, or the store cannot list). Costs nothing on the wire
 * when there is no candidate.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const store: BackupStore;
 * declare const identity: ChipIdentity;
 * declare const opts: BackupOptions;
 * const backup = await reuseBackup(ctx, { store, identity }) ?? await saveBackup(ctx, opts);
 * ```
 */
export async function reuseBackup(
  ctx: FlasherContext,
  opts: { store: BackupStore; identity: ChipIdentity },
): Promise<BackupInfo | null> {
  const { store, identity } = opts;
  if (!ctx.target.hasChipCrc || !store.list) return null;
  let entries: StoreEntry[];
  const candidates: { entry: StoreEntry; sidecar: BackupSidecar; image: StoreEntry }[] = [];
  try {
    entries = await store.list();
    const byName = new Map(entries.map((e) => [e.name, e]));
    for (const entry of entries) {
      if (!entry.name.endsWith(".json") || entry.name.endsWith(".journal.json")) continue;
      const sidecar = parseSidecar(await store.get(entry.location));
      const image = sidecar && byName.get(sidecar.file);
      if (
        !sidecar || !image || sidecar.addr !== 0 || sidecar.size !== ctx.flashSize ||
        sidecar.chip !== identity.chip || sidecar.flashId !== identity.flashId || sidecar.key !== identity.key
      ) continue;
      candidates.push({ entry, sidecar, image });
    }
  } catch (e) {
    ctx.onEvent?.({ type: "note", message: `could not look for an earlier backup: ${reasonOf(e)}` });
    return null;
  }
  if (candidates.length === 0) return null;
  const meter = startAccounting(ctx, "backup");
  const chip = crcHex(await withRetries(ctx, "backup", 0, 3, () => ctx.target.crc(0, ctx.flashSize)));
  const matching = candidates
    .filter((c) => c.sidecar.crc32 === chip)
    .sort((a, b) => (a.sidecar.createdAt < b.sidecar.createdAt ? 1 : -1));
  for (const c of matching) {
    let scan;
    try {
      scan = await scanSource(storedSource(store, c.image.location, ctx.flashSize));
    } catch (e) {
      ctx.onEvent?.({ type: "note", message: `could not read ${c.image.location}: ${reasonOf(e)}` });
      continue;
    }
    if (crcHex(scan.crc32) !== chip) continue;
    const info: BackupInfo = {
      location: c.image.location,
      sidecar: c.entry.location,
      base: c.entry.name.replace(/\.json$/, ""),
      size: ctx.flashSize,
      crc32: scan.crc32,
      sectorCrcs: scan.sectorCrcs,
      reused: true,
      accounting: meter.finish(ctx.flashSize, { wire: false }),
    };
    ctx.onEvent?.({
      type: "backup",
      location: info.location,
      size: info.size,
      crc32: info.crc32,
      reused: true,
    });
    return info;
  }
  return null;
}

/** What {@link saveAfterImage} needs. */
export interface AfterImageOptions extends BackupOptions {
  /** The backup of the job (what the flash held before). */
  backup: { location: string; size: number };
  /** What the job put into its range (verified). */
  content: FlashContent;
}

/**
 * Save what the flash holds after a verified job, without touching the chip: the job's backup
 * with the job's range replaced by its content, streamed, checked, with an "after-write"
 * sidecar. A later job finds it with {@link reuseBackup}.
 */
export async function saveAfterImage(ctx: FlasherContext, opts: AfterImageOptions): Promise<BackupInfo> {
  const base = `${opts.base ?? backupBaseName(opts.identity, opts.createdAt)}.after`;
  const file = `${base}.bin`;
  const { content } = opts;
  const before = storedSource(opts.store, opts.backup.location, opts.backup.size);
  const size = opts.backup.size;
  const sectorCrcs = new Uint32Array(size / SECTOR);
  const meter = startAccounting(ctx, "backup");
  const saved = await storeChecked(
    opts.store,
    base,
    file,
    async (w) => {
      let crc = 0;
      const buf = new Uint8Array(STREAM_CHUNK);
      for (let o = 0; o < size; o += STREAM_CHUNK) {
        const n = Math.min(STREAM_CHUNK, size - o);
        const chunk = buf.subarray(0, n);
        chunk.set(await before.read(o, n));
        const from = Math.max(o, content.addr);
        const to = Math.min(o + n, content.end);
        if (from < to) chunk.set(await content.bytes(from, to - from), from - o);
        for (let s = 0; s < n; s += SECTOR) {
          sectorCrcs[(o + s) / SECTOR] = crc32(chunk.subarray(s, s + SECTOR));
        }
        crc = crc32(chunk, crc);
        await w.write(chunk);
      }
      return { size, crc32: crc };
    },
    (n, crc) =>
      sidecarOf(opts.identity, opts.createdAt, file, n, crc, {
        kind: "after-write",
        from: opts.backup.location,
      }),
  );
  await pruneAfterImages(ctx, opts.store, opts.identity, [saved.location, opts.backup.location]);
  return {
    ...saved,
    base,
    sectorCrcs,
    reused: false,
    accounting: meter.finish(size, { wire: false }),
  };
}

/**
 * Delete the after-write images of the same chip that `keep` does not name. They are caches
 * derived from a backup and a verified job, so only the newest one and the one the current job
 * started from (its undo point) are worth their flash-sized file; backups read from the chip
 * are never deleted.
 */
async function pruneAfterImages(
  ctx: FlasherContext,
  store: BackupStore,
  identity: ChipIdentity,
  keep: readonly string[],
): Promise<void> {
  if (!store.list || !store.remove) return;
  try {
    const entries = await store.list();
    const byName = new Map(entries.map((e) => [e.name, e]));
    // an unfinished job's backup is what its resume restores from: never pruned
    const held = new Set(keep);
    for (const entry of entries) {
      if (!entry.name.endsWith(".journal.json")) continue;
      try {
        const j = JSON.parse(new TextDecoder().decode(await store.get(entry.location)));
        if (j?.state !== "verified" && typeof j?.backup === "string") held.add(j.backup);
      } catch {
        // a torn journal names nothing to keep
      }
    }
    for (const entry of entries) {
      if (!entry.name.endsWith(".after.json")) continue;
      const sidecar = parseSidecar(await store.get(entry.location));
      const image = sidecar && byName.get(sidecar.file);
      if (
        !sidecar || !image || sidecar.kind !== "after-write" || held.has(image.location) ||
        sidecar.chip !== identity.chip || sidecar.flashId !== identity.flashId || sidecar.key !== identity.key
      ) continue;
      await store.remove(image.location);
      await store.remove(entry.location);
    }
  } catch (e) {
    ctx.onEvent?.({
      type: "note",
      message: `could not remove superseded after-write images: ${reasonOf(e)}`,
    });
  }
}
