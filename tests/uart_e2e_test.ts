import assert from "node:assert/strict";
import { chipById, CHIPS, formatKey } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import { crc32 } from "../core/crc.ts";
import { connect } from "../core/uart/connect.ts";
import type { SessionEvent } from "../core/uart/events.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

const TUYA = "510fb093 a3cbeadc 5993a17e c7adeb03";
const ZERO = "00000000 00000000 00000000 00000000";

async function rejectsWith(p: Promise<unknown>, code: string): Promise<FlashError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FlashError, `expected FlashError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

for (const profile of CHIPS.filter((c) => c.uart)) {
  Deno.test(`e2e ${profile.id}: connect, 921600 baud, detect and read the key`, async () => {
    const v = await createVirtualChip({ chip: profile.id });
    const link = v.link();
    const events: SessionEvent[] = [];
    const { identity, baud, target } = await openUartTarget(link, {
      chip: profile,
      baud: 921600,
      onEvent: (e) => events.push(e),
    });
    assert.equal(baud, 921600);
    assert.equal(link.baud, 921600);
    assert.equal(identity.profile.id, profile.id);
    assert.equal(identity.personality, profile.personality);
    assert.equal(identity.flashSize, v.nor.size);
    assert.equal(identity.bootloader, profile.bootloader);
    if (profile.personality === "FULL") {
      assert.deepEqual(identity.flashId, Uint8Array.from(v.nor.jedecId));
      assert.equal(identity.chipId, profile.chipId ?? profile.deviceId);
    } else {
      assert.equal(identity.flashId, null);
      assert.equal(identity.chipId, null);
    }
    if (profile.efuseSize > 0) {
      assert.equal(formatKey(identity.key!), formatKey(profile.key?.words ?? [0, 0, 0, 0]));
    } else assert.equal(identity.key, null);
    assert.ok(events.some((e) => e.type === "linked"));
    // the chip's CRC of the whole flash, through the loader's own end-address rule
    const all = v.nor.read(0, v.nor.size);
    assert.equal(await target.crc(0, v.nor.size), crc32(all));
    assert.equal(await target.crc(0x11000, 0x1000), crc32(all.subarray(0x11000, 0x12000)));
    // sector 0: T/U/BK7252 loaders refuse it raw; the target reads it through the wrap
    assert.deepEqual(await target.readSector(0), all.subarray(0, 0x1000));
  });

  Deno.test(`e2e ${profile.id}: detected without --chip`, async () => {
    const v = await createVirtualChip({ chip: profile.id });
    const { identity } = await openUartTarget(v.link(), {});
    assert.equal(identity.profile.id, profile.id);
    assert.equal(identity.flashSize, v.nor.size);
  });
}

Deno.test("e2e bk7231n: the key is the Tuya key; bk7231m: all zeros", async () => {
  const n = await openUartTarget((await createVirtualChip({ chip: "bk7231n" })).link(), {});
  assert.equal(n.identity.profile.id, "bk7231n");
  assert.equal(formatKey(n.identity.key!), TUYA);
  const m = await openUartTarget((await createVirtualChip({ chip: "bk7231m" })).link(), {});
  assert.equal(m.identity.profile.id, "bk7231m");
  assert.equal(formatKey(m.identity.key!), ZERO);
});

Deno.test("e2e: every emulated chip's default image reports a known bootloader where its profile names one", async () => {
  for (const p of CHIPS.filter((c) => c.uart && c.bootloader)) {
    const { identity } = await openUartTarget((await createVirtualChip({ chip: p.id })).link(), {});
    assert.equal(identity.bootloader, p.bootloader, p.id);
    assert.ok(!identity.warnings.some((w) => /unknown bootloader/.test(w)), `${p.id}: ${identity.warnings}`);
  }
  assert.equal(chipById("bk7231m")?.bootloader, "bl2028n_zero_key");
});

Deno.test("e2e: BK7231N mode on a BK7231M stops with the remedy, unless overridden", async () => {
  const v = await createVirtualChip({ chip: "bk7231m" });
  const e = await rejectsWith(openUartTarget(v.link(), { chip: chipById("bk7231n") }), "WRONG_KEY");
  assert.equal(e.message, "this chip's key is all zeros: it is a BK7231M/BL2028N");
  assert.equal(e.remedy, "use --chip bk7231m");
  assert.deepEqual(e.lines(), [
    "error: this chip's key is all zeros: it is a BK7231M/BL2028N",
    "remedy: use --chip bk7231m",
  ]);
  const again = await createVirtualChip({ chip: "bk7231m" });
  const events: SessionEvent[] = [];
  const { identity } = await openUartTarget(again.link(), {
    chip: chipById("bk7231n"),
    overrideKeyCheck: true,
    onEvent: (ev) => events.push(ev),
  });
  assert.equal(identity.profile.id, "bk7231n");
  assert.ok(identity.warnings.some((w) => /all zeros/.test(w)));
  assert.ok(events.some((ev) => ev.type === "warning" && /all zeros/.test(ev.message)));
});

Deno.test("e2e: BK7231M mode on a BK7231N (Tuya key) is refused; overridden, it warns and names the N", async () => {
  const v = await createVirtualChip({ chip: "bk7231n" });
  const e = await rejectsWith(openUartTarget(v.link(), { chip: chipById("bk7231m") }), "WRONG_KEY");
  assert.match(e.message, /BK7231N key: it is a BK7231N, not a BK7231M/);
  assert.match(e.remedy, /^use --chip bk7231n/);
  const w = await createVirtualChip({ chip: "bk7231n" });
  const { identity } = await openUartTarget(w.link(), { chip: chipById("bk7231m"), overrideKeyCheck: true });
  assert.equal(identity.profile.id, "bk7231m");
  assert.equal(identity.keyChip?.id, "bk7231n");
  assert.ok(identity.warnings.some((m) => /BK7231N key.*overridden/.test(m)), identity.warnings.join());
});

Deno.test("e2e: the wrong chip mode names the right --chip", async () => {
  const t = await createVirtualChip({ chip: "bk7231t" });
  const e1 = await rejectsWith(openUartTarget(t.link(), { chip: chipById("bk7231n") }), "WRONG_CHIP");
  assert.equal(e1.remedy, "use --chip bk7231t");
  const n = await createVirtualChip({ chip: "bk7231n" });
  const e2 = await rejectsWith(openUartTarget(n.link(), { chip: chipById("bk7238") }), "WRONG_CHIP");
  assert.match(e2.message, /0x7231c/);
  assert.match(e2.remedy, /--chip bk7231n/);
  const u = await createVirtualChip({ chip: "bk7231u" });
  const e3 = await rejectsWith(openUartTarget(u.link(), { chip: chipById("bk7252") }), "WRONG_CHIP");
  assert.equal(e3.remedy, "use --chip bk7231u");
});

Deno.test("e2e bk7231t: erase and write after a CRC work (LinkCheck clears the protect lock)", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const { target } = await openUartTarget(v.link(), { chip: chipById("bk7231t"), baud: 1500000 });
  // each round: CRC (the loader re-protects), erase, write, read back
  for (const seed of [7, 13, 29]) {
    const data = new Uint8Array(4096).map((_, i) => (i * seed) & 0xff);
    await target.crc(0x20000, 0x1000);
    await target.eraseSector(0x20000);
    await target.writeSector(0x20000, data);
    assert.deepEqual(await target.readSector(0x20000), data);
    assert.equal(await target.crc(0x20000, 0x1000), crc32(data));
    assert.deepEqual(v.nor.read(0x20000, 0x1000), data);
  }
});

Deno.test("e2e bk7231t: writes into the bootloader window are refused before anything is sent", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const { target, client } = await openUartTarget(v.link(), { chip: chipById("bk7231t") });
  const before = client.stats.bytesOut;
  const e = await rejectsWith(target.writeSector(0, new Uint8Array(4096)), "BOOTLOADER_GUARD");
  assert.match(e.message, /0x011000/);
  await rejectsWith(target.eraseBlock(0x10000), "BOOTLOADER_GUARD");
  assert.equal(client.stats.bytesOut, before);
});

Deno.test("e2e bk7231n: 64 KiB erase and write over the wire", async () => {
  const v = await createVirtualChip({ chip: "bk7231n" });
  const { target } = await openUartTarget(v.link(), { baud: 2000000 });
  await target.eraseBlock(0x100000);
  assert.equal(await target.crc(0x100000, 0x10000), crc32(new Uint8Array(0x10000).fill(0xff)));
  const data = new Uint8Array(4096).fill(0x5a);
  await target.writeSector(0x10f000, data);
  assert.deepEqual(v.nor.read(0x10f000, 4096), data);
});

Deno.test("e2e bk7231n: a protected flash is unprotected once, verified by read-back", async () => {
  const v = await createVirtualChip({ chip: "bk7231n", protect: 0x4004 });
  const { target } = await openUartTarget(v.link(), {});
  assert.deepEqual((await target.info()).statusRegisters, [0x04, 0x40]);
  const r = await target.unprotect();
  assert.deepEqual(r, { before: [0x04, 0x40], after: [0x00, 0x00], wrote: true });
  assert.equal(v.nor.srWord & 0x407c, 0);
  assert.deepEqual(await target.unprotect(), { before: [0, 0], after: [0, 0], wrote: false });
});

Deno.test("e2e bk7231n: QE survives the unprotect", async () => {
  const v = await createVirtualChip({ chip: "bk7231n", protect: 0x0218 });
  const { target } = await openUartTarget(v.link(), {});
  const r = await target.unprotect();
  assert.deepEqual(r.after, [0x00, 0x02]);
});

Deno.test("e2e bk7231n: a lock that cannot clear is reported with the SR value and the lock bit", async () => {
  // SRP1 set: status registers locked until power-off
  const v = await createVirtualChip({ chip: "bk7231n", protect: 0x0104 });
  const { target } = await openUartTarget(v.link(), {});
  const e = await rejectsWith(target.unprotect(), "FLASH_LOCKED");
  assert.match(e.message, /0x0104/);
  assert.match(e.message, /SRP1/);
  assert.match(e.remedy, /power-cycle/);
});

Deno.test("e2e bk7231t: unprotect has nothing to do on a basic loader", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const { target } = await openUartTarget(v.link(), {});
  assert.deepEqual(await target.unprotect(), { before: [], after: [], wrote: false });
  assert.deepEqual(await target.info(), { flashId: null, flashSize: 0x200000, statusRegisters: null });
});

Deno.test("e2e: a silent chip times out with the link-check message", async () => {
  const v = await createVirtualChip({ chip: "bk7231n", silent: true });
  const events: SessionEvent[] = [];
  const e = await rejectsWith(connect(v.link(), { onEvent: (ev) => events.push(ev) }), "NO_LINK");
  assert.equal(e.message, "no reply to link check on virtual:bk7231n after 20 s");
  assert.match(e.remedy, /CEN to GND/);
  assert.ok(events.some((ev) => ev.type === "reset" && ev.strategy === "modem-pulse"));
  assert.ok(events.some((ev) => ev.type === "hint"));
});

Deno.test("e2e: a chip already running its app is reset into the loader by DTR/RTS", async () => {
  const v = await createVirtualChip({ chip: "bk7231n", app: "silent" });
  const link = v.link();
  await link.clock.sleep(10_000);
  assert.equal(v.chip.stateAt(link.clock.now()), "app");
  const events: SessionEvent[] = [];
  await connect(link, { onEvent: (e) => events.push(e) });
  assert.ok(events.some((e) => e.type === "reset" && e.strategy === "modem-pulse"));
});

Deno.test("e2e: OpenBeken firmware is rebooted into the loader by `reboot`", async () => {
  const v = await createVirtualChip({ chip: "bk7231n", app: "openbeken" });
  const link = v.link();
  await link.clock.sleep(10_000);
  await connect(link, { resetStrategies: [{ kind: "reboot-text", startMs: 0, everyTries: 200 }] });
  assert.equal(v.chip.stateAt(link.clock.now()), "loader");
});

Deno.test("e2e: reboot leaves the loader", async () => {
  const v = await createVirtualChip({ chip: "bk7231n" });
  const link = v.link();
  const { target } = await openUartTarget(link, { baud: 921600 });
  await target.reboot();
  assert.notEqual(v.chip.stateAt(link.clock.now() + 5000), "loader");
});
