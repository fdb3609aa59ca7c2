import assert from "node:assert/strict";
import fc from "fast-check";
import { loaderFamilyOf } from "../core/chips/loaders.ts";
import { CHIPS } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import type { UnprotectReport } from "../core/target.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import type { SpiMaster, SpiStep } from "../core/io/spi.ts";
import { FLASH_PARTS, type FlashPart } from "../core/spi/jedec.ts";
import { decodeStatus, diagnoseLock, needsUnprotect, protectClearMask } from "../core/spi/status.ts";
import { openSpiTarget } from "../core/spi/target.ts";
import { decodeRequest } from "../core/uart/codec.ts";
import { RequestParser } from "../core/uart/parser.ts";
import { commandByKey, COMMANDS } from "../core/uart/table.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualCh341a } from "../emulator/ch341a.ts";
import { createFaultyChip } from "../emulator/faults.ts";
import type { NorFlash } from "../emulator/nor.ts";

/**
 * Status-register safety (docs/testing.md §1 item 6, §2 item 5): from any start word, with WP#
 * either way, unprotect leaves the flash writable or fails with a diagnosis; it never writes
 * the status register when nothing needs clearing, and never sets SRP1 or a one-time lock bit.
 */

const FULL = CHIPS.filter((c) => c.uart && c.personality === "FULL").map((c) => c.id);
const PARTS = FLASH_PARTS.filter((p) => p.srCount > 0 && p.size <= 0x400000);

const srArb = fc.oneof(
  fc.constantFrom(0, 0x4004, 0x001c, 0x0004, 0x0024, 0x4000, 0x0080, 0x0100, 0x0180, 0x3800, 0x407c, 0x0200),
  fc.integer({ min: 0, max: 0xffffff }),
);

/** Why an unprotect of `sr` may legitimately fail, or null when it must succeed. */
function mayFail(part: FlashPart, sr: number, wpHigh: boolean): string | null {
  if (!needsUnprotect(part, sr)) return null;
  const lock = diagnoseLock(part, sr, wpHigh ? "high" : "low");
  if (lock.locked) return lock.reason;
  if ((sr & protectClearMask(part) & part.layout.readOnlyMask) !== 0) return "read-only protect bits";
  return null;
}

function checkOutcome(
  part: FlashPart,
  nor: NorFlash,
  sr: number,
  wpHigh: boolean,
  outcome: UnprotectReport | unknown,
  writes: number[][],
): void {
  const start = nor.part.srCount === 0 ? 0 : sr & (2 ** (8 * part.srCount) - 1) & ~0x03;
  const l = part.layout;
  for (const w of writes) {
    const word = w.reduce((acc, b, i) => acc | (b << (8 * i)), 0);
    if (l.srp1Bit !== null && w.length * 8 > l.srp1Bit) {
      assert.ok(!((word >> l.srp1Bit) & 1) || (start >> l.srp1Bit) & 1, `wrote SRP1: ${w}`);
    }
    assert.equal(word & l.stickyMask & ~start, 0, `set a one-time lock bit: ${w}`);
  }
  if (!needsUnprotect(part, start)) {
    assert.deepEqual(writes, [], "wrote the status register although nothing was protected");
  }
  if (outcome instanceof Error) {
    assert.ok(outcome instanceof FlashError, `untyped failure ${outcome}`);
    assert.equal(outcome.code, "FLASH_LOCKED", outcome.message);
    assert.ok(outcome.message.length > 10 && outcome.remedy.length > 10);
    const why = mayFail(part, start, wpHigh);
    assert.ok(
      why !== null,
      `unprotect of ${start.toString(16)} failed though nothing locks it: ${outcome.message}`,
    );
    return;
  }
  const report = outcome as UnprotectReport;
  assert.equal(report.wrote, writes.length > 0);
  const range = nor.protectedRange();
  assert.equal(
    range.end - range.start,
    0,
    `still protected after unprotect (SR 0x${nor.srWord.toString(16)})`,
  );
  const f = decodeStatus(part, nor.srWord);
  if (l.qeBit !== null) assert.equal(f.qe, decodeStatus(part, start).qe, "QE changed");
}

Deno.test("SR safety over the boot UART: writable or a diagnosis, no needless WRSR, no SRP1/lock bits", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...FULL),
      fc.constantFrom(...PARTS),
      srArb,
      fc.boolean(),
      async (chip, part, sr, wpHigh) => {
        const writes: number[][] = [];
        const parser = new RequestParser();
        const v = createFaultyChip({
          chip,
          flashId: part.id,
          protect: sr,
          wpHigh,
          plan: { seed: 1, rates: {} },
        });
        const link = v.link({
          onWrite: (data) => {
            parser.push(data);
            for (let f = parser.next(); f; f = parser.next()) {
              if (commandByKey(f.kind, f.code)?.name !== "FlashWriteSR") continue;
              const values = decodeRequest(COMMANDS.FlashWriteSR, f.payload)!;
              if (values.cmd === 0x01) writes.push([...values.value]);
              else if (values.cmd === 0x31) {
                writes.push([v.nor.srWord & 0xff, ...values.value]);
              }
            }
          },
        });
        const { target } = await openUartTarget(link, { linkTimeoutMs: 2000 });
        const outcome = await target.unprotect().catch((e) => e);
        checkOutcome(part, v.nor, sr, wpHigh, outcome, writes);
        const at = v.nor.size / 2;
        // a BK7236-class loader answers nothing to writes into its forbidden (bootloader) range
        const forbidden = loaderFamilyOf(v.profile).forbidden;
        const silent = forbidden.answer === "silence" && forbidden.ranges.some((r) => at < r.end);
        if (!(outcome instanceof Error) && !silent) {
          await target.eraseSector(at);
          await target.writeSector(at, new Uint8Array(0x1000).fill(0x5a));
          assert.ok(
            v.nor.read(at, 0x1000).every((b) => b === 0x5a),
            "a sector did not take a write after unprotect",
          );
        }
        await target.close();
      },
    ),
    { seed: 77, numRuns: 150 },
  );
});

/** An SpiMaster that records every status-register write frame going through it. */
function spyOn(spi: SpiMaster, writes: number[][], nor: NorFlash): SpiMaster {
  return {
    name: spi.name,
    clock: spi.clock,
    get stats() {
      return spi.stats;
    },
    transfer(steps: SpiStep[]) {
      for (const s of steps) {
        if (!("frame" in s)) continue;
        const op = s.frame.out[0];
        if (op === 0x01) writes.push([...s.frame.out.subarray(1)]);
        if (op === 0x31) writes.push([nor.srWord & 0xff, ...s.frame.out.subarray(1)]);
      }
      return spi.transfer(steps);
    },
    close: () => spi.close(),
  };
}

Deno.test("SR safety over SPI: writable or a diagnosis, no needless WRSR, no SRP1/lock bits", async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...PARTS), srArb, fc.boolean(), async (part, sr, wpHigh) => {
      const rig = createVirtualCh341a({ flashId: part.id, entry: false });
      rig.nor.srWord = sr;
      rig.nor.wpHigh = wpHigh;
      const writes: number[][] = [];
      const spi = spyOn(await Ch341aSpi.open(rig.device, { clock: rig.clock }), writes, rig.nor);
      const target = await openSpiTarget(spi, { entry: false });
      const outcome = await target.unprotect().catch((e) => e);
      checkOutcome(part, rig.nor, sr, wpHigh, outcome, writes);
      await target.close();
    }),
    { seed: 78, numRuns: 200 },
  );
});
