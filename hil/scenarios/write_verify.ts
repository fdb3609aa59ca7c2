/**
 * write-verify: write an application image where firmware goes, then prove it is there by
 * CRC (verify) and by reading it back.
 *
 * @module
 */

import { readFlash } from "../../core/flasher/read.ts";
import { verifyFlash } from "../../core/flasher/verify.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { crc32 } from "../../core/crc.ts";
import { appImage } from "../images.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { appStart, expectVirtualFlash, programOptions, withConnection } from "./common.ts";

/** The write-verify scenario. */
export const writeVerify: Scenario = {
  id: "write-verify",
  title: "write an app image, verify by CRC and by read-back",
  needs: { path: "any", destructive: true },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const addr = appStart(ctx.profile);
      const image = appImage(ctx.profile, 1);
      const report = await writeFlash(c.flasher, image, { ...programOptions(c), addr });
      expect(report.backup !== null, "no backup was taken before writing");
      await verifyFlash(c.flasher, image, { addr });
      const back = await readFlash(c.flasher, { addr, size: image.length });
      expect(crc32(back.data) === crc32(image), `read-back CRC ${hex(back.crc32)} differs from the image's`);
      expectVirtualFlash(ctx, addr, image, "write");
      ctx.note(
        `${image.length / 1024} KiB at ${hex(addr)}: ${report.changed} sectors written, ` +
          `${report.blockErases} block + ${report.sectorErases} sector erases`,
      );
    }),
};
