import assert from "node:assert/strict";
import { lookupFlash } from "../core/spi/jedec.ts";
import { NorFlash, W25Q32JV_TYPICAL } from "../emulator/nor.ts";

/** Run one CS frame on the byte face, return MISO. */
function frame(nor: NorFlash, bytes: number[], now = 0, reads = 0): number[] {
  nor.select(now);
  const out = [...bytes, ...new Array(reads).fill(0)].map((b) => nor.exchange(b, now));
  nor.deselect(now);
  return out;
}

const th = () => new NorFlash({ id: [0xeb, 0x60, 0x15] });

Deno.test("nor: erased, size from the part, reads wrap at the end", () => {
  const nor = th();
  assert.equal(nor.size, 0x200000);
  assert.deepEqual(nor.jedecId, new Uint8Array([0xeb, 0x60, 0x15]));
  nor.program(0, new Uint8Array([1, 2]), 0);
  assert.deepEqual(nor.read(0x1ffffe, 4), new Uint8Array([0xff, 0xff, 1, 2]));
  assert.deepEqual(nor.read(0x200000, 1), new Uint8Array([1]));
});

Deno.test("nor: programming ANDs; only erase brings bits back", () => {
  const nor = th();
  nor.program(0x100, new Uint8Array([0xf0]), 0);
  nor.program(0x100, new Uint8Array([0x3c]), 10);
  assert.equal(nor.read(0x100, 1)[0], 0x30);
  const r = nor.eraseRange(0x0234, "4k", 20);
  assert.equal(r.changed, true);
  assert.equal(r.doneAt, 20 + W25Q32JV_TYPICAL.sector4kMs);
  assert.equal(nor.read(0x100, 1)[0], 0xff);
});

Deno.test("nor: erase aligns down to its unit", () => {
  const nor = th();
  nor.program(0x0fff, new Uint8Array([0, 0]), 0); // last byte of sector 0, first of sector 1
  nor.eraseRange(0x1fff, "4k", 0);
  assert.deepEqual(nor.read(0x0fff, 2), new Uint8Array([0, 0xff]));
  nor.program(0x10000, new Uint8Array([0]), 0);
  nor.eraseRange(0x1ffff, "64k", 0);
  assert.equal(nor.read(0x10000, 1)[0], 0xff);
  assert.equal(nor.read(0x0fff, 1)[0], 0);
});

Deno.test("nor: high-level operations queue behind a running one", () => {
  const nor = th();
  const a = nor.eraseRange(0, "64k", 0);
  const b = nor.program(0, new Uint8Array(512), 1);
  assert.equal(a.doneAt, 150);
  assert.equal(b.doneAt, 150 + 2 * 0.4, "two pages");
});

Deno.test("nor: page program wraps inside its 256-byte page (byte face)", () => {
  const nor = th();
  frame(nor, [0x06]);
  frame(nor, [0x02, 0x00, 0x01, 0xfe, 0xa1, 0xa2, 0xa3, 0xa4]);
  assert.deepEqual(nor.read(0x1fe, 2), new Uint8Array([0xa1, 0xa2]));
  assert.deepEqual(nor.read(0x100, 2), new Uint8Array([0xa3, 0xa4]));
  assert.equal(nor.read(0x200, 1)[0], 0xff, "next page untouched");
});

Deno.test("nor: more than 256 bytes keeps the last 256", () => {
  const nor = th();
  const data = Array.from({ length: 300 }, (_, i) => i & 0xff);
  frame(nor, [0x06]);
  frame(nor, [0x02, 0, 0, 0, ...data]);
  const page = nor.read(0, 256);
  // byte k of the payload lands at k % 256; bytes 0..43 were overwritten by 256..299
  for (let off = 0; off < 256; off++) {
    const k = off < 44 ? off + 256 : off;
    assert.equal(page[off], k & 0xff);
  }
});

Deno.test("nor: JEDEC, REMS, RES, READ, FAST READ on the byte face", () => {
  const nor = th();
  nor.program(0x1ffffe, new Uint8Array([0x11, 0x22]), 0);
  nor.program(0, new Uint8Array([0x33]), 0);
  assert.deepEqual(frame(nor, [0x9f], 10, 3), [0xff, 0xeb, 0x60, 0x15]);
  assert.deepEqual(frame(nor, [0x90, 0, 0, 0], 10, 2).slice(4), [0xeb, 0x14]);
  assert.deepEqual(frame(nor, [0x90, 0, 0, 1], 10, 2).slice(4), [0x14, 0xeb]);
  assert.deepEqual(frame(nor, [0xab, 0, 0, 0], 10, 1).slice(4), [0x14]);
  assert.deepEqual(frame(nor, [0x03, 0x1f, 0xff, 0xfe], 10, 3).slice(4), [0x11, 0x22, 0x33]);
  assert.deepEqual(frame(nor, [0x0b, 0x1f, 0xff, 0xfe, 0], 10, 2).slice(5), [0x11, 0x22]);
  assert.deepEqual(frame(nor, [0x4b], 10, 2), [0xff, 0xff, 0xff], "unknown opcode reads 0xFF");
});

