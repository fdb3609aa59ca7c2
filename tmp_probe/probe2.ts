import fc from "fast-check";
import { scenarioArb } from "../tests/fuzz/arbitraries.ts";
import { runScenario } from "../tests/fuzz/scenario.ts";
const xs = fc.sample(scenarioArb("uart"), { numRuns: 600, seed: 11 }).filter((s) =>
  s.noisyRecovery && s.recover && s.backup && (s.op === "write" || s.op === "erase")
);
console.log("candidates", xs.length);
const tally: Record<string, number> = {};
for (const s of xs) {
  const r = await runScenario(s);
  if (r.recovery === undefined) continue;
  const k = `${r.outcome}->${r.recovery}`;
  tally[k] = (tally[k] ?? 0) + 1;
  if (r.violations.length) console.log("VIOL", r.violations.join(" | ").slice(0, 300), JSON.stringify(s));
}
console.log(tally);
