/**
 * The chip-mode regression matrix: every HIL scenario, on the emulator, for every chip
 * profile in core/chips/profiles.ts and both paths. A profile added there is picked up here
 * without touching this file. SPI runs on a master wired straight to the emulated chip's
 * pins (fast); one chip also runs SPI scenarios through the real CH341A driver on the virtual
 * CH341A, as `--target ch341a:virtual:<chip>` does (the CH341A's own tests cover the rest).
 */

import assert from "node:assert/strict";
import { CHIPS } from "../core/chips/profiles.ts";
import type { PathKind } from "../hil/bench.ts";
import { runHil, skipReason } from "../hil/runner.ts";
import { SCENARIOS } from "../hil/scenarios/mod.ts";
import { VirtualBench } from "../hil/virtual_bench.ts";

/** Scenarios that apply to every chip mode on a path: the matrix must not skip these. */
const ALWAYS: Record<PathKind, string[]> = {
  uart: [
    "detect",
    "bootloader-guard",
    "baud-ladder",
    "full-backup",
    "power-cycle",
    "write-verify",
    "incremental-rewrite",
    "erase-region",
    "unprotect",
  ],
  spi: [
    "detect",
    "bootloader-guard",
    "full-backup",
    "power-cycle",
    "write-verify",
    "incremental-rewrite",
    "erase-region",
    "unprotect",
    "spi-recovery",
  ],
};

async function matrixCell(
  t: Deno.TestContext,
  chip: (typeof CHIPS)[number],
  path: PathKind,
  spiAdapter: "direct" | "ch341a",
  only?: string[],
) {
  const bench = new VirtualBench({ profile: chip, path, baud: 921600, spiAdapter });
  const report = await runHil(bench, { profile: chip, only });
  assert.equal(report.error, null);
  assert.equal(report.scenarios.length, only?.length ?? SCENARIOS.length);
  for (const r of report.scenarios) {
    await t.step(`${r.id}: ${r.status}${r.reason && r.status === "skipped" ? ` (${r.reason})` : ""}`, () => {
      const scenario = SCENARIOS.find((s) => s.id === r.id)!;
      const expectedSkip = skipReason(scenario, chip, bench, false);
      if (expectedSkip === null) {
        assert.equal(r.status, "passed", `${r.id} on ${chip.id}/${path}: ${r.reason ?? ""}`);
        assert.ok(r.ms !== null && r.ms > 0, "a scenario that ran took no modelled time");
      } else {
        assert.equal(r.status, "skipped");
        assert.equal(r.reason, expectedSkip);
      }
      if (ALWAYS[path].includes(r.id)) assert.equal(r.status, "passed", `${r.id} must apply to every chip`);
    });
  }
}

for (const chip of CHIPS) {
  for (const path of ["uart", "spi"] as const) {
    Deno.test(`hil matrix: ${chip.id} over ${path}`, (t) => matrixCell(t, chip, path, "direct"));
  }
}

Deno.test("hil matrix: bk7231n over SPI through the CH341A driver and the virtual CH341A", (t) => {
  const chip = CHIPS.find((c) => c.id === "bk7231n")!;
  return matrixCell(t, chip, "spi", "ch341a", ["detect", "bootloader-guard", "power-cycle", "spi-recovery"]);
});

Deno.test("hil matrix: chip-specific scenarios apply exactly where the profile says", () => {
  const virtual = { kind: "virtual" as const, path: "uart" as const, virtualSetups: true, power: null };
  const readKey = SCENARIOS.find((s) => s.id === "read-key")!;
  const keyGuard = SCENARIOS.find((s) => s.id === "key-guard")!;
  for (const chip of CHIPS) {
    const full = chip.personality === "FULL";
    assert.equal(skipReason(readKey, chip, virtual, false) === null, full && chip.efuseSize > 0, chip.id);
  }
  const guarded = CHIPS.filter((c) => skipReason(keyGuard, c, virtual, false) === null).map((c) => c.id);
  assert.deepEqual(guarded.sort(), ["bk7231m", "bk7231n"]);
});
