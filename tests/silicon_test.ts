/**
 * Each loader-family quirk of core/chips/loaders.ts, shown on the emulator with raw frames, and
 * the client behaviour that follows from it (docs/silicon.md).
 */
import assert from "node:assert/strict";
import { keepsQueuedRequests, loaderFamilyOf } from "../core/chips/loaders.ts";
import { chipById } from "../core/chips/profiles.ts";
import type { ByteLink } from "../core/io/link.ts";
import { openSerial } from "../core/io/serial/mod.ts";
import { baudsMatch, checkBaud, nearestWorkingBauds, realBaud } from "../core/uart/baud.ts";
import { encodeRequest, type Values } from "../core/uart/codec.ts";
import { chipToStandard, crc32 } from "../core/crc.ts";
import { ReplyParser } from "../core/uart/parser.ts";
import { BL2_LINK_CHECK, COMMANDS, type CommandSpec } from "../core/uart/table.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { wireMs } from "../core/timing.ts";
import { FlashError } from "../core/errors.ts";
import { crc32Combine } from "../emulator/loader.ts";
import { servePty } from "../emulator/serve.ts";
import { createVirtualChip, type VirtualChip } from "../emulator/virtual.ts";
import type { VirtualWire } from "../emulator/wire.ts";

const LINK_CHECK = encodeRequest(COMMANDS.LinkCheck, {});

/** A chip already in its loader, and a raw link to it. */
async function linked(chip: string, opts: Parameters<typeof createVirtualChip>[0] = { chip }) {
  const v = await createVirtualChip({ ...opts, chip });
  const link = v.link();
  await link.clock.sleep(v.chip.timing.resetToWindowMs + 1);
  await link.write(LINK_CHECK);
  assert.ok((await replies(link, 1, 50)).length === 1, "the chip links");
  return { v, link };
}

/** Collect up to `n` reply frames within `ms`. */
async function replies(link: ByteLink, n: number, ms: number) {
  const p = new ReplyParser();
  const out = [];
  const end = link.clock.now() + ms;
  while (out.length < n && link.clock.now() < end) {
    p.push(await link.read(65536, end - link.clock.now()));
    for (let f = p.next(); f; f = p.next()) out.push(f);
  }
  return out;
}

const req = (spec: CommandSpec, values: Values) => encodeRequest(spec, values);

Deno.test("loader families: T/U keeps queued requests in a ring, BootROM and BK7236 are read one at a time", () => {
  assert.equal(loaderFamilyOf(chipById("bk7231t")!).busy.kind, "ring");
  assert.equal(keepsQueuedRequests(loaderFamilyOf(chipById("bk7231u")!)), true);
  assert.equal(keepsQueuedRequests(loaderFamilyOf(chipById("bk7231n")!)), false, "unknown: not assumed");
  assert.equal(keepsQueuedRequests(loaderFamilyOf(chipById("bk7236")!)), false, "drops: known");
});

Deno.test("T/U CheckCRC truncates to whole 256-byte chunks: inclusive and exclusive ends agree", async () => {
  const { v, link } = await linked("bk7231t");
  const want = crc32(v.nor.read(0x11000, 4096));
  for (const end of [0x12000, 0x11fff]) {
    await link.write(req(COMMANDS.CheckCRC, { start: 0x11000, end }));
    const [f] = await replies(link, 1, 100);
    assert.equal(
      chipToStandard(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0, true)),
      want,
    );
    await link.write(LINK_CHECK);
    await replies(link, 1, 50);
  }
});

Deno.test("BootROM CheckCRC: the inclusive end covers the extra byte", async () => {
  const { v, link } = await linked("bk7231n");
  await link.write(req(COMMANDS.CheckCRC, { start: 0x11000, end: 0x12000 }));
  const [f] = await replies(link, 1, 100);
  const got = chipToStandard(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0, true));
  assert.equal(got, crc32(v.nor.read(0x11000, 4097)));
  assert.notEqual(got, crc32(v.nor.read(0x11000, 4096)));
});

