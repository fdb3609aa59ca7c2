/**
 * unprotect: a chip whose flash starts fully block-protected (as some vendor firmware
 * leaves it) is written anyway: BootROM loaders and the SPI path clear the protect bits
 * (and only then write), basic loaders unprotect by themselves. Needs the emulator to
 * start the chip protected.
 *
 * @module
 */

import type { ChipProfile } from "../../core/chips/profiles.ts";
import { verifyFlash } from "../../core/flasher/verify.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { type FlashPart, flashPartFor } from "../../core/spi/jedec.ts";
import { describeStatus, needsUnprotect, srWordOf } from "../../core/spi/status.ts";
import { appImage } from "../images.ts";
import { expect, type Scenario } from "../scenario.ts";
import { appStart, expectVirtualFlash, programOptions, withConnection } from "./common.ts";

/** The status word with every block-protect bit set (the whole array protected). */
export function protectAll(part: FlashPart): number {
  const { bpShift, bpBits } = part.layout;
  return ((1 << bpBits) - 1) << bpShift;
}

function partOf(profile: ChipProfile): FlashPart {
  return flashPartFor(profile.defaultFlashId);
}

/** The unprotect scenario. */
export const unprotectScenario: Scenario = {
  id: "unprotect",
  title: "write to a fully block-protected flash: protect bits cleared first",
  needs: {
    path: "any",
    destructive: true,
    virtualSetup: (profile) => ({ protect: protectAll(partOf(profile)) }),
    virtualOnly: true,
    chip: (p) => partOf(p).layout.bpBits > 0 ? null : `the ${partOf(p).name} has no block protection`,
  },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const part = partOf(ctx.profile);
      const clears = c.path === "spi" || c.uart?.identity.personality === "FULL";
      const before = (await c.target.info()).statusRegisters;
      if (clears && before) {
        expect(needsUnprotect(part, srWordOf(before)), `flash not protected at the start (SR ${before})`);
        ctx.note(`before: ${describeStatus(part, srWordOf(before))}`);
      }
      const addr = appStart(ctx.profile);
      const image = appImage(ctx.profile, 3);
      const r = await writeFlash(c.flasher, image, { ...programOptions(c), addr });
      await verifyFlash(c.flasher, image, { addr });
      expectVirtualFlash(ctx, addr, image, "write to protected flash");
      if (clears) {
        expect(r.unprotect?.wrote === true, "the status register was not written before the write");
        const after = (await c.target.info()).statusRegisters;
        expect(
          after !== null && !needsUnprotect(part, srWordOf(after)),
          `still protected after: SR ${after}`,
        );
        ctx.note(`after: ${describeStatus(part, srWordOf(after!))}`);
      } else {
        expect(r.unprotect?.wrote !== true, "a basic loader's path wrote the status register");
        ctx.note("the basic loader cleared the protection by itself; image verified");
      }
    }),
};
