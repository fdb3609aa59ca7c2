/**
 * image-key-boot and boots-after-write: the emulated chip boots only what its efuse key
 * decrypts (emulator/boot.ts). An app built for the other key class is refused by the
 * pre-flight key check; forced past it, it is written and the chip does not boot; the build
 * for the chip's key boots. Both write a bootloader, so they run on the emulator only.
 *
 * @module
 */

import { formatKey } from "../../core/chips/profiles.ts";
import type { ChipProfile } from "../../core/chips/profiles.ts";
import { type KeyWords, TUYA_N_KEY, ZERO_KEY } from "../../core/image/cipher.ts";
import { classOfKey } from "../../core/image/key_class.ts";
import { checkImageKey } from "../../core/image/key_check.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { efuseKey } from "../../emulator/boot.ts";
import { bootableApp, bootableBootloader } from "../images.ts";
import { expect, expectFlashError, type Scenario, type ScenarioContext } from "../scenario.ts";
import { programOptions, withConnection } from "./common.ts";

function chipNeeds(p: ChipProfile): string | null {
  if (!p.key || p.efuseSize === 0) return `the ${p.name} profile names no efuse key to check images against`;
  if (p.loaderProtectedEnd > 0) return `the ${p.name} loader refuses bootloader writes`;
  return null;
}

function keyOf(ctx: ScenarioContext): KeyWords {
  const chip = ctx.bench.virtualChip!.chip;
  return efuseKey(ctx.profile, chip.efuse) ?? ZERO_KEY;
}

/** The image-key-boot scenario. */
export const imageKeyBoot: Scenario = {
  id: "image-key-boot",
  title: "an image for the wrong key does not boot (refused; forced, it is written and does not boot)",
  needs: { path: "uart", destructive: true, virtualOnly: true, chip: (p) => chipNeeds(p) },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const key = keyOf(ctx);
      const wrong = classOfKey(key) === "bypass" ? TUYA_N_KEY : ZERO_KEY;
      const app = bootableApp(ctx.profile, wrong);
      await expectFlashError("WRONG_KEY", "key check of an app for the other key", () =>
        Promise.resolve(checkImageKey(app, 0x11000, formatKey(key), false)));
      const forced = checkImageKey(app, 0x11000, formatKey(key), true);
      expect(forced?.note.includes("--skip-key-check"), `forced check said: ${forced?.note}`);
      const opts = { ...programOptions(c), noBackup: true };
      await writeFlash(c.flasher, bootableBootloader(key), { ...opts, addr: 0, overwriteBootloader: true });
      await writeFlash(c.flasher, app, { ...opts, addr: 0x11000 });
      const chip = ctx.bench.virtualChip!.chip;
      const bad = chip.bootCheck();
      expect(!bad.boots, `an app for the other key booted: ${bad.reason}`);
      ctx.note(`forced past the key check, written, does not boot: ${bad.reason}`);
      await writeFlash(c.flasher, bootableApp(ctx.profile, key), { ...opts, addr: 0x11000 });
      const good = chip.bootCheck();
      expect(good.boots, `the build for the chip's key does not boot: ${good.reason}`);
    }),
};

/** The boots-after-write scenario. */
export const bootsAfterWrite: Scenario = {
  id: "boots-after-write",
  title: "after write-flash (bootloader and app for the chip's key) the chip boots",
  needs: { path: "uart", destructive: true, virtualOnly: true, chip: (p) => chipNeeds(p) },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const key = keyOf(ctx);
      const app = bootableApp(ctx.profile, key);
      const check = checkImageKey(app, 0x11000, formatKey(key), false);
      ctx.note(check?.note ?? "no key check for this address");
      const opts = { ...programOptions(c), noBackup: true };
      await writeFlash(c.flasher, bootableBootloader(key), { ...opts, addr: 0, overwriteBootloader: true });
      await writeFlash(c.flasher, app, { ...opts, addr: 0x11000 });
      await c.target.reboot();
      const b = ctx.bench.virtualChip!.chip.bootCheck();
      expect(b.boots, `does not boot: ${b.reason}`);
      ctx.note(b.line ?? "");
    }),
};
