import { assertSameBytes } from "./support/bytes.ts";
import assert from "node:assert/strict";
import { FlashError } from "../core/errors.ts";
import { createContext, MemoryStore, writeFlash } from "../core/flasher/mod.ts";
import type { ByteLink } from "../core/io/link.ts";
import { encodeReply } from "../core/uart/codec.ts";
import { ChangeLedger } from "../core/uart/ledger.ts";
import { ReplyParser } from "../core/uart/parser.ts";
import { connect } from "../core/uart/connect.ts";
import { COMMANDS, ERASE_4K } from "../core/uart/table.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createFaultyChip } from "../emulator/faults.ts";

/** A link whose `nth` write has bit `bit` of byte `index` flipped on the way to the chip. */
function corruptingWrite(
  inner: ByteLink,
  nth: (data: Uint8Array) => boolean,
  index: number,
  bit: number,
): ByteLink {
  let done = false;
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "write") {
        return (data: Uint8Array) => {
          if (!done && nth(data)) {
            done = true;
            const bad = data.slice();
            bad[index] ^= 1 << bit;
            return target.write(bad);
          }
          return target.write(data);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function frameOf(bytes: Uint8Array) {
  const p = new ReplyParser();
  p.push(bytes);
  return p.next()!;
}

Deno.test("ledger: a stale reply to a request really sent is not an alarm; one nobody sent is", () => {
  const ledger = new ChangeLedger();
  ledger.sent(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x5f000 });
  ledger.sent(COMMANDS.FlashRead4K, { addr: 0x10000 });
  const stale = frameOf(encodeReply(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x5f000 }));
  assert.equal(ledger.check(stale), null);
  const read = frameOf(encodeReply(COMMANDS.FlashRead4K, { addr: 0x10000, data: new Uint8Array(4096) }));
  assert.equal(ledger.check(read), null, "reads change nothing");
  const refused = frameOf(encodeReply(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x1000 }, 6));
  assert.equal(ledger.check(refused), null, "a refused request changed nothing");
  const other = ledger.check(frameOf(encodeReply(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x5e000 })));
  assert.ok(other instanceof FlashError && other.code === "WRITE_FAILED");
  assert.deepEqual(other.damage, { start: 0x5e000, end: 0x5f000 });
  const erase4k = ledger.check(frameOf(encodeReply(COMMANDS.FlashErase4K, { addr: 0x10000 })));
  assert.deepEqual(erase4k?.damage, { start: 0x10000, end: 0x11000 });
});

Deno.test("ledger: a reply naming a change asked for and answered earlier is an alarm; a late answer is not", () => {
  const erase = (addr: number) => frameOf(encodeReply(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr }));
  const ledger = new ChangeLedger();
  // 0x4a000 was sent, its answer never came (the request was corrupted), then sent again and answered
  ledger.sent(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x4a000 });
  ledger.sent(COMMANDS.LinkCheck, {});
  ledger.answered(frameOf(encodeReply(COMMANDS.LinkCheck, { ok: 0 })));
  ledger.sent(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x4a000 });
  ledger.answered(erase(0x4a000), COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x4a000 });
  ledger.sent(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x58000 });
  ledger.answered(erase(0x58000), COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x58000 });
  ledger.sent(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x5a000 });
  const hit = ledger.check(erase(0x4a000));
  assert.ok(hit instanceof FlashError && hit.code === "WRITE_FAILED", "every earlier request was settled");
  assert.deepEqual(hit.damage, { start: 0x4a000, end: 0x4b000 });
  assert.equal(ledger.check(erase(0x4a000)), null, "the same frame twice in a row is one answer heard twice");
  // the request still waiting (0x5a000) may be answered late, once
  assert.equal(ledger.check(erase(0x5a000)), null);
  assert.ok(ledger.check(erase(0x5a000)) === null, "heard twice in a row");
  ledger.check(erase(0x1000));
  assert.ok(ledger.check(erase(0x5a000)) instanceof FlashError, "its one answer was already taken");
  assert.equal(ledger.lost, 1, "the first 0x4a000 erase was settled without its reply");
  ledger.sent(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x60000 });
  ledger.answered(erase(0x60000), COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x60000 });
  assert.equal(ledger.lost, 1, "an awaited answer is no lost reply");
});

Deno.test("an erase whose address was corrupted on the wire is reported with the sector it hit", async () => {
  const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 1, rates: {} } });
  // FlashErase frame: 01 e0 fc ff f4 06 00 0f 20 a0 a1 a2 a3; 0x5f000 has a1 = 0xf0 → 0xe0
  const link = corruptingWrite(v.link(), (d) => d[7] === 0x0f && d.length === 13, 10, 4);
  const client = await connect(link, { linkTimeoutMs: 2000 });
  const e = await client.command(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: 0x5f000 }).catch((x) => x);
  assert.ok(e instanceof FlashError && e.code === "WRITE_FAILED", String(e));
  assert.deepEqual(e.damage, { start: 0x5e000, end: 0x5f000 });
  assert.ok(v.nor.read(0x5e000, 0x1000).every((b) => b === 0xff), "the chip did erase the wrong sector");
  await client.close();
});

