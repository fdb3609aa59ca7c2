/**
 * erase-region: blank a range that holds a whole 64 KiB block and loose sectors on both
 * sides: one block erase, 4 KiB erases for the rest, and the range reads blank.
 *
 * @module
 */

import { eraseRegion } from "../../core/flasher/erase.ts";
import { verifyFlash } from "../../core/flasher/verify.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { pseudoRandom } from "../images.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { eraseRange, expectVirtualFlash, programOptions, withConnection } from "./common.ts";

/** The erase-region scenario. */
export const eraseRegionScenario: Scenario = {
  id: "erase-region",
  title: "erase a range spanning a 64 KiB block: block + sector erases, reads blank",
  needs: { path: "any", destructive: true },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const { addr, size } = eraseRange(ctx.profile);
      if (!ctx.bench.virtualSetups) {
        // a bench chip may hold blank sectors here; the emulator's default image holds data
        const fill = pseudoRandom(`${ctx.profile.id}/erase`, size);
        await writeFlash(c.flasher, fill, { ...programOptions(c), addr });
      }
      const r = await eraseRegion(c.flasher, { ...programOptions(c), addr, size });
      expect(r.blockErases === 1, `${r.blockErases} block erases, expected 1 for the aligned block`);
      expect(
        r.sectorErases === 4 + r.retries,
        `${r.sectorErases} sector erases, expected 4 for the loose sectors`,
      );
      expect(r.sectorWrites === 0, `an erase programmed ${r.sectorWrites} sectors`);
      const blank = new Uint8Array(size).fill(0xff);
      await verifyFlash(c.flasher, blank, { addr });
      expectVirtualFlash(ctx, addr, blank, "erase");
      ctx.note(`${hex(addr)}..${hex(addr + size - 1)}: 1 block + ${r.sectorErases} sector erases`);
    }),
};
