import assert from "node:assert/strict";
import { FlashError } from "../core/errors.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import { SpiNor } from "../core/spi/nor.ts";
import { openSpiTarget } from "../core/spi/target.ts";
import { crc32 } from "../core/crc.ts";
import { createVirtualCh341a, type VirtualCh341aSetup } from "../emulator/ch341a.ts";
import { NorFlash } from "../emulator/nor.ts";
import { Rng } from "../emulator/rng.ts";

async function open(setup: VirtualCh341aSetup = {}) {
  const rig = createVirtualCh341a(setup);
  const spi = await Ch341aSpi.open(rig.device, { clock: rig.clock });
  const target = await openSpiTarget(spi, setup.entry === false ? { entry: false } : {});
  return { ...rig, spi, target };
}

function randomNor(id: number[], seed: number): NorFlash {
  const nor = new NorFlash({ id });
  nor.restore({ ...nor.snapshot(), data: new Rng(seed).fill(new Uint8Array(nor.size)) });
  return nor;
}

Deno.test("spi target: info after entry reports ID, size and status registers", async () => {
  const { target, nor } = await open({ flashId: [0xeb, 0x60, 0x15], entry: { succeedOnAttempt: 2 } });
  nor.srWord = 0x4004;
  const info = await target.info();
  assert.deepEqual(info.flashId, Uint8Array.of(0xeb, 0x60, 0x15));
  assert.equal(info.flashSize, 2 * 1024 * 1024);
  assert.deepEqual(info.statusRegisters, [0x04, 0x40]);
  assert.equal(target.entry?.attempt, 2);
  assert.equal(target.kind, "spi");
  assert.equal(target.hasChipCrc, false);
});

Deno.test("spi target: a backup through the virtual CH341A equals the chip", async () => {
  const nor = randomNor([0x1c, 0x70, 0x15], 42);
  const { target } = await open({ nor });
  const backup = await target.nor.read(0, nor.size);
  assert.equal(crc32(backup), crc32(nor.read(0, nor.size)));
  assert.deepEqual(backup.subarray(0x1ff000), nor.read(0x1ff000, 0x1000));
  assert.equal(await target.crc(0x10000, 0x20000), crc32(nor.read(0x10000, 0x20000)));
});

Deno.test("spi target: a 4 KiB read costs one USB OUT transfer", async () => {
  const { target, device } = await open();
  const before = device.stats.outTransfers;
  await target.readSector(0x3000);
  assert.equal(device.stats.outTransfers - before, 1);
  assert.equal(target.stats.roundTrips > 0, true);
});

Deno.test("spi target: write at 0 (bootloader included) and verify", async () => {
  const nor = randomNor([0xeb, 0x60, 0x15], 7);
  const { target } = await open({ nor });
  const image = new Rng(99).fill(new Uint8Array(0x12000));
  await target.unprotect();
  for (let a = 0; a < 0x10000; a += 0x10000) await target.eraseBlock(a);
  for (let a = 0x10000; a < image.length; a += 0x1000) await target.eraseSector(a);
  for (let a = 0; a < image.length; a += 0x1000) await target.writeSector(a, image.subarray(a, a + 0x1000));
  assert.deepEqual(nor.read(0, image.length), image);
  assert.equal(await target.crc(0, image.length), crc32(image));
  assert.deepEqual(await target.readSector(0x11000), image.subarray(0x11000, 0x12000));
  assert.notDeepEqual(nor.read(0x12000, 16), new Uint8Array(16).fill(0xff), "neighbours untouched");
});

Deno.test("spi target: SR1=0x04 SR2=0x40 (only the last 64 KiB writable) is unprotected, then writes land", async () => {
  const { target, nor } = await open({ flashId: [0xeb, 0x60, 0x15] });
  nor.srWord = 0x4004;
  await target.eraseSector(0);
  await target.writeSector(0, new Uint8Array(4096));
  assert.equal(nor.read(0, 1)[0], 0xff, "protected: dropped silently, as a real chip does");

  const report = await target.unprotect();
  assert.deepEqual(report, { before: [0x04, 0x40], after: [0x00, 0x00], wrote: true });
  assert.equal(nor.srWord, 0);
  await target.writeSector(0, new Uint8Array(4096));
  assert.equal(nor.read(0, 1)[0], 0x00);
  const again = await target.unprotect();
  assert.equal(again.wrote, false, "nothing written when nothing is protected");
});

Deno.test("spi target: unprotect keeps QE", async () => {
  const { target, nor } = await open({ flashId: [0x0b, 0x40, 0x15] });
  nor.srWord = 0x427c;
  const r = await target.unprotect();
  assert.deepEqual(r.after, [0x00, 0x02]);
});

Deno.test("spi target: a part with a separate SR2 opcode is unprotected with 01 then 31", async () => {
  const nor = new NorFlash({ id: [0xc8, 0x40, 0x16], sr: 0x4004, oneByteWrsrClearsSr2: false });
  const { target } = await open({ nor });
  const r = await target.unprotect();
  assert.deepEqual(r.after, [0, 0]);
});

