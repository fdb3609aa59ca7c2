import assert from "node:assert/strict";
import { planBlocks } from "../core/flasher/erase_plan.ts";
import { BLOCK, SECTOR } from "../core/target.ts";

const sectorsOf = (block: number, n = BLOCK / SECTOR) =>
  Array.from({ length: n }, (_, i) => block + i * SECTOR);

Deno.test("erase plan: a block wholly inside the range with every sector differing gets one block erase", () => {
  const all = sectorsOf(0x20000);
  assert.deepEqual(planBlocks(all, 0x20000, 0x30000, "all-differ"), [
    { block: 0x20000, sectors: all, useBlockErase: true },
  ]);
});

Deno.test("erase plan: 'all-differ' keeps sector erases when one sector of the block matches", () => {
  const most = sectorsOf(0x20000).slice(1);
  assert.deepEqual(planBlocks(most, 0x20000, 0x30000, "all-differ"), [
    { block: 0x20000, sectors: most, useBlockErase: false },
  ]);
});

Deno.test("erase plan: 'covered' erases a whole inside block for one differing sector", () => {
  assert.deepEqual(planBlocks([0x25000], 0x20000, 0x30000, "covered"), [
    { block: 0x20000, sectors: [0x25000], useBlockErase: true },
  ]);
});

Deno.test("erase plan: a block reaching outside the range is never block-erased, under either policy", () => {
  // The range starts one sector into the block and ends one sector before the next block ends.
  const head = sectorsOf(0x20000).slice(1);
  const tail = sectorsOf(0x30000).slice(0, 15);
  for (const policy of ["covered", "all-differ"] as const) {
    const plan = planBlocks([...head, ...tail], 0x21000, 0x3f000, policy);
    assert.deepEqual(plan.map((w) => [w.block, w.sectors.length, w.useBlockErase]), [
      [0x20000, 15, false],
      [0x30000, 15, false],
    ]);
  }
});

Deno.test("erase plan: blocks in order of first appearance, sectors kept in the order given", () => {
  const plan = planBlocks([0x31000, 0x10000, 0x30000], 0x10000, 0x40000, "all-differ");
  assert.deepEqual(plan, [
    { block: 0x30000, sectors: [0x31000, 0x30000], useBlockErase: false },
    { block: 0x10000, sectors: [0x10000], useBlockErase: false },
  ]);
  assert.deepEqual(planBlocks([], 0, 0x10000, "covered"), []);
});
