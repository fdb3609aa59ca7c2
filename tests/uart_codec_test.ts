import assert from "node:assert/strict";
import fc from "fast-check";
import { checkReply, decodeFields, encodeReply, encodeRequest, type Values } from "../core/uart/codec.ts";
import { chipCrc, chipToStandard, Crc32, crc32 } from "../core/crc.ts";
import { ReplyParser, RequestParser } from "../core/uart/parser.ts";
import { COMMANDS, type CommandSpec, type Field } from "../core/uart/table.ts";

const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)));

/** Lengths an open-ended byte field may take, per command (docs/uart.md §4.10, §4.13). */
function openLength(spec: CommandSpec, field: string): { minLength: number; maxLength: number } {
  if (spec.name === "FlashWrite" && field === "data") return { minLength: 1, maxLength: 256 };
  if (spec.name === "FlashWriteSR") return { minLength: 1, maxLength: 2 };
  return { minLength: 0, maxLength: 64 };
}

function fieldArb(spec: CommandSpec, f: Field): fc.Arbitrary<number | Uint8Array> {
  switch (f.type) {
    case "u8":
      return fc.integer({ min: 0, max: 0xff });
    case "u16":
      return fc.integer({ min: 0, max: 0xffff });
    case "u32":
      return fc.integer({ min: 0, max: 0xffffffff });
    case "bytes":
      return f.length !== undefined
        ? fc.uint8Array({ minLength: f.length, maxLength: f.length })
        : fc.uint8Array(openLength(spec, f.name));
  }
}

function valuesArb(spec: CommandSpec, fields: readonly Field[]): fc.Arbitrary<Values> {
  const record = fc.record(Object.fromEntries(fields.map((f) => [f.name, fieldArb(spec, f)])));
  return record.map((v) => ({ ...v }) as Values);
}

/** Fewer runs for the 4 KiB payloads, whose deep comparisons dominate the run time. */
const runs = (spec: CommandSpec) => ({ numRuns: spec.name.endsWith("4K") ? 25 : 100 });

// every row as the untyped CommandSpec: the values here are generated from its field list at run time
for (const spec of Object.values<CommandSpec>(COMMANDS)) {
  Deno.test(`codec: ${spec.name} request round-trips through the chip's parser`, () => {
    fc.assert(
      fc.property(valuesArb(spec, spec.request), (values) => {
        const frame = encodeRequest(spec, values);
        const p = new RequestParser();
        p.push(frame);
        const req = p.next();
        assert.ok(req);
        assert.equal(req.kind, spec.frame);
        assert.equal(req.code, spec.code);
        assert.deepEqual(decodeFields(spec.request, req.payload), values);
        assert.equal(p.pending, 0);
      }),
      runs(spec),
    );
  });

  if (!spec.reply) continue;
  const reply = spec.reply;
  Deno.test(`codec: ${spec.name} reply round-trips and passes its echo check`, () => {
    const arb = fc.tuple(valuesArb(spec, spec.request), valuesArb(spec, reply.fields));
    fc.assert(
      fc.property(arb, ([request, answer]) => {
        for (const name of spec.echo) answer[name] = request[name];
        const p = new ReplyParser();
        p.push(encodeReply(spec, answer));
        const frame = p.next();
        assert.ok(frame);
        assert.equal(frame.code, reply.code);
        assert.deepEqual(checkReply(spec, request, frame), { ok: true, values: answer });
      }),
      runs(spec),
    );
  });

  if (spec.echo.length > 0) {
    Deno.test(`codec: ${spec.name} reply with a different echo is rejected as "echo"`, () => {
      const arb = fc.tuple(valuesArb(spec, spec.request), valuesArb(spec, reply.fields));
      fc.assert(
        fc.property(arb, ([request, answer]) => {
          for (const name of spec.echo) answer[name] = request[name];
          const name = spec.echo[0];
          const v = answer[name];
          answer[name] = typeof v === "number" ? (v ^ 1) >>> 0 : v.map((b) => b ^ 1);
          const p = new ReplyParser();
          p.push(encodeReply(spec, answer));
          const check = checkReply(spec, request, p.next()!);
          assert.equal(check.ok, false);
          assert.equal(!check.ok && check.reason, "echo");
        }),
        runs(spec),
      );
    });
  }
}

