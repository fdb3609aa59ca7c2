/**
 * detect: link and identify the chip the way every command starts, and check that what was
 * found is the chip mode under test.
 *
 * @module
 */

import { flashPartFor, formatJedecId } from "../../core/spi/jedec.ts";
import { expect, type Scenario } from "../scenario.ts";
import { withConnection } from "./common.ts";

/** The detect scenario. */
export const detect: Scenario = {
  id: "detect",
  title: "link, identify chip, bootloader and flash",
  needs: { path: "any", destructive: false },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const virtual = ctx.bench.kind === "virtual";
      const info = await c.target.info();
      expect(info.flashSize > 0, "the target reports no flash size");
      if (c.uart) {
        const id = c.uart.identity;
        expect(
          id.profile.id === ctx.profile.id,
          `identified as ${id.profile.id}, expected ${ctx.profile.id}`,
        );
        expect(
          id.personality === ctx.profile.personality,
          `loader answers as ${id.personality}, the ${ctx.profile.name} profile says ${ctx.profile.personality}`,
        );
        if (virtual && ctx.profile.bootloader) {
          expect(id.bootloader === ctx.profile.bootloader, `bootloader ${id.bootloader} not recognised`);
        }
        ctx.note(
          `${id.profile.name}, loader ${id.personality}, bootloader ${id.bootloader ?? "unknown"}, ` +
            `${id.flashId ? `flash ${formatJedecId(id.flashId)}, ` : ""}${info.flashSize / 0x100000} MiB`,
        );
        for (const w of id.warnings) ctx.note(`warning: ${w}`);
      } else {
        const entry = c.spi?.entry;
        expect(info.flashId !== null, "no JEDEC ID over SPI");
        ctx.note(
          `flash ${formatJedecId(info.flashId!)}, ${info.flashSize / 0x100000} MiB` +
            (entry ? `, SPI mode after ${entry.attempt} attempt(s)` : ""),
        );
      }
      if (virtual) {
        const part = flashPartFor(ctx.profile.defaultFlashId);
        expect(
          info.flashSize === part.size,
          `flash size ${info.flashSize}, the emulated part has ${part.size}`,
        );
        if (info.flashId) {
          expect(
            formatJedecId(info.flashId) === formatJedecId(ctx.profile.defaultFlashId),
            `flash ID ${formatJedecId(info.flashId)}, expected ${formatJedecId(ctx.profile.defaultFlashId)}`,
          );
        }
      }
    }),
};