Deno.test("busy: a BK7236 loader drops a request sent while it replies; a T/U loader serves it after", async () => {
  for (const [chip, served] of [["bk7236", false], ["bk7231t", true]] as const) {
    const { v, link } = await linked(chip);
    const a = 0x20000;
    await link.write(req(COMMANDS.FlashRead4K, { addr: a }));
    // the next request leaves while the 4 KiB reply is still on the wire
    await link.clock.sleep(5);
    await link.write(req(COMMANDS.FlashRead4K, { addr: a + 0x1000 }));
    const got = await replies(link, 2, 2000);
    assert.equal(got.length, served ? 2 : 1, `${chip}: replies`);
    assert.equal(v.chip.loss.dropped > 0, !served, `${chip}: dropped bytes counted`);
  }
});

Deno.test("busy: a T/U ring buffer loses what does not fit (no overflow check)", async () => {
  const { v, link } = await linked("bk7231t", {
    chip: "bk7231t",
    loader: { busy: { kind: "ring", size: 8, variants: [8] } },
  });
  await link.write(req(COMMANDS.FlashRead4K, { addr: 0x20000 }));
  await link.clock.sleep(5);
  await link.write(req(COMMANDS.FlashRead4K, { addr: 0x21000 }));
  const got = await replies(link, 2, 2000);
  assert.equal(got.length, 1, "the 12-byte request did not fit into 8 bytes");
  assert.equal(v.chip.loss.overflowed, 4);
});

Deno.test("T/U parser never times out: after a truncated frame it eats the next request; filler frees it", async () => {
  const { link } = await linked("bk7231t");
  const frame = req(COMMANDS.FlashWrite4K, { addr: 0x20000, data: new Uint8Array(4096).fill(0x5a) });
  await link.write(frame.subarray(0, 100));
  await link.clock.sleep(2000);
  await link.write(LINK_CHECK);
  assert.equal((await replies(link, 1, 200)).length, 0, "the link check was eaten as payload");
  // the client's recovery: the longest frame's worth of 0xFF, then a link check
  await link.write(new Uint8Array(7 + 0x1100).fill(0xff));
  await link.write(LINK_CHECK);
  const got = await replies(link, 2, 500);
  assert.ok(got.some((f) => f.kind === "short" && f.code === 0x01), "linked again");
});

Deno.test("BK7236 loader abandons a partial frame after its frame timeout", async () => {
  const { v, link } = await linked("bk7236");
  await link.write(req(COMMANDS.FlashRead4K, { addr: 0x20000 }).subarray(0, 6));
  await link.clock.sleep(100);
  await link.write(LINK_CHECK);
  assert.equal((await replies(link, 1, 100)).length, 1);
  assert.equal(v.chip.loss.abandoned, 1);
});

Deno.test("unknown commands: status 7 from BootROM and BK7236 loaders, silence from T/U", async () => {
  for (const [chip, answers] of [["bk7231n", true], ["bk7236", true], ["bk7231t", false]] as const) {
    const { link } = await linked(chip);
    await link.write(Uint8Array.of(0x01, 0xe0, 0xfc, 0xff, 0xf4, 0x02, 0x00, 0x33, 0x00));
    const got = await replies(link, 1, 100);
    assert.equal(got.length, answers ? 1 : 0, chip);
    if (answers) assert.equal(got[0].status, 7);
  }
});

Deno.test("BL2 link check: BK7236/BK7258 answer 03 00; a BootROM calls it unknown", async () => {
  const bl2 = Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, BL2_LINK_CHECK.code);
  for (const chip of ["bk7236", "bk7258"]) {
    const { link } = await linked(chip);
    await link.write(bl2);
    const [f] = await replies(link, 1, 50);
    assert.equal(f.code, BL2_LINK_CHECK.replyCode);
    assert.deepEqual([...f.payload], [0]);
  }
  const { link } = await linked("bk7231n");
  await link.write(bl2);
  const [f] = await replies(link, 1, 50);
  assert.deepEqual([f.code, ...f.payload], [0x02, 7]);
});