Deno.test("codec: request frames match the bytes in docs/uart.md §4", () => {
  const cases: [Uint8Array, string][] = [
    [encodeRequest(COMMANDS.LinkCheck, {}), "01 E0 FC 01 00"],
    [
      encodeRequest(COMMANDS.WriteReg, { addr: 0x800074, value: 0x301 }),
      "01 E0 FC 09 01 74 00 80 00 01 03 00 00",
    ],
    [encodeRequest(COMMANDS.ReadReg, { addr: 0x800000 }), "01 E0 FC 05 03 00 00 80 00"],
    [encodeRequest(COMMANDS.Reboot, { magic: 0xa5 }), "01 E0 FC 02 0E A5"],
    [encodeRequest(COMMANDS.SetBaudRate, { baud: 921600, delay: 15 }), "01 E0 FC 06 0F 00 10 0E 00 0F"],
    [encodeRequest(COMMANDS.SetBaudRate, { baud: 1500000, delay: 20 }), "01 E0 FC 06 0F 60 E3 16 00 14"],
    [encodeRequest(COMMANDS.SetBaudRate, { baud: 2000000, delay: 20 }), "01 E0 FC 06 0F 80 84 1E 00 14"],
    [encodeRequest(COMMANDS.CheckCRC, { start: 0, end: 256 }), "01 E0 FC 09 10 00 00 00 00 00 01 00 00"],
    [encodeRequest(COMMANDS.ReadBootVersion, {}), "01 E0 FC 01 11"],
    [encodeRequest(COMMANDS.Reset, { magic: 0x4e414553 }), "01 E0 FC 05 70 53 45 41 4E"],
    [encodeRequest(COMMANDS.StayRom, { magic: 0x55 }), "01 E0 FC 02 AA 55"],
    [encodeRequest(COMMANDS.FlashRead4K, { addr: 0x11000 }), "01 E0 FC FF F4 05 00 09 00 10 01 00"],
    [encodeRequest(COMMANDS.FlashEraseAll, { arg: 4 }), "01 E0 FC FF F4 02 00 0A 04"],
    [encodeRequest(COMMANDS.FlashErase4K, { addr: 0x1000 }), "01 E0 FC FF F4 05 00 0B 00 10 00 00"],
    [encodeRequest(COMMANDS.FlashReadSR, { cmd: 0x35 }), "01 E0 FC FF F4 02 00 0C 35"],
    [
      encodeRequest(COMMANDS.FlashWriteSR, { cmd: 1, value: Uint8Array.of(0x5c) }),
      "01 E0 FC FF F4 03 00 0D 01 5C",
    ],
    [
      encodeRequest(COMMANDS.FlashWriteSR, { cmd: 1, value: Uint8Array.of(0x04, 0x40) }),
      "01 E0 FC FF F4 04 00 0D 01 04 40",
    ],
    [encodeRequest(COMMANDS.FlashGetMID, { spiCmd: 0x9f }), "01 E0 FC FF F4 05 00 0E 9F 00 00 00"],
    [
      encodeRequest(COMMANDS.FlashErase, { sizeCmd: 0x20, addr: 0x11000 }),
      "01 E0 FC FF F4 06 00 0F 20 00 10 01 00",
    ],
    [
      encodeRequest(COMMANDS.FlashErase, { sizeCmd: 0xd8, addr: 0x20000 }),
      "01 E0 FC FF F4 06 00 0F D8 00 00 02 00",
    ],
  ];
  for (const [got, want] of cases) assert.deepEqual(got, hex(want), want);
  const w4k = encodeRequest(COMMANDS.FlashWrite4K, { addr: 0x11000, data: new Uint8Array(4096) });
  assert.equal(w4k.length, 4108);
  assert.deepEqual(w4k.subarray(0, 12), hex("01 E0 FC FF F4 05 10 07 00 10 01 00"));
  const w = encodeRequest(COMMANDS.FlashWrite, { addr: 0x11000, data: new Uint8Array(3) });
  assert.deepEqual(w, hex("01 E0 FC FF F4 08 00 06 00 10 01 00 00 00 00"));
});

