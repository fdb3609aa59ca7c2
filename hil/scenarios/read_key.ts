/**
 * read-key: read the eFuse key through the SCTRL state machine twice and check it is stable
 * and fits the chip mode (the key the BK7231N must carry, zeros on a BK7231M).
 *
 * @module
 */

import { formatKey } from "../../core/chips/profiles.ts";
import { readKey } from "../../core/uart/efuse.ts";
import { expect, type Scenario } from "../scenario.ts";
import { withConnection } from "./common.ts";

/** The read-key scenario. */
export const readKeyScenario: Scenario = {
  id: "read-key",
  title: "read the eFuse key (stable, and the one the chip mode expects)",
  needs: {
    path: "uart",
    full: true,
    destructive: false,
    chip: (p) => p.efuseSize > 0 ? null : `the ${p.name} has no readable eFuse`,
  },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const client = c.uart!.client;
      const first = await readKey(client);
      const second = await readKey(client);
      expect(
        formatKey(first) === formatKey(second),
        `key read twice differs: ${formatKey(first)} / ${formatKey(second)}`,
      );
      const seen = c.uart!.identity.key;
      expect(seen !== null && formatKey(seen) === formatKey(first), "detection read another key");
      const expected = ctx.profile.key;
      if (expected?.check === "enforce") {
        expect(
          formatKey(first) === formatKey(expected.words),
          `key ${formatKey(first)} is not the ${ctx.profile.name} key ${formatKey(expected.words)}`,
        );
      }
      const virtual = ctx.bench.virtualChip;
      if (virtual) {
        const want = expected?.words ?? [0, 0, 0, 0];
        expect(
          formatKey(first) === formatKey(want),
          `key ${formatKey(first)}, the emulated eFuse holds ${formatKey(want)}`,
        );
      }
      ctx.note(`key ${formatKey(first)}`);
    }),
};