Deno.test("SetBaudRate: T/U waits (delay + 1) × 2 ms, BootROM-style loaders delay + 1 ms", async () => {
  for (const [chip, ms] of [["bk7231t", 42], ["bk7231n", 21], ["bk7236", 21]] as const) {
    const { link } = await linked(chip);
    const t0 = link.clock.now();
    const frame = req(COMMANDS.SetBaudRate, { baud: 2_000_000, delay: 20 });
    await link.write(frame);
    const sentAt = t0 + wireMs(frame.length, 115200);
    await (link as VirtualWire).setBaud(2_000_000);
    const [f] = await replies(link, 1, 500);
    assert.ok(f, chip);
    const took = link.clock.now() - sentAt;
    assert.ok(took >= ms && took < ms + 2, `${chip}: replied after ${took} ms, expected ≈ ${ms}`);
  }
});

Deno.test("baud quantisation: 26 MHz / an integer; 3 000 000 becomes 3 250 000 and a 3 Mbaud host hears garbage", async () => {
  assert.equal(realBaud(921600), 928571);
  assert.equal(realBaud(1_500_000), 1529412);
  assert.equal(realBaud(2_000_000), 2_000_000);
  assert.equal(realBaud(3_000_000), 3_250_000);
  assert.ok(!baudsMatch(3_000_000, realBaud(3_000_000)));
  const { v, link } = await linked("bk7231n");
  await link.write(req(COMMANDS.SetBaudRate, { baud: 3_000_000, delay: 20 }));
  await (link as VirtualWire).setBaud(3_000_000);
  assert.equal(v.chip.baudAt(link.clock.now() + 100), 3_250_000);
  await link.clock.sleep(50);
  await link.write(LINK_CHECK);
  assert.equal((await replies(link, 2, 200)).length, 0, "nothing decodes at 3 000 000");
  assert.throws(
    () => checkBaud(3_000_000),
    (e: unknown) => e instanceof FlashError && /2000000/.test(e.remedy),
  );
  assert.throws(() => checkBaud(0), FlashError);
  assert.throws(() => checkBaud(1), FlashError);
  assert.deepEqual(nearestWorkingBauds(2_500_000), [2_000_000]);
  checkBaud(1_500_000);
});

Deno.test("WriteSR replies before the flash is done on BootROM loaders: WIP can read 1", async () => {
  const { link } = await linked("bk7231n");
  await link.write(req(COMMANDS.FlashWriteSR, { cmd: 0x01, value: Uint8Array.of(0x00, 0x00) }));
  assert.equal((await replies(link, 1, 50)).length, 1);
  await link.write(req(COMMANDS.FlashReadSR, { cmd: 0x05 }));
  const [f] = await replies(link, 1, 50);
  assert.equal(f.payload[1] & 1, 1, "WIP still set");
});

Deno.test("BK7236 forbidden range: a write or erase there gets no reply at all", async () => {
  const { v, link } = await linked("bk7236");
  const before = v.nor.read(0, 0x1000);
  await link.write(req(COMMANDS.FlashErase, { sizeCmd: 0x20, addr: 0x0 }));
  assert.equal((await replies(link, 1, 2000)).length, 0);
  assert.deepEqual(v.nor.read(0, 0x1000), before);
  await link.write(req(COMMANDS.FlashErase, { sizeCmd: 0x20, addr: 0x20000 }));
  assert.equal((await replies(link, 1, 2000)).length, 1, "outside it the loader answers");
});

Deno.test("BK7238 with a P25Q16HBK: a no-op WRSR locks the status register at 0x7BFC; a change does not", async () => {
  for (const [value, locked] of [[0x00, true], [0x04, false]] as const) {
    const { v, link } = await linked("bk7238", { chip: "bk7238", flashId: [0x85, 0x20, 0x15] });
    await link.write(req(COMMANDS.FlashWriteSR, { cmd: 0x01, value: Uint8Array.of(value, 0x00) }));
    await replies(link, 1, 50);
    assert.equal(v.nor.srWord === 0x7bfc, locked, `WRSR ${value}`);
  }
  // the client never writes an unchanged value, so it never meets the lock
  const v = await createVirtualChip({ chip: "bk7238", flashId: [0x85, 0x20, 0x15] });
  const { target } = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
  await target.unprotect();
  assert.equal(v.nor.srWord, 0);
});

