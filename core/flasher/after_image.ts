/**
 * After-write images: after a verified job the new content of the flash is saved like a backup
 * (the job's backup with the job's range replaced by what it wrote), without touching the chip,
 * so the next job of a develop–flash loop finds it by `reuseBackup` and needs no read at all.
 * Superseded images of the same chip are pruned.
 *
 * @module
 */

import { crc32 } from "../crc.ts";
import { SECTOR } from "../target.ts";
import { startAccounting } from "./accounting.ts";
import { type BackupInfo, type BackupOptions, storeChecked } from "./backup_entry.ts";
import { backupBaseName } from "./backup_name.ts";
import type { FlasherContext } from "./context.ts";
import { reasonOf } from "./retry.ts";
import { type ChipIdentity, parseSidecar, sameChip, sidecarOf } from "./sidecar.ts";
import { type FlashContent, STREAM_CHUNK } from "./source.ts";
import { type BackupStore, storedSource } from "./store.ts";

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
        !sameChip(sidecar, identity)
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
