import assert from "node:assert/strict";
import fc from "fast-check";
import { concat, encodeReply, encodeRequest, frameReply, type ReplyFrame } from "../core/uart/codec.ts";
import { ReplyParser, RequestParser } from "../core/uart/parser.ts";
import { COMMANDS } from "../core/uart/table.ts";

/** A reply frame as the chip could send it: short (RSP + payload) or long (RSP, status, payload). */
const replyArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 }))
    .map(([code, payload]) => frameReply("short", code, payload)),
  fc.tuple(
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 7 }),
    fc.uint8Array({ maxLength: 300 }),
  )
    .map(([code, status, payload]) => frameReply("long", code, payload, status)),
  fc.constant(encodeReply(COMMANDS.LinkCheck, { ok: 0 })),
  fc.integer({ min: 0, max: 0xffffffff }).map((addr) =>
    encodeReply(COMMANDS.FlashRead4K, { addr, data: new Uint8Array(4096).fill(addr & 0xff) })
  ),
);

/**
 * Line noise between frames. It never contains 0x0E, so it cannot complete a `04 0E`
 * preamble by itself (a trailing 0x04 followed by a frame's own `04 0E` is fine).
 */
const noiseArb = fc.uint8Array({ maxLength: 12 }).map((b) => b.map((x) => (x === 0x0e ? 0x0f : x)));

/** Split `data` at the given cut points (sorted, deduplicated, in range). */
function chunk(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, data.length]) {
    out.push(data.subarray(prev, c));
    prev = c;
  }
  return out;
}

function drain(p: ReplyParser): ReplyFrame[] {
  const out: ReplyFrame[] = [];
  for (let f = p.next(); f; f = p.next()) out.push(f);
  return out;
}

Deno.test("parser: frames come out whole and in order under any chunking, with noise between them", () => {
  const arb = fc.tuple(
    fc.array(fc.tuple(noiseArb, replyArb), { maxLength: 8 }),
    noiseArb,
    fc.array(fc.nat(), { maxLength: 30 }),
  );
  fc.assert(
    fc.property(arb, ([items, tail, cuts]) => {
      const stream = concat([...items.flatMap(([noise, frame]) => [noise, frame]), tail]);
      const p = new ReplyParser();
      const got: ReplyFrame[] = [];
      for (const c of chunk(stream, cuts)) {
        p.push(c);
        got.push(...drain(p));
      }
      assert.deepEqual(got.map((f) => f.raw), items.map(([, frame]) => frame));
      const noise = items.reduce((n, [x]) => n + x.length, 0) + tail.length;
      assert.equal(p.skipped + p.pending, noise);
    }),
    { numRuns: 200 },
  );
});

Deno.test("parser: arbitrary bytes never break it, and every byte is accounted for", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
      const p = new ReplyParser();
      let framed = 0;
      for (const c of chunks) {
        p.push(c);
        for (const f of drain(p)) framed += f.raw.length;
      }
      const total = chunks.reduce((n, c) => n + c.length, 0);
      assert.equal(framed + p.skipped + p.pending, total);
    }),
  );
});

Deno.test("parser: a reply split at every byte boundary still parses", () => {
  const frame = encodeReply(COMMANDS.FlashGetMID, { pad: 0, id: Uint8Array.of(0xeb, 0x60, 0x15) });
  for (let i = 0; i <= frame.length; i++) {
    const p = new ReplyParser();
    p.push(frame.subarray(0, i));
    const early = p.next();
    if (i < frame.length) assert.equal(early, undefined, `complete after ${i} bytes`);
    p.push(frame.subarray(i));
    const f = early ?? p.next();
    assert.ok(f);
    assert.deepEqual(f.raw, frame);
    assert.equal(f.status, 0);
    assert.deepEqual(f.payload, Uint8Array.of(0, 0xeb, 0x60, 0x15));
  }
});

Deno.test("parser: stale replies stay separate frames for the client to skip", () => {
  const p = new ReplyParser();
  const stale = encodeReply(COMMANDS.LinkCheck, { ok: 0 });
  const real = encodeReply(COMMANDS.SetBaudRate, { baud: 921600, delay: 20 });
  p.push(concat([stale, stale.subarray(0, 5), Uint8Array.of(0xff, 0x00), real]));
  const frames = drain(p);
  assert.deepEqual(frames.map((f) => f.code), [0x01, 0x0f]);
  assert.deepEqual(frames[1].payload, Uint8Array.of(0x00, 0x10, 0x0e, 0x00, 20));
});

Deno.test("parser: a false preamble in the data resynchronises on the next real frame", () => {
  const p = new ReplyParser();
  const real = encodeReply(COMMANDS.CheckCRC, { crc: 0x0eab98f5 });
  // 04 0E with an implausible length, then 04 0E 05 without the 01 E0 FC marker
  p.push(concat([Uint8Array.of(0x04, 0x0e, 0x02, 0x04, 0x0e, 0x05, 0x99, 0x98), real]));
  const frames = drain(p);
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0].raw, real);
  assert.equal(p.skipped, 8);
});

Deno.test("request parser: frames survive chunking and the ASCII reboot command between them", () => {
  const reqs = [
    encodeRequest(COMMANDS.LinkCheck, {}),
    encodeRequest(COMMANDS.FlashRead4K, { addr: 0x11000 }),
    encodeRequest(COMMANDS.SetBaudRate, { baud: 921600, delay: 20 }),
  ];
  const noise = new TextEncoder().encode("reboot\r\n");
  const stream = concat([noise, reqs[0], noise, reqs[1], reqs[2]]);
  fc.assert(fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
    const p = new RequestParser();
    const got: number[] = [];
    for (const c of chunk(stream, cuts)) {
      p.push(c);
      for (let r = p.next(); r; r = p.next()) got.push(r.code);
    }
    assert.deepEqual(got, [0x00, 0x09, 0x0f]);
  }));
});
