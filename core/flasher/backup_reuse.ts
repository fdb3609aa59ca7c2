/**
 * Reusing an earlier backup: a backup costs a read of the whole flash, so one taken earlier is
 * used instead when the chip still holds exactly its content (one CheckCRC of the whole flash
 * against the CRCs of the stored backups of the same chip).
 *
 * @module
 */

import { startAccounting } from "./accounting.ts";
import type { BackupInfo } from "./backup_entry.ts";
import type { FlasherContext } from "./context.ts";
import { reasonOf, withRetries } from "./retry.ts";
import { type BackupSidecar, type ChipIdentity, crcHex, parseSidecar, sameChip } from "./sidecar.ts";
import { scanSource } from "./source.ts";
import { type BackupStore, storedSource, type StoreEntry } from "./store.ts";

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
 * import type { BackupStore } from "./store.ts";
 * import type { ChipIdentity } from "./sidecar.ts";
 * import type { BackupOptions } from "./backup_entry.ts";
 * import { saveBackup } from "./backup.ts";
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
        !sameChip(sidecar, identity)
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
