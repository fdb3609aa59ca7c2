import fc from "fast-check";
import { scenarioArb } from "../tests/fuzz/arbitraries.ts";
import { runScenario } from "../tests/fuzz/scenario.ts";
const xs = fc.sample(scenarioArb("uart"), { numRuns: 400, seed: 7 }).filter((s) =>
  s.noisyRecovery && s.recover && s.backup && s.op === "write"
);
console.log("candidates", xs.length);
let n = 0;
for (const s of xs) {
  const r = await runScenario(s);
  if (r.recovery !== undefined) {
    n++;
    console.log(r.outcome, r.recovery, JSON.stringify(r.faults), r.violations.length, r.undetectable.length);
  }
}
console.log("recovered", n);
