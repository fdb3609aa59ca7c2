import { runScenario } from "../tests/fuzz/scenario.ts";
const s = JSON.parse(Deno.args[0]);
const r = await runScenario(s);
console.log(JSON.stringify({ outcome: r.outcome, recovery: r.recovery, violations: r.violations, undetectable: r.undetectable }, null, 1));
