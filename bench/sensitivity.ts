/**
 * How much the headline figures lean on the one flagged assumption of the timing model, the
 * chip's CRC speed (8 MB/s assumed; bk7231tools budgets 400 kB/s): (a) and (c) again with
 * the slower CRC, through the core with the CLI's defaults (the CLI cannot change the model).
 *
 * @module
 */

import { chipById } from "../core/chips/profiles.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import { createContext, type FlasherContext } from "../core/flasher/context.ts";
import { readFlash } from "../core/flasher/read.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { pseudoRandom } from "./uart_jobs.ts";

/** What the slower CRC gives. */
export interface SensitivityFigure {
  crcBytesPerSec: number;
  backupRatio921600: number;
  backupRatio2000000: number;
  incrementalSpeedup: number;
}

/** What else a figure assumes: the chip (its loader family decides read-ahead) and the adapter. */
export interface SensitivityOptions {
  chip?: string;
  /** Force read-ahead on or off (default: as the loader family allows). */
  readAhead?: boolean;
  usbTurnaroundMs?: number;
}

let assumed: SensitivityOptions = {};

async function open(
  baud: number,
  crcBytesPerSec: number,
): Promise<{ ctx: FlasherContext; now: () => number }> {
  const chip = assumed.chip ?? "bk7231n";
  const timing = {
    crcBytesPerSec,
    ...(assumed.usbTurnaroundMs ? { usbTurnaroundMs: assumed.usbTurnaroundMs } : {}),
  };
  const v = await createVirtualChip({ chip, timing });
  const link = v.link();
  const { target } = await openUartTarget(link, { chip: chipById(chip), baud, readAhead: assumed.readAhead });
  return { ctx: await createContext(target, link.clock, { baud }), now: () => link.clock.now() };
}

/** Run (a) and (c) with the chip CRC at `crcBytesPerSec`. */
export async function sensitivity(
  crcBytesPerSec = 400_000,
  options: SensitivityOptions = {},
): Promise<SensitivityFigure> {
  assumed = options;
  const ratios: number[] = [];
  for (const baud of [921600, 2_000_000]) {
    const { ctx } = await open(baud, crcBytesPerSec);
    const r = await readFlash(ctx, { addr: 0, size: ctx.flashSize });
    ratios.push(r.accounting.floorRatio!);
  }
  const { ctx, now } = await open(921600, crcBytesPerSec);
  const store = new MemoryStore();
  const identity = { chip: "BK7231N", flashId: "eb6015", key: null };
  let second = 0;
  const write = async (data: Uint8Array) => {
    const t0 = now();
    await writeFlash(ctx, data, {
      addr: 0x11000,
      store,
      identity,
      createdAt: new Date(Date.UTC(2026, 0, 4, 0, 0, second++)),
      saveResult: true,
    });
    return now() - t0;
  };
  const size = ctx.flashSize - 0x11000;
  await write(pseudoRandom(size, 1));
  const b = pseudoRandom(size, 2);
  const full = await write(b);
  const c = b.slice();
  const sectors = size / 0x1000;
  const pick = pseudoRandom(4 * sectors, 3);
  const changed = new Set<number>();
  for (let i = 0; changed.size < Math.round(sectors * 0.05); i += 4) {
    changed.add(((pick[i] << 16) | (pick[i + 1] << 8) | pick[i + 2]) % sectors);
  }
  for (const s of changed) c[s * 0x1000 + 100] ^= 0xa5;
  const incremental = await write(c);
  return {
    crcBytesPerSec,
    backupRatio921600: ratios[0],
    backupRatio2000000: ratios[1],
    incrementalSpeedup: full / incremental,
  };
}
