/**
 * power-cycle: connect, remember what the chip holds, cut its power (RTS or CH341A D2 on CEN,
 * or the user's relay command), connect again and find the same chip and the same flash. On
 * UART the chip is left at the working baud rate before the cut: only a real reset brings
 * it back to 115200, so linking again at once, without any reset of our own, proves the
 * power control reached the chip.
 *
 * @module
 */

import { BLOCK } from "../../core/target.ts";
import { BOOT_BAUD } from "../../core/uart/connect.ts";
import type { Connection } from "../bench.ts";
import { expect, hex, type Scenario } from "../scenario.ts";
import { appStart } from "./common.ts";

/** The power-cycle scenario. */
export const powerCycle: Scenario = {
  id: "power-cycle",
  title: "power-cycle the chip, reconnect: same chip, same flash",
  needs: { path: "any", destructive: false, power: true },
  async run(ctx) {
    const addr = appStart(ctx.profile);
    const look = async (c: Connection) => ({
      crc: await c.target.crc(addr, BLOCK),
      size: (await c.target.info()).flashSize,
      id: c.uart?.identity.profile.id ?? null,
    });
    const first = await ctx.connect();
    const before = await look(first);
    const leftAt = first.uart?.baud ?? null;
    await first.close({ keepBaud: true });
    await ctx.bench.power!.cycle();
    const second = await ctx.connect();
    try {
      const after = await look(second);
      expect(
        after.id === before.id,
        `after the power cycle the chip identifies as ${after.id}, before as ${before.id}`,
      );
      expect(after.size === before.size, `flash size ${after.size} after, ${before.size} before`);
      expect(after.crc === before.crc, `CRC of ${hex(addr)}+64K changed across the power cycle`);
      if (leftAt !== null && leftAt !== BOOT_BAUD) {
        const helped = second.events.filter((e) => e.type === "reset");
        expect(
          helped.length === 0,
          `the chip was left at ${leftAt} baud and only answered after our own reset (${
            helped.map((e) => e.message).join("; ")
          }): the power control did not reach it`,
        );
      }
      ctx.note(`${ctx.bench.power!.description}; reconnected, CRC ${hex(after.crc)} unchanged`);
    } finally {
      await second.close();
    }
  },
};
