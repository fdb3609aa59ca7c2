/**
 * (e) The CH341A path: a whole-flash read of a virtual BK7231N in SPI mode through the real
 * CH341A driver and the virtual programmer (the same wiring as `--port ch341a:virtual:bk7231n`).
 * Counts USB bulk OUT transfers per 4 KiB and the modelled rate of one pass over the flash
 * (`check: false`) under the CH341A half of the timing model (core/timing.ts), and the time of
 * the default, checked read (every window read a second time and compared), which backups use.
 *
 * @module
 */

import { createContext } from "../core/flasher/context.ts";
import { readFlash } from "../core/flasher/read.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import { openSpiTarget } from "../core/spi/target.ts";
import { CH341A_TIMING } from "../core/timing.ts";
import { createVirtualCh341a } from "../emulator/ch341a.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

/** What (e) measured. */
export interface Ch341aFigure {
  sckHz: number;
  bytes: number;
  outTransfersPer4k: number;
  /** A lone 4 KiB sector read (`readSector`). */
  outTransfersSingle4k: number;
  kibPerSec: number;
  /** Raw SPI ceiling at this clock (8 clocks per byte, no command bytes). */
  ceilingKibPerSec: number;
  modelledMs: number;
  /** The default read (and every backup): each window read twice and compared. */
  checked: { kibPerSec: number; ms: number };
  /** Erasing and programming one 4 KiB sector (informational): OUT transfers and ms. */
  sectorWrite: { outTransfers: number; ms: number };
}

/** Run (e). */
export async function ch341aFigure(): Promise<Ch341aFigure> {
  const v = await createVirtualChip({ chip: "bk7231n" });
  const rig = createVirtualCh341a({ nor: v.nor, clock: v.clock, entry: {}, seed: 1 });
  const spi = await Ch341aSpi.open(rig.device, { clock: rig.clock, name: "ch341a:virtual:bk7231n" });
  const target = await openSpiTarget(spi, {});
  try {
    const ctx = await createContext(target, rig.clock, { baud: null });
    let before = rig.device.stats.outTransfers;
    await target.readSector(0x11000);
    const single = rig.device.stats.outTransfers - before;
    before = rig.device.stats.outTransfers;
    const r = await readFlash(ctx, { addr: 0, size: ctx.flashSize, check: false });
    const outs = rig.device.stats.outTransfers - before;
    const c = await readFlash(ctx, { addr: 0, size: ctx.flashSize });
    const data = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff);
    before = rig.device.stats.outTransfers;
    const t0 = rig.clock.now();
    await target.eraseSector(0x100000);
    await target.writeSector(0x100000, data);
    const sectorWrite = { outTransfers: rig.device.stats.outTransfers - before, ms: rig.clock.now() - t0 };
    return {
      sckHz: CH341A_TIMING.sckHz,
      bytes: ctx.flashSize,
      outTransfersPer4k: outs / (ctx.flashSize / 4096),
      outTransfersSingle4k: single,
      kibPerSec: r.accounting.kibPerSec!,
      ceilingKibPerSec: CH341A_TIMING.sckHz / 8 / 1024,
      modelledMs: r.accounting.elapsedMs,
      checked: { kibPerSec: c.accounting.kibPerSec!, ms: c.accounting.elapsedMs },
      sectorWrite,
    };
  } finally {
    await target.close();
  }
}
