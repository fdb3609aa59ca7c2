/**
 * (d) In-process wall time of the whole job on a 4 MiB virtual chip with no pacing: write a
 * 4 MiB image with the CLI's defaults (backup read and saved to disk first, erase, program,
 * checks, final verify), then verify it again. The image and the backups are real files. This
 * is how fast the emulator lets tests and the HIL matrix run, not a modelled time.
 *
 * @module
 */

import { join } from "node:path";
import { DirectoryStore, openImage } from "../core/flasher/files.ts";
import { chipById } from "../core/chips/profiles.ts";
import { createContext } from "../core/flasher/context.ts";
import { verifyFlash } from "../core/flasher/verify.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { pseudoRandom } from "./uart_jobs.ts";

/** W25Q32 (4 MiB), the part the flash timings come from. */
const W25Q32 = [0xef, 0x40, 0x16];

/** What (d) measured. */
export interface CycleFigure {
  bytes: number;
  wallMs: number;
  /** The same job in modelled time, for scale. */
  modelledMs: number;
}

/** Run (d) in `dir`. */
export async function virtualCycle(dir: string): Promise<CycleFigure> {
  const size = 4 << 20;
  const path = join(dir, "cycle.bin");
  await Deno.writeFile(path, pseudoRandom(size, 4));
  const t0 = performance.now();
  const v = await createVirtualChip({ chip: "bk7231n", flashId: W25Q32 });
  const link = v.link();
  const baud = 921600;
  const { target } = await openUartTarget(link, { chip: chipById("bk7231n"), baud });
  const ctx = await createContext(target, link.clock, { baud });
  const image = await openImage(path);
  const m0 = link.clock.now();
  try {
    await writeFlash(ctx, image, {
      addr: 0,
      overwriteBootloader: true,
      store: new DirectoryStore(join(dir, "cycle-backups")),
      identity: { chip: "BK7231N", flashId: "ef4016", key: null },
      createdAt: new Date(Date.UTC(2026, 0, 2)),
      saveResult: true,
    });
    await verifyFlash(ctx, image, { addr: 0 });
  } finally {
    image.close();
    await target.close();
  }
  return { bytes: size, wallMs: performance.now() - t0, modelledMs: link.clock.now() - m0 };
}
