import assert from "node:assert/strict";
import { TUYA_N_KEY, ZERO_KEY } from "../core/image/cipher.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { BOOT_BAUD, BOOT_LINE_PREFIX } from "../emulator/boot.ts";
import { syntheticDump } from "./support/dumps.ts";

const AFTER_WINDOW = 60_000;

async function firstAppReply(chip: string, image: Uint8Array, key?: readonly number[]) {
  const v = await createVirtualChip({ chip, image, key });
  v.chip.reset(0);
  const out = v.chip.receive(new TextEncoder().encode("\r\n"), AFTER_WINDOW);
  const again = v.chip.receive(new TextEncoder().encode("\r\n"), AFTER_WINDOW + 10);
  return { out, again, check: v.chip.bootCheck() };
}

Deno.test("a chip whose bootloader and app decrypt with its efuse key prints one boot line at 115200", async () => {
  const n = await firstAppReply("bk7231n", syntheticDump(TUYA_N_KEY));
  assert.ok(n.check.boots, n.check.reason);
  assert.equal(n.out.length, 1);
  assert.equal(n.out[0].baud, BOOT_BAUD);
  const line = new TextDecoder().decode(n.out[0].data);
  assert.ok(line.startsWith(BOOT_LINE_PREFIX), line);
  assert.ok(line.endsWith("\r\n"));
  assert.equal(n.again.length, 0, "one line per boot");
  const m = await firstAppReply("bk7231m", syntheticDump(ZERO_KEY));
  assert.ok(m.check.boots, m.check.reason);
});

Deno.test("a bricked chip stays silent: wrong key, broken CRC16 framing, erased app", async () => {
  const nOnM = await firstAppReply("bk7231m", syntheticDump(TUYA_N_KEY));
  assert.deepEqual(nOnM.out, []);
  assert.match(nOnM.check.reason, /^bootloader .*does not decrypt with the efuse key/);
  const broken = syntheticDump(TUYA_N_KEY);
  broken[0x11000 + 34 * 5 + 3] ^= 0x40;
  const b = await firstAppReply("bk7231n", broken);
  assert.deepEqual(b.out, []);
  assert.match(b.check.reason, /^app: CRC16 of the chunk at 0x110aa/);
  const erased = syntheticDump(TUYA_N_KEY);
  erased.fill(0xff, 0x11000, 0x40000);
  const e = await firstAppReply("bk7231n", erased);
  assert.deepEqual(e.out, []);
  assert.match(e.check.reason, /^app: erased/);
  // the default image of a virtual chip is random bytes: it never boots
  const d = await createVirtualChip({ chip: "bk7231n" });
  assert.ok(!d.chip.bootCheck().boots);
});

Deno.test("the boot line leaves unprompted when the boot window closes: a host that only listens reads it", async () => {
  const v = await createVirtualChip({ chip: "bk7231n", image: syntheticDump(TUYA_N_KEY) });
  const link = v.link();
  const got = await link.read(256, 60_000);
  const line = new TextDecoder().decode(got);
  assert.ok(line.startsWith(BOOT_LINE_PREFIX), JSON.stringify(line));
  assert.deepEqual(await link.read(256, 1000), new Uint8Array(0), "one line per boot");
  // a chip that does not boot stays silent
  const silent = await createVirtualChip({ chip: "bk7231m", image: syntheticDump(TUYA_N_KEY) });
  assert.deepEqual(await silent.link().read(256, 60_000), new Uint8Array(0));
});
