/**
 * The names backups are saved under: chip, flash ID and time, made unique in the store.
 *
 * @module
 */

import type { ChipIdentity } from "./sidecar.ts";
import type { BackupStore } from "./store.ts";

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
  return freeName(base, (await store.list().catch(() => [])).map((e) => e.name));
}

/**
 * `base`, or `base-2`, `base-3`, … : the first that no entry of `store` is named after
 * (`<name>.<ext>`), so a second save in the same job or second never replaces the first. A
 * store that cannot list its entries gets `base`.
 */
export async function freshName(store: BackupStore, base: string): Promise<string> {
  return store.list ? freeName(base, (await store.list()).map((e) => e.name)) : base;
}

function freeName(base: string, names: readonly string[]): string {
  let candidate = base;
  for (let n = 2; names.some((name) => name.startsWith(`${candidate}.`)); n++) candidate = `${base}-${n}`;
  return candidate;
}
