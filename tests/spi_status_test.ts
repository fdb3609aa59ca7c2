import assert from "node:assert/strict";
import fc from "fast-check";
import { FLASH_PARTS, flashPartFor, genericFlashPart, lookupFlash, sizeFromId } from "../core/spi/jedec.ts";
import {
  decodeStatus,
  describeStatus,
  diagnoseLock,
  needsUnprotect,
  protectedRange,
  srBytes,
  srWordOf,
  unprotectedValue,
} from "../core/spi/status.ts";

const TH = lookupFlash([0xeb, 0x60, 0x15])!;
const EN = lookupFlash(new Uint8Array([0x1c, 0x70, 0x15]))!;
const MX = lookupFlash([0xc2, 0x23, 0x15])!;

Deno.test("jedec: known parts carry the Beken list's facts", () => {
  assert.equal(TH.name, "TH25Q16HB");
  assert.equal(TH.size, 2 * 1024 * 1024);
  assert.equal(TH.srCount, 2);
  assert.deepEqual(TH.srRead, [0x05, 0x35]);
  assert.equal(TH.protectMask, 0x407c);
  assert.equal(TH.layout.qeBit, 9);
  assert.equal(TH.layout.cmpBit, 14);
  assert.equal(TH.sr2Write, "combined");
  assert.equal(EN.srCount, 1);
  assert.equal(EN.protectMask, 0x003c);
  assert.equal(EN.layout.bpBits, 4);
  assert.equal(EN.layout.qeBit, 6);
  assert.equal(EN.layout.cmpBit, null);
  assert.deepEqual(MX.srRead, [0x05, 0x15]);
  assert.equal(MX.protectMask, 0x103c);
  assert.equal(lookupFlash([0xc8, 0x40, 0x16])!.sr2Write, "separate");
  assert.equal(lookupFlash([0x01, 0x4b, 0x42])!.size, 512 * 1024);
  assert.equal(lookupFlash([0x12, 0x34, 0x56]), undefined);
  assert.equal(lookupFlash([0xeb, 0x60]), undefined);
});

Deno.test("jedec: IDs are unique and sizes match the capacity byte except the BK entry", () => {
  const seen = new Set<string>();
  for (const p of FLASH_PARTS) {
    const k = p.id.join(",");
    assert.ok(!seen.has(k), `duplicate ${p.name}`);
    seen.add(k);
    if (p.name !== "BK") assert.equal(p.size, 2 ** p.id[2], p.name);
    assert.equal(p.srRead.length, p.srCount, p.name);
  }
});

Deno.test("jedec: sizeFromId falls back to 1 << capacity, 0 when implausible", () => {
  assert.equal(sizeFromId([0x99, 0x99, 0x16]), 4 * 1024 * 1024);
  assert.equal(sizeFromId([0xff, 0xff, 0xff]), 0);
  assert.equal(sizeFromId([0x01, 0x4b, 0x42]), 512 * 1024);
  const g = genericFlashPart([0x99, 0x99, 0xff]);
  assert.equal(g.known, false);
  assert.equal(g.size, 2 * 1024 * 1024);
  assert.equal(flashPartFor([0xeb, 0x60, 0x15]), TH);
});

Deno.test("status: docs/spi-ch341.md C.4 worked examples on 2 MiB", () => {
  assert.deepEqual(protectedRange(TH, 0x0004), { start: 0x1f0000, end: 0x200000 });
  assert.deepEqual(protectedRange(TH, 0x4004), { start: 0, end: 0x1f0000 });
  assert.deepEqual(protectedRange(TH, 0x001c), { start: 0, end: 0x200000 });
  assert.deepEqual(protectedRange(TH, 0x0000), { start: 0, end: 0 });
  assert.deepEqual(protectedRange(TH, 0x4000), { start: 0, end: 0x200000 }, "CMP alone protects everything");
  assert.deepEqual(protectedRange(TH, 0x401c), { start: 0, end: 0 }, "CMP of all is nothing");
});

