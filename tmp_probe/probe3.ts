import fc from "fast-check";
import { scenarioArb } from "../tests/fuzz/arbitraries.ts";
import { runScenario } from "../tests/fuzz/scenario.ts";
const xs = fc.sample(scenarioArb("uart"), { numRuns: 600, seed: 11 }).filter((s) =>
  s.noisyRecovery && s.recover && s.backup && (s.op === "write" || s.op === "erase")
);
let i = 0;
for (const s of xs) {
  const r = await runScenario(s);
  if (r.recovery === undefined) continue;
  console.log(r.resumed, r.outcome, r.recovery, r.faults["tx-retarget"] ?? 0, r.violations.length, r.undetectable.join(";").slice(0,100));
  if (++i > 40) break;
}