Deno.test("nor: WEL is required, survives RDSR, clears on completion; WIP blocks all but status reads", () => {
  const nor = th();
  frame(nor, [0x20, 0, 0, 0], 0); // no WEL
  nor.program(0, new Uint8Array([0]), 0);
  assert.equal(nor.read(0, 1)[0], 0, "erase without WEL ignored");

  frame(nor, [0x06], 1);
  assert.equal(frame(nor, [0x05], 1, 1)[1], 0x02, "WEL set");
  assert.equal(frame(nor, [0x05], 1, 1)[1], 0x02, "RDSR does not clear WEL");
  frame(nor, [0x20, 0, 0, 0], 2);
  assert.equal(frame(nor, [0x05], 3, 1)[1], 0x03, "WIP and WEL during the erase");
  assert.deepEqual(frame(nor, [0x9f], 3, 3), [0xff, 0xff, 0xff, 0xff], "JEDEC ignored while busy");
  frame(nor, [0x06], 4);
  frame(nor, [0x04], 4);
  assert.equal(nor.read(0, 1)[0], 0xff);
  assert.equal(frame(nor, [0x05], 2 + 45, 1)[1], 0x00, "done: WIP and WEL clear");

  // one frame polling: status repeats and goes idle mid-frame
  frame(nor, [0x06], 100);
  frame(nor, [0x02, 0, 0, 0, 0x00], 100);
  nor.select(100);
  nor.exchange(0x05, 100);
  assert.equal(nor.exchange(0, 100.2), 0x03);
  assert.equal(nor.exchange(0, 100.4), 0x00);
  nor.deselect(100.4);

  frame(nor, [0x06], 200);
  frame(nor, [0x02, 0, 0, 0x10, 0x00], 200);
  frame(nor, [0x06], 200.1); // ignored: busy
  frame(nor, [0x02, 0, 0, 0x20, 0x00], 201);
  assert.equal(nor.read(0x20, 1)[0], 0xff, "WEL was not set by the WREN sent while busy");
});

Deno.test("nor: a command needs its exact length before CS rises", () => {
  const nor = th();
  nor.program(0, new Uint8Array([0]), 0);
  frame(nor, [0x06], 10);
  frame(nor, [0x20, 0, 0, 0, 0], 10); // one byte too many
  assert.equal(nor.read(0, 1)[0], 0);
  frame(nor, [0x20, 0, 0], 10); // too short
  assert.equal(nor.read(0, 1)[0], 0);
  frame(nor, [0x20, 0, 0, 0], 10);
  assert.equal(nor.read(0, 1)[0], 0xff);
});

Deno.test("nor: protection drops program/erase silently; chip erase refused when anything is protected", () => {
  const nor = th();
  nor.program(0, new Uint8Array([0x00]), 0);
  nor.program(0x1f0000, new Uint8Array([0x00]), 0);
  nor.srWord = 0x4004; // CMP + BP1: all but the last 64 KiB
  assert.deepEqual(nor.protectedRange(), { start: 0, end: 0x1f0000 });
  const e = nor.eraseRange(0, "4k", 10);
  assert.equal(e.blocked, true);
  assert.equal(e.doneAt, 10);
  assert.equal(nor.read(0, 1)[0], 0);
  assert.equal(nor.eraseRange(0x1f0000, "4k", 10).blocked, false);
  assert.equal(nor.program(0x10, new Uint8Array([0]), 100).blocked, true);
  assert.equal(nor.read(0x10, 1)[0], 0xff);
  assert.equal(nor.eraseRange(0, "chip", 200).blocked, true);
  assert.equal(nor.read(0, 1)[0], 0);

  frame(nor, [0x06], 300);
  frame(nor, [0xc7], 300);
  assert.equal(frame(nor, [0x05], 300, 1)[1], 0x04, "not busy, WEL cleared");
  nor.srWord = 0;
  frame(nor, [0x06], 400);
  frame(nor, [0xc7], 400);
  assert.equal(nor.read(0, 1)[0], 0xff);
  assert.equal(nor.busyAt(400 + 9_999), true);
});

