/**
 * spi-recovery: a chip whose bootloader was erased (it no longer boots, and basic loaders no
 * longer answer on UART) comes back over SPI: enter SPI mode, write the bootloader at 0
 * (the bootloader window is writable on this path with --overwrite-bootloader), verify, and
 * where the bench also reaches the UART, find the loader identifying the bootloader again.
 * On the emulator the chip starts bricked; on a bench board the scenario first saves and
 * erases the real bootloader (destructive).
 *
 * @module
 */

import { eraseRegion } from "../../core/flasher/erase.ts";
import { readFlash } from "../../core/flasher/read.ts";
import { verifyFlash } from "../../core/flasher/verify.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { crc32 } from "../../core/crc.ts";
import { flashPartFor } from "../../core/spi/jedec.ts";
import { defaultImage } from "../../emulator/image.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { programOptions, withConnection } from "./common.ts";

/** The spi-recovery scenario. */
export const spiRecovery: Scenario = {
  id: "spi-recovery",
  title: "recover a chip with an erased bootloader over SPI",
  needs: { path: "spi", destructive: true, virtualSetup: () => ({ eraseBootloader: true }) },
  async run(ctx) {
    const end = ctx.profile.layout.bootloader.end;
    const blank = crc32(new Uint8Array(end).fill(0xff));
    const bootloader = await withConnection(ctx, async (c) => {
      let image: Uint8Array;
      if (ctx.bench.virtualSetups) {
        image = defaultImage(ctx.profile, flashPartFor(ctx.profile.defaultFlashId).size).slice(0, end);
      } else {
        image = (await readFlash(c.flasher, { addr: 0, size: end })).data;
        await eraseRegion(c.flasher, { ...programOptions(c), addr: 0, size: end, overwriteBootloader: true });
      }
      expect(await c.target.crc(0, end) === blank, "the bootloader region is not erased at the start");
      const r = await writeFlash(c.flasher, image, {
        ...programOptions(c),
        addr: 0,
        overwriteBootloader: true,
      });
      await verifyFlash(c.flasher, image, { addr: 0 });
      ctx.note(`bootloader written over SPI: ${r.changed} sectors, CRC ${hex(crc32(image))}`);
      return image;
    });
    if (!ctx.bench.paths.includes("uart")) return;
    await withConnection(ctx, (c) => {
      const id = c.uart!.identity;
      if (ctx.profile.bootloader) {
        expect(
          id.bootloader === ctx.profile.bootloader,
          `UART finds bootloader ${id.bootloader} after recovery`,
        );
      }
      const probe = bootloader.subarray(0, ctx.profile.crcEndInclusive ? 257 : 256);
      expect(
        id.bootloaderCrc === crc32(probe),
        `bootloader CRC ${hex(id.bootloaderCrc)} over UART after recovery`,
      );
      ctx.note(`UART loader answers again: ${id.bootloader ?? `bootloader CRC ${hex(id.bootloaderCrc)}`}`);
      return Promise.resolve();
    }, { path: "uart" });
  },
};