Deno.test("codec: reply sizes are the ones fixed-length readers wait for (docs/uart.md §2.7)", () => {
  const size = (spec: CommandSpec, values: Values) => encodeReply(spec, values).length;
  assert.equal(size(COMMANDS.LinkCheck, { ok: 0 }), 8);
  assert.equal(size(COMMANDS.ReadReg, { addr: 0, value: 0 }), 15);
  assert.equal(size(COMMANDS.WriteReg, { addr: 0, value: 0 }), 15);
  assert.equal(size(COMMANDS.SetBaudRate, { baud: 921600, delay: 20 }), 12);
  assert.equal(size(COMMANDS.CheckCRC, { crc: 0 }), 11);
  assert.equal(size(COMMANDS.FlashRead4K, { addr: 0, data: new Uint8Array(4096) }), 4111);
  assert.equal(size(COMMANDS.FlashWrite4K, { addr: 0 }), 15);
  assert.equal(size(COMMANDS.FlashErase4K, { addr: 0 }), 15);
  assert.equal(size(COMMANDS.FlashGetMID, { pad: 0, id: new Uint8Array(3) }), 15);
  assert.equal(size(COMMANDS.FlashErase, { sizeCmd: 0x20, addr: 0 }), 16);
  assert.equal(size(COMMANDS.FlashWrite, { addr: 0, count: 1 }), 16);
  assert.equal(size(COMMANDS.FlashReadSR, { cmd: 5, value: 0 }), 13);
  assert.equal(size(COMMANDS.FlashWriteSR, { cmd: 1, value: Uint8Array.of(0) }), 13);
  assert.equal(size(COMMANDS.FlashWriteSR, { cmd: 1, value: Uint8Array.of(0, 0) }), 14);
  assert.equal(size(COMMANDS.StayRom, { magic: 0x55 }), 8);
  assert.equal(
    size(COMMANDS.ReadBootVersion, { version: new TextEncoder().encode("BK7231S_1.0.5") }),
    7 + 13,
  );
});

Deno.test("codec: reply bytes match docs/uart.md captures", () => {
  assert.deepEqual(encodeReply(COMMANDS.LinkCheck, { ok: 0 }), hex("04 0E 05 01 E0 FC 01 00"));
  assert.deepEqual(
    encodeReply(COMMANDS.SetBaudRate, { baud: 921600, delay: 20 }),
    hex("04 0E 09 01 E0 FC 0F 00 10 0E 00 14"),
  );
  assert.deepEqual(
    encodeReply(COMMANDS.CheckCRC, { crc: 0x0eab98f5 }),
    hex("04 0E 08 01 E0 FC 10 F5 98 AB 0E"),
  );
  assert.deepEqual(
    encodeReply(COMMANDS.FlashGetMID, { pad: 0, id: hex("EB 60 15") }),
    hex("04 0E FF 01 E0 FC F4 06 00 0E 00 00 EB 60 15"),
  );
  // the BK7231N FlashRead4K @0 capture from BK7231GUIFlashTool#5
  const data = new Uint8Array(4096);
  data[0] = 0x69;
  const r = encodeReply(COMMANDS.FlashRead4K, { addr: 0, data });
  assert.deepEqual(r.subarray(0, 16), hex("04 0E FF 01 E0 FC F4 06 10 09 00 00 00 00 00 69"));
});

Deno.test("codec: the status byte of a long reply is reported, not decoded", () => {
  const p = new ReplyParser();
  p.push(hex("04 0E FF 01 E0 FC F4 07 00 09 06 00 00 00 00 00"));
  const check = checkReply(COMMANDS.FlashRead4K, { addr: 0 }, p.next()!);
  assert.deepEqual(check, { ok: false, reason: "status", status: 6, detail: "FlashRead4K status 6" });
});

Deno.test("codec: a reply of another command is 'other'", () => {
  const p = new ReplyParser();
  p.push(encodeReply(COMMANDS.LinkCheck, { ok: 0 }));
  const check = checkReply(COMMANDS.SetBaudRate, { baud: 921600, delay: 20 }, p.next()!);
  assert.equal(!check.ok && check.reason, "other");
});

Deno.test("crc: docs/uart.md §4.6 vectors, standard and raw", () => {
  const ff4k = new Uint8Array(4096).fill(0xff);
  assert.equal(crc32(ff4k), 0xf154670a);
  assert.equal(chipCrc(ff4k), 0x0eab98f5);
  // 256 and 257 zero bytes: these are the standard CRC-32 values; the chip sends their inverse
  assert.equal(crc32(new Uint8Array(256)), 0x0d968558);
  assert.equal(chipCrc(new Uint8Array(256)), 0xf2697aa7);
  assert.equal(crc32(new Uint8Array(257)), 0xb7bfa0ce);
  assert.equal(chipCrc(new Uint8Array(257)), 0x48405f31);
  // crc.ts doc example: chipCrc(257 zeros) = 0xb7bfa0ce ^ 0xffffffff
  assert.equal(chipCrc(new Uint8Array(257)), (0xb7bfa0ce ^ 0xffffffff) >>> 0);
});

Deno.test("crc: the raw/standard map is its own inverse and Crc32 is incremental", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(600), (data, cut) => {
    const at = Math.min(cut, data.length);
    assert.equal(chipToStandard(chipCrc(data)), crc32(data));
    const c = new Crc32().update(data.subarray(0, at)).update(data.subarray(at));
    assert.equal(c.standard, crc32(data));
    assert.equal(c.chip, chipCrc(data));
  }));
});