Deno.test("nor: WRSR forms, read-only and sticky bits", () => {
  const nor = th();
  nor.srWord = 0x0800; // LB1 set
  frame(nor, [0x06]);
  frame(nor, [0x01, 0xff, 0xff], 0);
  assert.equal(nor.readSr(0x05, 1), 0xff, "WIP and WEL read 1 during tW");
  assert.equal(nor.srWord, 0x7bfc, "WIP/WEL, SR2 bit 2 and SUS read-only");
  nor.srWord = 0x0800;
  frame(nor, [0x06], 20);
  frame(nor, [0x01, 0x00, 0x00], 20);
  assert.equal(nor.srWord, 0x0800, "LB1 sticky");
  assert.equal(nor.readSr(0x35), 0x08);
  assert.equal(nor.readSr(0x15), 0xff, "no SR3 on a 2-register part");

  const r = nor.writeSr(0x01, new Uint8Array([0x04]), 100);
  assert.equal(r.accepted, true);
  assert.equal(r.doneAt, 110);
  assert.equal(nor.srWord, 0x0804, "one-byte WRSR keeps SR2 by default");
  assert.equal(nor.writeSr(0x31, new Uint8Array([0x00]), 200).accepted, false, "TH25Q16HB has no 0x31");
});

Deno.test("nor: per-part quirk: one-byte WRSR clears SR2", () => {
  const nor = new NorFlash({ id: [0xeb, 0x60, 0x15], oneByteWrsrClearsSr2: true, sr: 0x4204 });
  nor.writeSr(0x01, new Uint8Array([0x00]), 0);
  assert.equal(nor.srWord, 0x0000, "CMP and QE gone");
});

Deno.test("nor: separate SR2 opcode on parts that have it", () => {
  const gd = new NorFlash({ id: [0xc8, 0x40, 0x16], sr: 0x4004 });
  assert.equal(gd.writeSr(0x31, new Uint8Array([0x02]), 0).accepted, true);
  assert.equal(gd.srWord, 0x0204);
  const mx = new NorFlash({ part: lookupFlash([0xc2, 0x23, 0x15]), sr: 0x1040 });
  assert.equal(mx.readSr(0x15), 0x10, "Macronix CR via 0x15");
  assert.equal(mx.readSr(0x35), 0xff);
});

Deno.test("nor: SRP1 and SRP0 with WP# low lock the status registers", () => {
  const nor = new NorFlash({ id: [0xeb, 0x60, 0x15], sr: 0x0104 });
  assert.equal(nor.writeSr(0x01, new Uint8Array([0, 0]), 0).accepted, false);
  assert.equal(nor.srWord, 0x0104);
  frame(nor, [0x06], 1);
  frame(nor, [0x01, 0, 0], 1);
  assert.equal(nor.srWord, 0x0104);
  assert.equal(nor.readSr(0x05, 1) & 2, 0, "WEL dropped by the refused write");
  nor.powerCycle();
  assert.equal(nor.writeSr(0x01, new Uint8Array([0, 0]), 2).accepted, true, "power-cycle lock lifted");

  const hw = new NorFlash({ id: [0xeb, 0x60, 0x15], sr: 0x0084, wpHigh: false });
  assert.equal(hw.writeSr(0x01, new Uint8Array([0x80, 0]), 0).accepted, false);
  hw.wpHigh = true;
  assert.equal(hw.writeSr(0x01, new Uint8Array([0x80, 0]), 0).accepted, true);
  assert.equal(hw.srWord, 0x0080);
});

Deno.test("nor: volatile SR write via 0x50 takes no time", () => {
  const nor = new NorFlash({ id: [0xef, 0x40, 0x16], sr: 0x001c });
  frame(nor, [0x50], 0);
  frame(nor, [0x01, 0x00], 0);
  assert.equal(nor.srWord, 0);
  assert.equal(nor.busyAt(0), false);
});

Deno.test("nor: snapshot and restore the whole state", () => {
  const nor = th();
  nor.program(0x1000, new Uint8Array([1, 2, 3]), 0);
  nor.srWord = 0x4004;
  const snap = nor.snapshot();
  assert.deepEqual(snap.jedecId, [0xeb, 0x60, 0x15]);
  const other = th();
  other.restore(snap);
  assert.equal(other.srWord, 0x4004);
  assert.deepEqual(other.read(0x1000, 3), new Uint8Array([1, 2, 3]));
  snap.data[0x1000] = 9;
  assert.equal(nor.read(0x1000, 1)[0], 1, "snapshot is a copy");
  assert.throws(() => new NorFlash({ id: [0xef, 0x40, 0x16] }).restore(snap), RangeError);
});
