import assert from "node:assert/strict";
import fc from "fast-check";
import { CHIPS } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import { replyTimeoutMs } from "../core/uart/client.ts";
import type { Values } from "../core/uart/codec.ts";
import { connect } from "../core/uart/connect.ts";
import { COMMANDS, ERASE_4K, ERASE_64K } from "../core/uart/table.ts";
import { createFaultyChip, SLOWEST_CRC_BYTES_PER_SEC } from "../emulator/faults.ts";

/**
 * Timeouts (docs/testing.md §2 item 7): they grow with the payload and shrink with the baud rate; a
 * chip that is as slow as the datasheets' worst case never times out; a chip that stops
 * answering is reported within the command's bound, not before and not much later.
 */

const BAUDS = [115200, 230400, 460800, 921600, 1_500_000, 2_000_000];

/** Datasheet maxima (W25Q32JV rev G §9.6: tPP 3 ms, tSE 400 ms, tBE2 2 s) and a 16 ms USB latency timer. */
const WORST = {
  pageProgramMs: 3,
  sectorEraseMs: 400,
  blockEraseMs: 2000,
  crcBytesPerSec: SLOWEST_CRC_BYTES_PER_SEC,
  usbTurnaroundMs: 16,
};

Deno.test("reply timeouts grow with payload size and with the wire time per byte", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 0x800000 }),
      fc.nat({ max: 0x800000 }),
      fc.constantFrom(...BAUDS),
      fc.constantFrom(...BAUDS),
      (a, b, x, y) => {
        const [short, long] = a <= b ? [a, b] : [b, a];
        const [fast, slow] = x >= y ? [x, y] : [y, x];
        const crc = (len: number, baud: number) =>
          replyTimeoutMs(COMMANDS.CheckCRC, { start: 0, end: len }, baud);
        assert.ok(crc(short, fast) <= crc(long, fast));
        assert.ok(crc(long, fast) <= crc(long, slow));
        const read = (len: number, baud: number) =>
          replyTimeoutMs(COMMANDS.FlashRead, { addr: 0, length: len & 0xffff }, baud);
        if ((short & 0xffff) <= (long & 0xffff)) assert.ok(read(short, fast) <= read(long, fast));
        // the budget always covers the chip at its slowest documented CRC rate
        assert.ok(crc(long, fast) >= (long / SLOWEST_CRC_BYTES_PER_SEC) * 1000);
      },
    ),
    { seed: 31, numRuns: 300 },
  );
});

Deno.test("a chip at the datasheet worst case never times out", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...CHIPS.filter((c) => c.uart && c.personality === "FULL").map((c) => c.id)),
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant("crc" as const), len: fc.integer({ min: 1, max: 0x200000 }) }),
          fc.record({ op: fc.constant("erase" as const), big: fc.boolean() }),
          fc.record({ op: fc.constant("write" as const) }),
          fc.record({ op: fc.constant("read" as const) }),
        ),
        { minLength: 1, maxLength: 8 },
      ),
      async (chip, ops) => {
        const v = createFaultyChip({ chip, plan: { seed: 1, rates: {} }, timing: WORST });
        const client = await connect(v.link(), { linkTimeoutMs: 3000 });
        for (const o of ops) {
          switch (o.op) {
            case "crc":
              await client.command(COMMANDS.CheckCRC, { start: 0, end: o.len - 1 });
              break;
            case "erase":
              await client.command(COMMANDS.FlashErase, {
                sizeCmd: o.big ? ERASE_64K : ERASE_4K,
                addr: 0x100000,
              });
              break;
            case "write":
              await client.command(COMMANDS.FlashWrite4K, { addr: 0x100000, data: new Uint8Array(4096) });
              break;
            case "read":
              await client.command(COMMANDS.FlashRead4K, { addr: 0x100000 });
              break;
          }
        }
        await client.close();
      },
    ),
    { seed: 32, numRuns: 40 },
  );
});

Deno.test("a chip that stops answering is reported within the command's bound", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("CheckCRC", "FlashErase", "FlashWrite4K", "FlashRead4K", "LinkCheck"),
      fc.integer({ min: 1, max: 0x400000 }),
      async (name, len) => {
        const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 1, rates: {} } });
        const client = await connect(v.link(), { linkTimeoutMs: 3000 });
        const values: Values = name === "CheckCRC"
          ? { start: 0, end: len }
          : name === "FlashErase"
          ? { sizeCmd: ERASE_64K, addr: 0x100000 }
          : name === "FlashWrite4K"
          ? { addr: 0x100000, data: new Uint8Array(4096) }
          : name === "FlashRead4K"
          ? { addr: 0x100000 }
          : {};
        const spec = COMMANDS[name];
        const bound = replyTimeoutMs(spec, values, client.link.baud);
        v.rail.cut(v.clock.now());
        const t0 = v.clock.now();
        const err = await client.command(spec, values).then(() => null, (e) => e);
        const took = v.clock.now() - t0;
        assert.ok(err instanceof FlashError && err.code === "TIMEOUT", `expected TIMEOUT, got ${err}`);
        assert.ok(took >= bound - 1e-6, `gave up after ${took} ms, before the ${bound} ms bound`);
        assert.ok(took <= bound + 2, `took ${took} ms to notice, bound ${bound} ms`);
        await client.close();
      },
    ),
    { seed: 33, numRuns: 60 },
  );
});
