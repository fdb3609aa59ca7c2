/**
 * baud-ladder: link at 115200 and switch to every rate up to 3 000 000; each rate either
 * works (a sector read matches the chip's CRC), or falls back to 115200 and says so, or, when
 * the chip's 26 MHz UART divisor cannot make it (3 000 000 comes out as 3 250 000), is refused
 * as a usage error before the port is touched.
 *
 * @module
 */

import { crc32 } from "../../core/crc.ts";
import { BOOT_BAUD } from "../../core/uart/connect.ts";
import { baudWorks, realBaud } from "../../core/uart/baud.ts";
import { FlashError } from "../../core/errors.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { appStart, withConnection } from "./common.ts";

/** Rates the Beken GUI offers (docs/uart.md §4.5). */
export const BAUD_LADDER = [115200, 230400, 460800, 921600, 1_500_000, 2_000_000, 3_000_000] as const;

/** The emulated adapter's ceiling. */
const VIRTUAL_MAX_BAUD = 2_000_000;

/** The baud-ladder scenario. */
export const baudLadder: Scenario = {
  id: "baud-ladder",
  title: "115200 → 3 000 000 baud: each rate works, falls back to 115200, or is refused as unmakeable",
  needs: { path: "uart", destructive: false, virtualSetup: () => ({ maxBaud: VIRTUAL_MAX_BAUD }) },
  async run(ctx) {
    const steps: string[] = [];
    const addr = appStart(ctx.profile);
    for (const rate of BAUD_LADDER) {
      if (!baudWorks(rate)) {
        const refused = await withConnection(ctx, () => Promise.resolve(), { baud: rate }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(
          refused instanceof FlashError && refused.code === "USAGE",
          `${rate} baud, which the chip makes as ${realBaud(rate)}, was ${
            refused ? `refused with ${String(refused)}` : "used"
          } instead of refused as a usage error`,
        );
        steps.push(`${rate} refused (the chip makes ${realBaud(rate)})`);
        continue;
      }
      await withConnection(ctx, async (c) => {
        const got = c.uart!.baud;
        const fellBack = c.events.some((e) => e.type === "baud-fallback");
        if (got !== rate) {
          expect(
            got === BOOT_BAUD && fellBack,
            `asked for ${rate}, running at ${got} without a fallback notice`,
          );
        }
        if (ctx.bench.virtualSetups) {
          expect(
            (rate > VIRTUAL_MAX_BAUD) === (got !== rate),
            `${rate} baud: ${
              got === rate ? "switched" : "fell back"
            } on an adapter that stops at ${VIRTUAL_MAX_BAUD}`,
          );
        }
        const data = await c.target.readSector(addr);
        const chip = await c.target.crc(addr, data.length);
        expect(
          chip === crc32(data),
          `at ${got} baud the sector read back with CRC ${hex(crc32(data))}, chip says ${hex(chip)}`,
        );
        steps.push(got === rate ? `${rate} ok` : `${rate} → fell back to ${got}`);
      }, { baud: rate });
    }
    ctx.note(steps.join(", "));
  },
};
