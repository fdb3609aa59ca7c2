/**
 * bk7231m-flow: the BK7231M / BL2028N flow end to end on the emulator (issue W2 4b/7): back up,
 * the key check refuses an N build, the M-style app is written with the chip's bootloader kept,
 * the RF sector (erased here, as users find it) comes back from the backup, OpenBeken's config
 * is written with Wi-Fi and the Tuya pins, and the chip boots with that config in place.
 *
 * @module
 */

import { formatKey } from "../../core/chips/profiles.ts";
import { isBypassKey, TUYA_N_KEY, ZERO_KEY } from "../../core/image/cipher.ts";
import { inspectDump } from "../../core/image/inspect.ts";
import { checkImageKey } from "../../core/image/key_check.ts";
import { decodeObkConfig, encodeObkConfig } from "../../core/image/obk_config.ts";
import { parseRfTlv } from "../../core/image/rf_tlv.ts";
import { sampleQio, sampleStockM } from "../../core/image/samples.ts";
import { obkTemplate } from "../../core/image/tuya_config.ts";
import { eraseRegion } from "../../core/flasher/erase.ts";
import { readFlash } from "../../core/flasher/read.ts";
import { writeFlash } from "../../core/flasher/write.ts";
import { expect, expectFlashError, type Scenario } from "../scenario.ts";
import { programOptions, withConnection } from "./common.ts";

/** The bk7231m-flow scenario. */
export const bk7231mFlow: Scenario = {
  id: "bk7231m-flow",
  title:
    "BK7231M flow: backup, N build refused, M app with the bootloader kept, RF restored, OpenBeken config, boots",
  needs: {
    path: "uart",
    destructive: true,
    virtualOnly: true,
    chip: (p) =>
      p.key && isBypassKey(p.key.words) && p.layout.rf.start === 0x1d0000 && p.loaderProtectedEnd === 0
        ? null
        : `the ${p.name} is not a zero-key chip of the BK7231N/M layout`,
  },
  run: (ctx) =>
    withConnection(ctx, async (c) => {
      const opts = { ...programOptions(c), noBackup: true };
      const key = formatKey(ZERO_KEY);
      // a stock device: zero-key bootloader and app, RF sector, Tuya pins
      await writeFlash(c.flasher, sampleStockM(), { ...opts, addr: 0, overwriteBootloader: true });
      const backup = (await readFlash(c.flasher, { addr: 0, size: c.flasher.flashSize })).data;

      await expectFlashError("WRONG_KEY", "key check of an N build", () =>
        Promise.resolve(checkImageKey(sampleQio(TUYA_N_KEY, "bk7231n"), 0, key, false)));

      const m = sampleQio(ZERO_KEY, "bk7231m");
      checkImageKey(m, 0, key, false);
      await writeFlash(c.flasher, m.subarray(0x11000), { ...opts, addr: 0x11000 });
      const boot = (await readFlash(c.flasher, { addr: 0, size: 0x11000 })).data;
      expect(
        boot.every((b, i) =>
          b === backup[i]
        ),
        "the chip's bootloader changed",
      );

      const rf = ctx.profile.layout.rf.start;
      await eraseRegion(c.flasher, { ...opts, addr: rf, size: 0x1000 });
      const sector = backup.slice(rf, rf + 0x1000);
      const tlv = parseRfTlv(sector);
      expect(tlv.valid, `the backup's RF sector does not parse: ${tlv.problem}`);
      await writeFlash(c.flasher, sector, { ...opts, addr: rf });

      const board = inspectDump(backup).tuya?.board;
      expect(board && board.pins.length > 0, "no Tuya pins in the backup");
      const pins = obkTemplate(board, "BK7231M").pins;
      const cfgAt = ctx.profile.layout.config.start;
      const cfg = encodeObkConfig({ set: { "wifi.ssid": "lab", "wifi.pass": "secret123" }, pins }, {
        suffix: "0A0B0C",
      });
      await writeFlash(c.flasher, cfg, { ...opts, addr: cfgAt });

      // read what the chip holds, then let it boot (the loader is gone after the reboot)
      const after = await readFlash(c.flasher, { addr: 0, size: c.flasher.flashSize });
      await c.target.reboot();
      const b = ctx.bench.virtualChip!.chip.bootCheck();
      expect(b.boots, `does not boot: ${b.reason}`);
      const decoded = decodeObkConfig(after.data.subarray(cfgAt, cfgAt + 0x1000));
      expect(
        decoded?.crcValid && decoded.text["wifi.ssid"] === "lab",
        "the OpenBeken config does not decode to what was set",
      );
      expect(
        decoded!.pins.map((p) => `${p.pin}:${p.role};${p.channel}`).join(" ") ===
          Object.entries(pins).map(([g, r]) => `${g}:${r}`).join(" "),
        "the pins differ",
      );
      expect(inspectDump(after.data).rf?.mac === tlv.mac, "the MAC did not come back");
      ctx.note(`MAC ${tlv.mac}, ${decoded!.pins.length} pins, ${b.line}`);
    }),
};
