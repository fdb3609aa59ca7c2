/**
 * incremental-rewrite: re-flash an image that differs from what the chip holds in two
 * sectors; only those two may be erased and programmed, and the result must verify.
 *
 * @module
 */

import { SECTOR } from "../../core/target.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { appImage, withChangedSectors } from "../images.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { appStart, expectVirtualFlash, programOptions, withConnection } from "./common.ts";

/** Sectors of the image the second write changes. */
const CHANGED = [3, 17];

/** The incremental-rewrite scenario. */
export const incrementalRewrite: Scenario = {
  id: "incremental-rewrite",
  title: "re-flash with 2 changed sectors: only those are rewritten",
  needs: { path: "any", destructive: true },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const addr = appStart(ctx.profile);
      const first = appImage(ctx.profile, 2);
      await writeFlash(c.flasher, first, { ...programOptions(c), addr });
      const again = await writeFlash(c.flasher, first, { ...programOptions(c), addr });
      expect(
        again.changed === 0 && again.sectorWrites === 0 && again.sectorErases === 0,
        `an unchanged image rewrote ${again.changed} sectors`,
      );
      const second = withChangedSectors(first, CHANGED, `${ctx.profile.id}/incremental`);
      const r = await writeFlash(c.flasher, second, { ...programOptions(c), addr });
      const total = second.length / SECTOR;
      expect(r.changed === CHANGED.length, `${r.changed} sectors rewritten, expected ${CHANGED.length}`);
      expect(r.unchanged === total - CHANGED.length, `${r.unchanged} sectors left alone of ${total}`);
      expect(r.blockErases === 0, `${r.blockErases} 64 KiB erases for 2 changed sectors`);
      expect(
        r.sectorErases === CHANGED.length + r.retries && r.sectorWrites === CHANGED.length + r.retries,
        `${r.sectorErases} erases and ${r.sectorWrites} writes for ${CHANGED.length} sectors (${r.retries} retries)`,
      );
      expectVirtualFlash(ctx, addr, second, "incremental write");
      ctx.note(
        `sectors ${
          CHANGED.map((s) => hex(addr + s * SECTOR)).join(", ")
        } rewritten, ${r.unchanged} skipped; ` +
          `${r.accounting.roundTrips} round trips`,
      );
    }),
};