Deno.test("a read turned into an erase on the wire fails the job and names the sector, instead of a wrong backup", async () => {
  const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 1, rates: {} } });
  const pre = v.nor.read(0, v.nor.size);
  // the 20th FlashRead4K of the backup becomes FlashErase4K (code 0x09 → 0x0b, bit 1 of byte 7)
  let reads = 0;
  const link = corruptingWrite(v.link(), (d) => d[7] === 0x09 && d.length === 12 && ++reads === 20, 7, 1);
  const { target } = await openUartTarget(link, { linkTimeoutMs: 2000 });
  const ctx = await createContext(target, link.clock);
  const store = new MemoryStore();
  const image = new Uint8Array(0x3000).fill(0x42);
  const e = await writeFlash(ctx, image, {
    addr: 0x100000,
    store,
    identity: { chip: "BK7231N", flashId: "eb6015", key: null },
    createdAt: new Date(0),
  }).catch((x) => x);
  assert.ok(e instanceof FlashError && e.code === "WRITE_FAILED", String(e));
  const now = v.nor.read(0, v.nor.size);
  const changed = now.findIndex((b, i) => b !== pre[i]);
  assert.ok(changed >= 0, "the corrupted request did erase something");
  assert.ok(
    e.damage && changed >= e.damage.start && changed < e.damage.end,
    `damage ${JSON.stringify(e.damage)}`,
  );
  for (const [name, data] of store.entries) {
    if (name.endsWith(".bin")) assertSameBytes(data, pre, "a backup (none of a damaged chip is kept)");
  }
  await target.close();
});

Deno.test("an erase completed by the next request's first byte is named at the address the flash decodes", async () => {
  const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 1, rates: {} } });
  const pre = v.nor.read(0, 0x1000);
  const inner = v.link();
  let dropped = false;
  // the third address byte (0x08 of 0x80000) is lost: the chip takes the next frame's 0x01 as the
  // top byte and erases 0x01000000, which a 2 MiB flash decodes as 0x0
  const link = new Proxy(inner, {
    get(target, prop) {
      if (prop === "write") {
        return (data: Uint8Array) => {
          if (!dropped && data[7] === 0x0f && data.length === 13) {
            dropped = true;
            return target.write(Uint8Array.from([...data.subarray(0, 11), ...data.subarray(12)]));
          }
          return target.write(data);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const { target } = await openUartTarget(link, { linkTimeoutMs: 2000 });
  const lost = await target.eraseSector(0x80000).catch((x) => x);
  assert.ok(lost instanceof FlashError && lost.code === "TIMEOUT", String(lost));
  const e = await target.crc(0x11000, 0x1000).catch((x) => x);
  assert.ok(e instanceof FlashError && e.code === "WRITE_FAILED", String(e));
  assert.deepEqual(e.damage, { start: 0, end: 0x1000 });
  assert.notDeepEqual(v.nor.read(0, 0x1000), pre, "sector 0 was erased");
  await target.close();
});

for (const sparse of [true, false]) {
  Deno.test(
    `a read turned into an erase whose reply is lost too is caught by the backup (${
      sparse ? "its erased-region map, taken before the first read" : "its whole-chip CRC"
    })`,
    async () => {
      const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 1, rates: {} } });
      let reads = 0;
      let cut = false;
      const inner = corruptingWrite(
        v.link(),
        (d) => d[7] === 0x09 && d.length === 12 && ++reads === 30,
        7,
        1,
      );
      const erased = [0x04, 0x0e, 0xff, 0x01, 0xe0, 0xfc, 0xf4, 0x06, 0x00, 0x0b];
      // the erase's reply is lost on the way back, so nothing the host hears mentions it
      const link = new Proxy(inner, {
        get(target, prop) {
          if (prop === "read") {
            return async (max: number, ms: number) => {
              const got: Uint8Array = await target.read(max, ms);
              const at = cut ? -1 : got.findIndex((_, i) => erased.every((b, k) => got[i + k] === b));
              if (at < 0) return got;
              cut = true;
              return Uint8Array.from([...got.subarray(0, at), ...got.subarray(at + 15)]);
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const { target } = await openUartTarget(link, { linkTimeoutMs: 2000 });
      const ctx = await createContext(target, link.clock, { sparse });
      const e = await writeFlash(ctx, new Uint8Array(0x1000).fill(0x42), {
        addr: 0x100000,
        store: new MemoryStore(),
        identity: { chip: "BK7231N", flashId: "eb6015", key: null },
        createdAt: new Date(0),
      }).catch((x) => x);
      assert.ok(cut, "the erase reply was dropped");
      assert.ok(e instanceof FlashError && e.code === "BACKUP_FAILED", String(e));
      if (sparse) {
        // the map names the unit that changed: it holds the sector the read erased
        const { start, end } = e.damage!;
        assert.ok(start >= 0 && end <= v.nor.size && end > start, JSON.stringify(e.damage));
        const blank = new Uint8Array(0x1000).fill(0xff);
        let found = false;
        for (let a = start; a < end; a += 0x1000) {
          found ||= v.nor.read(a, 0x1000).every((b, i) => b === blank[i]);
        }
        assert.ok(found, "the damage range holds the erased sector");
      } else assert.deepEqual(e.damage, { start: 0, end: v.nor.size });
      await target.close();
    },
  );
}
