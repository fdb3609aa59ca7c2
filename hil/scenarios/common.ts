/**
 * Helpers the scenarios share: a connection used for one block of work, the options every
 * write or erase runs with (a backup into memory, as users get one on disk), and the regions
 * scenarios touch.
 *
 * @module
 */

import type { ChipProfile } from "../../core/chips/profiles.ts";
import { MemoryStore } from "../../core/flasher/store.ts";
import type { ProgramOptions } from "../../core/flasher/program.ts";
import { BLOCK } from "../../core/target.ts";
import { crc32 } from "../../core/crc.ts";
import type { Connection, ConnectOptions } from "../bench.ts";
import { expect, hex, type ScenarioContext } from "../scenario.ts";

/** Connect, run `fn`, close (also when `fn` fails). */
export async function withConnection<T>(
  ctx: ScenarioContext,
  fn: (c: Connection) => Promise<T>,
  opts: ConnectOptions = {},
): Promise<T> {
  const c = await ctx.connect(opts);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** Backup-first options, the backup kept in memory. */
export function programOptions(c: Connection): ProgramOptions & { store: MemoryStore } {
  return { store: new MemoryStore(), identity: c.identity, createdAt: new Date() };
}

/** Where the application lives: the address write scenarios use. */
export function appStart(profile: ChipProfile): number {
  return profile.layout.app.start;
}

/**
 * An erase range that has a whole 64 KiB block in the middle and two sectors on each side,
 * inside the application region.
 */
export function eraseRange(profile: ChipProfile): { addr: number; size: number } {
  const block = Math.ceil(appStart(profile) / BLOCK) * BLOCK + BLOCK;
  return { addr: block - 0x2000, size: BLOCK + 0x4000 };
}

/** Fail unless the emulated flash (when there is one) holds `data` at `addr`. */
export function expectVirtualFlash(ctx: ScenarioContext, addr: number, data: Uint8Array, what: string): void {
  const v = ctx.bench.virtualChip;
  if (!v) return;
  const got = v.nor.read(addr, data.length);
  expect(
    crc32(got) === crc32(data),
    `${what}: the emulated flash at ${hex(addr)} does not hold the expected ${data.length} bytes`,
  );
}
