/**
 * The erase planner: which 64 KiB blocks of a range get one block erase (0xD8) instead of their
 * 4 KiB sector erases. A block erase is only used for a block lying wholly inside the range, so
 * nothing outside the range is ever erased.
 *
 * @example
 * ```ts
 * import { planBlocks } from "./erase_plan.ts";
 * // Sectors 0x10000 and 0x11000 differ in a range 0x10000..0x30000:
 * planBlocks([0x10000, 0x11000], 0x10000, 0x30000, "covered");
 * // [{ block: 0x10000, sectors: [0x10000, 0x11000], useBlockErase: true }]
 * ```
 *
 * @module
 */

import { BLOCK, SECTOR } from "../target.ts";
import { alignDown } from "./range.ts";

/** When a 64 KiB erase replaces 4 KiB erases in a block lying wholly inside the range. */
export type BlockPolicy =
  /** Every sector of the block differs (writes: nothing that matches is erased). */
  | "all-differ"
  /** At least one sector differs (erases: the whole block must end up blank anyway). */
  | "covered";

/** The sectors of one 64 KiB block that need erasing, and how. */
export interface BlockWork {
  /** 64 KiB-aligned block address. */
  block: number;
  /** Sector addresses of the block that need erasing, in the order given. */
  sectors: number[];
  /** Erase the whole block at once instead of sector by sector. */
  useBlockErase: boolean;
}

/**
 * Group the sectors that need erasing (`changed`, sector addresses inside `[start, end)`) by
 * block, in order of first appearance, and choose a block erase where `policy` allows it and the
 * block lies wholly inside the range.
 */
export function planBlocks(
  changed: readonly number[],
  start: number,
  end: number,
  policy: BlockPolicy,
): BlockWork[] {
  const byBlock = new Map<number, number[]>();
  for (const s of changed) {
    const b = alignDown(s, BLOCK);
    const list = byBlock.get(b) ?? [];
    list.push(s);
    byBlock.set(b, list);
  }
  return [...byBlock.entries()].map(([block, sectors]) => {
    const inside = block >= start && block + BLOCK <= end;
    const useBlockErase = inside && (policy === "covered" || sectors.length === BLOCK / SECTOR);
    return { block, sectors, useBlockErase };
  });
}