Deno.test("status: TB puts the range at the bottom, SEC uses 4 KiB units capped at 32 KiB", () => {
  assert.deepEqual(protectedRange(TH, 0x0024), { start: 0, end: 0x10000 });
  assert.deepEqual(protectedRange(TH, 0x0044), { start: 0x1ff000, end: 0x200000 });
  assert.deepEqual(protectedRange(TH, 0x0064), { start: 0, end: 0x1000 });
  assert.deepEqual(protectedRange(TH, 0x0058), { start: 0x1f8000, end: 0x200000 }, "SEC, BP=6 → 32 KiB");
  assert.deepEqual(protectedRange(TH, 0x0014), { start: 0x100000, end: 0x200000 }, "BP=5 → half");
  assert.deepEqual(protectedRange(TH, 0x0018), { start: 0, end: 0x200000 }, "BP=6 → capped at all");
  // 16 MiB: unit grows so BP=6 still covers half.
  const big = lookupFlash([0xef, 0x40, 0x18])!;
  assert.deepEqual(protectedRange(big, 0x0018), { start: 0x800000, end: 0x1000000 });
  assert.deepEqual(protectedRange(big, 0x0004), { start: 0xfc0000, end: 0x1000000 });
});

Deno.test("status: decode fields per layout", () => {
  const f = decodeStatus(TH, 0x42ff);
  assert.equal(f.wip, true);
  assert.equal(f.wel, true);
  assert.equal(f.bp, 7);
  assert.equal(f.tb, true);
  assert.equal(f.sec, true);
  assert.equal(f.srp0, true);
  assert.equal(f.srp1, false);
  assert.equal(f.qe, true);
  assert.equal(f.cmp, true);
  const e = decodeStatus(EN, 0x5c);
  assert.equal(e.bp, 7);
  assert.equal(e.qe, true);
  assert.equal(e.cmp, false);
});

Deno.test("status: unprotect clears BP/TB/SEC/CMP and keeps QE, SRP and the rest", () => {
  assert.equal(unprotectedValue(TH, 0x4004), 0);
  assert.equal(unprotectedValue(TH, 0x42fc), 0x0280);
  assert.equal(unprotectedValue(EN, 0x5c), 0x40, "GUI log: 5c → 40");
  assert.equal(unprotectedValue(MX, 0x107c), 0x0040, "MX keeps QE at bit 6");
  assert.equal(needsUnprotect(TH, 0x4000), true);
  assert.equal(needsUnprotect(TH, 0x0280), false);
  assert.equal(needsUnprotect(EN, 0x40), false);
});

Deno.test("status: unprotected value never protects anything and never touches kept bits (property)", () => {
  const parts = FLASH_PARTS.filter((p) => p.srCount > 0);
  fc.assert(
    fc.property(fc.constantFrom(...parts), fc.integer({ min: 0, max: 0xffffff }), (p, raw) => {
      const sr = raw & (2 ** (8 * p.srCount) - 1);
      const u = unprotectedValue(p, sr);
      assert.equal(needsUnprotect(p, u), false);
      assert.equal(protectedRange(p, u).end, 0);
      if (p.layout.qeBit !== null) assert.equal((u >> p.layout.qeBit) & 1, (sr >> p.layout.qeBit) & 1);
      if (p.layout.srp0Bit !== null) assert.equal((u >> p.layout.srp0Bit) & 1, (sr >> p.layout.srp0Bit) & 1);
      assert.equal(u & ~sr, 0, "unprotect only clears bits");
    }),
  );
});

Deno.test("status: lock diagnosis", () => {
  assert.equal(diagnoseLock(TH, 0).locked, false);
  assert.equal(diagnoseLock(TH, 0x0100).mode, "power-cycle");
  assert.equal(diagnoseLock(TH, 0x0100).locked, true);
  assert.equal(diagnoseLock(TH, 0x0180).mode, "permanent");
  assert.equal(diagnoseLock(TH, 0x0080).locked, false);
  assert.equal(diagnoseLock(TH, 0x0080, "low").locked, true);
  assert.match(diagnoseLock(TH, 0x0080, "low").reason, /WP#/);
  assert.equal(diagnoseLock(EN, 0x0100).mode, "none", "no SRP1 on single-register parts");
});

Deno.test("status: register bytes round trip and description", () => {
  assert.deepEqual(srBytes(TH, 0x4004), [0x04, 0x40]);
  assert.equal(srWordOf([0x04, 0x40]), 0x4004);
  assert.match(describeStatus(TH, 0x4004), /BP=1 .*CMP=1.*0x000000\.\.0x1effff protected/);
});