Deno.test("unprotect: a status write that lost a byte is read back and sent again, not failed", async () => {
  const v = await createVirtualChip({ chip: "bk7258" });
  v.nor.writeSr(0x01, Uint8Array.of(0x1c, 0x00), 0);
  const protectedSr = v.nor.srWord;
  const link = v.link();
  const { target } = await openUartTarget(link, { linkTimeoutMs: 2000 });
  // the BK7236-class loader abandons the partial frame after its frame timeout: nothing written
  const realWrite = link.write.bind(link);
  let cuts = 0;
  link.write = (d: Uint8Array) => {
    if (cuts === 0 && d.length > 8 && (d[3] === 0xff ? d[7] : d[4]) === COMMANDS.FlashWriteSR.code) {
      cuts++;
      return realWrite(d.subarray(0, d.length - 1));
    }
    return realWrite(d);
  };
  const report = await target.unprotect();
  assert.equal(cuts, 1);
  assert.notEqual(protectedSr & 0x1c, 0);
  assert.equal(v.nor.srWord & 0x1c, 0);
  assert.ok(report.wrote);
});

Deno.test("client: read-ahead follows the family (T/U yes, BootROM and BK7236 no) unless forced", async () => {
  const open = async (chip: string, readAhead?: boolean) =>
    (await openUartTarget((await createVirtualChip({ chip })).link(), { linkTimeoutMs: 2000, readAhead }))
      .target;
  assert.equal(typeof (await open("bk7231t")).readSectors, "function");
  assert.equal((await open("bk7231n")).readSectors, undefined);
  assert.equal((await open("bk7236")).readSectors, undefined);
  assert.equal(typeof (await open("bk7231n", true)).readSectors, "function");
  assert.equal((await open("bk7231t", false)).readSectors, undefined);
});

Deno.test("client: a T/U CRC of a length that is not a 256-multiple adds the tail it read", async () => {
  const v: VirtualChip = await createVirtualChip({ chip: "bk7231t" });
  const { target } = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
  for (const [a, n] of [[0x11000, 1000], [0x11f80, 0x100 + 0x90], [0x12000, 17]]) {
    assert.equal(await target.crc(a, n), crc32(v.nor.read(a, n)), `${a.toString(16)}+${n}`);
  }
});

Deno.test("client on T/U: after a truncated request the next command works (filler, then link check)", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const link = v.link();
  const { target, client } = await openUartTarget(link, { linkTimeoutMs: 2000 });
  // a request whose tail is lost on the line: the loader now waits for 4 KiB more
  const realWrite = link.write.bind(link);
  let cut = true;
  link.write = (d: Uint8Array) => {
    if (cut && d.length > 4000) {
      cut = false;
      return realWrite(d.subarray(0, 200));
    }
    return realWrite(d);
  };
  await target.eraseSector(0x20000);
  await assert.rejects(() => target.writeSector(0x20000, new Uint8Array(4096).fill(0x11)), FlashError);
  assert.deepEqual(await target.readSector(0x30000), v.nor.read(0x30000, 4096));
  assert.ok(client.fillerBytes > 0, "the recovery sent filler");
  // the 0xFF filler programmed nothing beyond the 200 - 12 bytes that had arrived
  assert.ok(v.nor.read(0x20000 + 188, 4096 - 188).every((b) => b === 0xff));
  await target.eraseSector(0x20000);
  await target.writeSector(0x20000, new Uint8Array(4096).fill(0x11));
  assert.ok(v.nor.read(0x20000, 4096).every((b) => b === 0x11));
});

