import assert from "node:assert/strict";
import fc from "fast-check";
import { FlashError } from "../core/errors.ts";
import type { Values } from "../core/uart/codec.ts";
import { connect } from "../core/uart/connect.ts";
import { type CommandName, COMMANDS } from "../core/uart/table.ts";
import { createFaultyChip, type FaultPlan } from "../emulator/faults.ts";

/**
 * The client over a noisy link (docs/testing.md §1 item 3, §2 item 1): however the replies are cut
 * up, delayed, stalled or preceded and followed by stale copies of earlier replies, every
 * command returns exactly what it returns on a clean link, or a typed timeout; it never returns
 * another command's answer.
 */

type Req = [CommandName, Values];

const reqArb: fc.Arbitrary<Req> = fc.oneof(
  fc.constant<Req>(["LinkCheck", {}]),
  fc.constantFrom(0x800000, 0x44010004, 0x800074).map((addr): Req => ["ReadReg", { addr }]),
  fc.integer({ min: 0x11, max: 0x1ff }).map((s): Req => ["FlashRead4K", { addr: s * 0x1000 }]),
  fc.tuple(fc.integer({ min: 0, max: 0x1fffff }), fc.integer({ min: 1, max: 0x10000 })).map((
    [start, len],
  ): Req => ["CheckCRC", { start, end: Math.min(0x1fffff, start + len) }]),
  fc.constantFrom(0x05, 0x35).map((cmd): Req => ["FlashReadSR", { cmd }]),
  fc.constant<Req>(["FlashGetMID", { spiCmd: 0x9f }]),
);

async function runAll(reqs: Req[], plan: FaultPlan): Promise<(Values | FlashError)[]> {
  const v = createFaultyChip({ chip: "bk7231n", plan });
  const link = v.link();
  link.dice.active = false;
  const client = await connect(link, { linkTimeoutMs: 2000 });
  link.dice.active = true;
  const out: (Values | FlashError)[] = [];
  for (const [name, values] of reqs) {
    out.push(await client.command(COMMANDS[name], values).catch((e) => e));
  }
  await client.close();
  return out;
}

Deno.test("fragmented, delayed, stalled replies and stale duplicates never change a command's answer", async () => {
  let faulted = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(reqArb, { minLength: 1, maxLength: 12 }),
      fc.record({
        fragment: fc.constantFrom(0.3, 0.9),
        delay: fc.constantFrom(0, 0.2),
        stall: fc.constantFrom(0, 0.05),
        "rx-stale": fc.constantFrom(0, 0.3),
      }),
      fc.nat(),
      async (reqs, rates, seed) => {
        const clean = await runAll(reqs, { seed, rates: {} });
        const noisy = await runAll(reqs, { seed, rates });
        for (const [i, r] of noisy.entries()) {
          if (r instanceof FlashError) {
            assert.equal(r.code, "TIMEOUT", `${reqs[i][0]}: ${r.message}`);
            faulted++;
            continue;
          }
          assert.ok(!(clean[i] instanceof Error), `${reqs[i][0]} failed on a clean link`);
          assert.deepEqual(r, clean[i], `${reqs[i][0]} answered differently over the noisy link`);
        }
      },
    ),
    { seed: 5150, numRuns: 80 },
  );
  assert.ok(faulted < 80 * 6, "most commands get through");
});
