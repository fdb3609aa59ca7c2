/**
 * bootloader-guard: writes and erases reaching into 0x0..0x10FFF are refused before a single
 * byte goes to the chip, unless the user says --overwrite-bootloader; on loaders that
 * protect their own window (BK7231T/U, BK7252) even the override is refused, by the target.
 * The bootloader's CRC is the same afterwards.
 *
 * @module
 */

import { eraseRegion } from "../../core/flasher/erase.ts";
import { SECTOR } from "../../core/target.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { pseudoRandom } from "../images.ts";
import { expect, expectFlashError, hex, type Scenario } from "../scenario.ts";
import { programOptions, withConnection } from "./common.ts";

/** The bootloader-guard scenario. */
export const bootloaderGuard: Scenario = {
  id: "bootloader-guard",
  title: "writes/erases into the bootloader are refused, nothing sent, CRC unchanged",
  needs: { path: "any", destructive: false },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const end = ctx.profile.layout.bootloader.end;
      const before = await c.target.crc(0, end);
      const sent = c.target.stats.bytesOut;
      await expectFlashError(
        "BOOTLOADER_GUARD",
        "write-flash at 0x0",
        () => writeFlash(c.flasher, pseudoRandom("guard", 2 * SECTOR), { ...programOptions(c), addr: 0 }),
      );
      await expectFlashError(
        "BOOTLOADER_GUARD",
        `erase-region across ${hex(end)}`,
        () => eraseRegion(c.flasher, { ...programOptions(c), addr: end - SECTOR, size: 2 * SECTOR }),
      );
      expect(
        c.target.stats.bytesOut === sent,
        `${c.target.stats.bytesOut - sent} bytes sent for refused operations`,
      );
      ctx.note("refused without --overwrite-bootloader; nothing sent");
      const loaderEnd = ctx.profile.loaderProtectedEnd;
      if (c.path === "uart" && loaderEnd > 0 && ctx.bench.kind === "virtual") {
        await expectFlashError(
          "BOOTLOADER_GUARD",
          "write-flash at 0x0 with --overwrite-bootloader",
          () =>
            writeFlash(c.flasher, pseudoRandom("guard", SECTOR), {
              ...programOptions(c),
              noBackup: true,
              addr: 0,
              overwriteBootloader: true,
            }),
        );
        ctx.note(
          `the ${ctx.profile.name} loader's own window (below ${hex(loaderEnd)}) refused the override`,
        );
      }
      const after = await c.target.crc(0, end);
      expect(after === before, `bootloader CRC changed: ${hex(before)} → ${hex(after)}`);
    }),
};
