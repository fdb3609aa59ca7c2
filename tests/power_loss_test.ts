import assert from "node:assert/strict";
import fc from "fast-check";
import { CHIPS } from "../core/chips/profiles.ts";
import { runScenario, type Scenario } from "./fuzz/scenario.ts";

const UART_CHIPS = CHIPS.filter((c) => c.uart).map((c) => c.id);

Deno.test("power cut in the k-th erase or page program, then power back and --resume: always verified, nothing lost", async () => {
  let cuts = 0;
  let resumed = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...UART_CHIPS),
      fc.constantFrom("power-loss-erase" as const, "power-loss-program" as const),
      fc.nat({ max: 80 }),
      fc.integer({ min: 1, max: 24 }),
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 0, max: 1000 }),
      async (chip, kind, k, sectors, at, seed) => {
        const s: Scenario = {
          chip,
          flash: "small",
          path: "uart",
          baud: 921600,
          op: "write",
          at,
          low: false,
          sectors,
          fills: ["random", "same", "zero", "random", "blank"],
          contentSeed: seed,
          backup: true,
          protect: 0,
          wpLow: false,
          faultsDuringOpen: false,
          recover: true,
          // the resume itself is what this property checks, so no newer data is written before it
          newerData: false,
          plan: { seed, rates: { [kind]: 1 }, skip: { [kind]: k }, maxFaults: 1 },
        };
        const r = await runScenario(s);
        assert.deepEqual(r.violations, [], JSON.stringify(s));
        if (r.faults[kind]) {
          cuts++;
          assert.notEqual(r.outcome, "ok", "a job whose power was cut cannot report success");
          assert.equal(r.recovery, "ok");
          resumed++;
        }
      },
    ),
    { seed: 20261122, numRuns: 40 },
  );
  assert.ok(cuts >= 10, `only ${cuts} of 40 runs cut the power`);
  assert.equal(resumed, cuts);
});
