/**
 * full-backup: the backup every write starts with: the whole flash read with CRC checks,
 * saved with its sidecar, and checked against the chip's own CRC of the whole flash where
 * the path has one (UART).
 *
 * @module
 */

import { takeBackup } from "../../core/flasher/backup.ts";
import { crc32 } from "../../core/crc.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { expectVirtualFlash, programOptions, withConnection } from "./common.ts";

/** The full-backup scenario. */
export const fullBackup: Scenario = {
  id: "full-backup",
  title: "back up the whole flash, checked by the chip's CRC",
  needs: { path: "any", destructive: false },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const opts = programOptions(c);
      const rec = await takeBackup(c.flasher, opts);
      expect(rec.size === c.flasher.flashSize, `backup holds ${rec.size} bytes of ${c.flasher.flashSize}`);
      expect(opts.store.entries.has(`${rec.base}.json`), "no sidecar next to the backup");
      if (c.target.hasChipCrc) {
        const chip = await c.target.crc(0, c.flasher.flashSize);
        expect(
          chip === crc32(rec.data),
          `chip CRC ${hex(chip)} differs from the backup's ${hex(crc32(rec.data))}`,
        );
      }
      expectVirtualFlash(ctx, 0, rec.data, "backup");
      const a = rec.accounting;
      ctx.note(
        `${rec.size / 1024} KiB, CRC ${hex(rec.crc32)}, ${a.roundTrips} round trips` +
          (a.kibPerSec ? `, ${a.kibPerSec.toFixed(1)} KiB/s` : ""),
      );
    }),
};