Deno.test("client on T/U: a CheckCRC that lost a byte is completed cheaply (0x00 filler, not a 4 GiB CRC)", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const link = v.link();
  const { target, client } = await openUartTarget(link, { linkTimeoutMs: 2000 });
  // the third byte of the end address is lost: the loader waits for one more byte, which
  // becomes the top byte of the end address
  const realWrite = link.write.bind(link);
  let cut = true;
  link.write = (d: Uint8Array) => {
    if (cut && d.length === 13 && d[4] === COMMANDS.CheckCRC.code) {
      cut = false;
      return realWrite(Uint8Array.from([...d.subarray(0, 11), ...d.subarray(12)]));
    }
    return realWrite(d);
  };
  const t0 = v.clock.now();
  await assert.rejects(() => target.crc(0x60000, 0x2000), FlashError);
  assert.equal(await target.crc(0x60000, 0x2000), crc32(v.nor.read(0x60000, 0x2000)));
  assert.ok(client.fillerBytes > 0, "the recovery sent filler");
  // with a 0xFF filler the loader would be computing a CRC through the address wrap for hours
  assert.ok(v.clock.now() - t0 < 60_000, `took ${Math.round(v.clock.now() - t0)} ms`);
});

Deno.test("crc32Combine joins two CRCs as if over the concatenation", () => {
  const a = Uint8Array.from({ length: 777 }, (_, i) => (i * 31) & 0xff);
  const b = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7 + 3) & 0xff);
  const ab = new Uint8Array(a.length + b.length);
  ab.set(a);
  ab.set(b, a.length);
  assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(ab));
});

Deno.test({
  name:
    "emulate --pty bk7231t: a raw client gets the same CRC for inclusive and exclusive ends; bk7231n covers the extra byte",
  ignore: Deno.build.os !== "linux",
  async fn() {
    for (const chip of ["bk7231t", "bk7231n"]) {
      const v = await createVirtualChip({ chip });
      const server = servePty(v.chip, { pace: "wire" });
      const link = await openSerial(server.address, { baud: 115200 });
      try {
        v.chip.reset(server.now());
        let linkedUp = false;
        for (let i = 0; i < 200 && !linkedUp; i++) {
          await link.write(LINK_CHECK);
          linkedUp = (await replies(link, 1, 10)).length > 0;
        }
        assert.ok(linkedUp, `${chip}: linked over the PTY`);
        await link.flushInput();
        const crcOf = async (end: number) => {
          await link.write(req(COMMANDS.CheckCRC, { start: 0x11000, end }));
          const f = (await replies(link, 1, 3000)).find((r) => r.code === 0x10);
          assert.ok(f, `${chip}: CRC reply`);
          await link.write(LINK_CHECK);
          await replies(link, 1, 200);
          return chipToStandard(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0, true));
        };
        const exclusive = await crcOf(0x12000);
        const inclusive = await crcOf(0x11fff);
        const page = v.nor.read(0x11000, 4097);
        if (chip === "bk7231t") {
          assert.equal(exclusive, crc32(page.subarray(0, 4096)));
          assert.equal(inclusive, exclusive);
        } else {
          assert.equal(exclusive, crc32(page), "the inclusive end 0x12000 covers 4097 bytes");
          assert.equal(inclusive, crc32(page.subarray(0, 4096)));
        }
      } finally {
        await link.close();
        await server.close();
      }
    }
  },
});

Deno.test("client on T/U: an erase cut inside its address is completed with 0x00 and refused: nothing erased", async () => {
  for (const keep of [9, 10, 11]) {
    const v = await createVirtualChip({ chip: "bk7231t" });
    const link = v.link();
    const { target, client } = await openUartTarget(link, { linkTimeoutMs: 2000 });
    const before = v.nor.read(0, v.nor.size);
    const realWrite = link.write.bind(link);
    let cut = true;
    link.write = (d: Uint8Array) => {
      // the erase frame is 13 bytes: header, size code, 4 address bytes; keep the first `keep`
      if (cut && d.length === 13 && d[7] === 0x0f) {
        cut = false;
        return realWrite(d.subarray(0, keep));
      }
      return realWrite(d);
    };
    await assert.rejects(() => target.eraseSector(0x1f3000), FlashError);
    assert.deepEqual(await target.readSector(0x20000), v.nor.read(0x20000, 4096));
    assert.ok(client.fillerBytes > 0);
    assert.deepEqual(v.nor.read(0, v.nor.size), before, `kept ${keep} bytes: a sector was erased`);
  }
});
