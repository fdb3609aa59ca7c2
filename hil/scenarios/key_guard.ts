/**
 * key-guard: the BK7231N/BK7231M guard. Both chips answer with the same chip ID; only the
 * eFuse key tells them apart. Connecting in the other chip's mode must stop, both ways: BK7231N
 * mode on a chip without the Tuya key, and BK7231M mode on a chip whose key is the Tuya key
 * (the efuse names the chip). An explicit override must let the session continue with a
 * warning. Only a key that names no chip gets a mere warning in a "warn" mode.
 *
 * @module
 */

import { type ChipProfile, CHIPS, formatKey } from "../../core/chips/profiles.ts";
import { expect, expectFlashError, type Scenario } from "../scenario.ts";
import { withConnection } from "./common.ts";

/** The chip mode sharing `profile`'s chip ID that the key tells apart, if any. */
export function keySibling(profile: ChipProfile): ChipProfile | undefined {
  return CHIPS.find((c) =>
    c.id !== profile.id && c.personality === "FULL" && c.chipId !== null && c.chipId === profile.chipId &&
    (c.key !== null || profile.key !== null)
  );
}

/** The key-guard scenario. */
export const keyGuard: Scenario = {
  id: "key-guard",
  title: "N/M key guard: the sibling chip mode is refused or warned about",
  needs: {
    path: "uart",
    full: true,
    destructive: false,
    chip: (p) => keySibling(p) ? null : `no other chip mode shares the ${p.name}'s chip ID`,
  },
  async run(ctx) {
    const sibling = keySibling(ctx.profile)!;
    const key = await withConnection(ctx, (c) => Promise.resolve(c.uart!.identity.key));
    expect(key !== null, "no key read while identifying");
    const fits = sibling.key !== null && formatKey(key) === formatKey(sibling.key.words);
    if (fits || !sibling.key || sibling.key.check === "none") {
      ctx.note(`key ${formatKey(key)} also fits ${sibling.name} mode: nothing to guard`);
      return;
    }
    const namesThisChip = ctx.profile.key !== null && formatKey(key) === formatKey(ctx.profile.key.words);
    if (sibling.key.check === "enforce" || namesThisChip) {
      const e = await expectFlashError(
        "WRONG_KEY",
        `connecting in ${sibling.name} mode`,
        () => withConnection(ctx, () => Promise.resolve(), { chip: sibling }),
      );
      ctx.note(`${sibling.name} mode refused: ${e.message}`);
      await withConnection(ctx, (c) => {
        expect(c.events.some((e) => e.type === "warning"), "an overridden key check gave no warning");
        return Promise.resolve();
      }, { chip: sibling, overrideKeyCheck: true });
      ctx.note("override: session continues with a warning");
    } else {
      await withConnection(ctx, (c) => {
        const warning = c.events.find((e) => e.type === "warning" && e.message.includes("key"));
        expect(warning, `no warning about the key ${formatKey(key)} in ${sibling.name} mode`);
        ctx.note(`${sibling.name} mode warns: ${warning.message}`);
        return Promise.resolve();
      }, { chip: sibling });
    }
  },
};