Deno.test("spi target: falls back to the two-byte WRSR when a separate 0x31 does not take", async () => {
  const nor = new NorFlash({ id: [0xeb, 0x60, 0x15], sr: 0x4004 }); // accepts 0x01 only
  const rig = createVirtualCh341a({ nor });
  const spi = await Ch341aSpi.open(rig.device, { clock: rig.clock });
  const target = await openSpiTarget(spi, { part: { ...nor.part, sr2Write: "separate" } });
  const r = await target.unprotect();
  assert.deepEqual(r.after, [0, 0]);
  assert.equal(nor.srWord, 0);
});

Deno.test("spi target: an SRP1-locked chip is reported, not silently written", async () => {
  const { target, nor } = await open({ flashId: [0xeb, 0x60, 0x15] });
  nor.srWord = 0x0104;
  const err = await target.unprotect().catch((e) => e);
  assert.ok(err instanceof FlashError);
  assert.equal(err.code, "FLASH_LOCKED");
  assert.match(err.message, /locked until power-off \(SRP1=1/);
  assert.match(err.message, /0x1f0000\.\.0x1fffff protected/);
  assert.equal(nor.srWord, 0x0104);
});

Deno.test("spi target: SRP0 with WP# low is reported after the write does not take", async () => {
  const nor = new NorFlash({ id: [0xeb, 0x60, 0x15], sr: 0x0084, wpHigh: false });
  const { target } = await open({ nor });
  const err = await target.unprotect().catch((e) => e);
  assert.equal(err.code, "FLASH_LOCKED");
  assert.match(err.message, /wrote 0x0080, read back 0x0084 .*WP#/);
});

Deno.test("spi nor: erase kinds and alignment", async () => {
  const nor = new NorFlash({ id: [0x1c, 0x70, 0x15], data: new Uint8Array(0x200000) });
  const { target } = await open({ nor });
  await target.nor.erase(0x8000, "32k");
  assert.deepEqual(nor.read(0x7fff, 0x8002), Uint8Array.from([0, ...new Array(0x8000).fill(0xff), 0]));
  await assert.rejects(target.nor.erase(0x1000, "64k"), /not 64k aligned/);
  await assert.rejects(target.nor.read(0x1ff000, 0x2000), /outside the 2048 KiB flash/);
  await target.nor.erase(0, "chip");
  assert.ok(nor.read(0, nor.size).every((b) => b === 0xff));
});

Deno.test("spi nor: programs split at page boundaries, all-0xFF pages skipped", async () => {
  const { target, nor, device } = await open();
  const data = new Rng(3).fill(new Uint8Array(700));
  await target.nor.program(0x1f0, data);
  assert.deepEqual(nor.read(0x1f0, 700), data);
  const before = device.stats.outTransfers;
  const blank = new Uint8Array(4096).fill(0xff);
  blank[0x800] = 0x00;
  await target.writeSector(0x4000, blank);
  assert.equal(device.stats.outTransfers - before, 2, "one page program (WREN | RDSR+PP+RDSR)");
  assert.equal(nor.read(0x4800, 1)[0], 0);
});

Deno.test("spi nor: a flash that never finishes times out with TIMEOUT", async () => {
  const nor = new NorFlash({ timing: { sector4kMs: 1e9 } });
  const { target } = await open({ nor });
  const err = await target.eraseSector(0).catch((e) => e);
  assert.equal(err.code, "TIMEOUT");
  assert.match(err.message, /still busy .* after 4k erase at 0x000000/);
});

Deno.test("spi nor: a bare flash on a clip (no Beken entry), and no flash at all", async () => {
  const { target } = await open({ entry: false, flashId: [0xef, 0x40, 0x16] });
  assert.equal(target.entry, null);
  assert.equal((await target.info()).flashSize, 4 * 1024 * 1024);

  const rig = createVirtualCh341a({ entry: { successProbability: 0 } });
  const spi = await Ch341aSpi.open(rig.device, { clock: rig.clock });
  const err = await SpiNor.identify(spi).catch((e) => e);
  assert.equal(err.code, "UNKNOWN_FLASH");
});

Deno.test("spi nor: an unknown part whose SR2 reads 0xFF is treated as one register", async () => {
  const single = new NorFlash({ part: { ...new NorFlash().part, id: [0x99, 0x40, 0x15], known: false } });
  const { target } = await open({ entry: false, nor: single });
  assert.equal(target.nor.part.known, false);
  assert.equal(target.nor.part.size, 2 * 1024 * 1024);
  assert.equal(target.nor.part.srCount, 1);

  const two = await open({ entry: false, flashId: [0x99, 0x40, 0x16] });
  assert.equal(two.target.nor.part.srCount, 2, "a generic part with a real SR2 keeps two registers");
});
