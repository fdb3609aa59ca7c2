import assert from "node:assert/strict";
import { replayPath, runCampaign } from "./fuzz/campaign.ts";

Deno.test("fuzz campaign, fast profile: every profile, both paths, faults of every kind, no invariant violated", async () => {
  const report = await runCampaign({ runs: 60, seed: 20261122, shrink: 1 });
  assert.equal(report.runs, 60);
  assert.deepEqual(report.failures.map((f) => f.violations), []);
  assert.equal(report.violations, 0);
  assert.ok((report.paths.uart ?? 0) > 0 && (report.paths.spi ?? 0) > 0, JSON.stringify(report.paths));
  const kinds = Object.keys(report.faults);
  assert.ok(kinds.length >= 12, `only ${kinds.length} fault kinds fired: ${kinds.join(", ")}`);
  assert.ok((report.outcomes.ok ?? 0) > 0, "some jobs succeed despite the faults");
  assert.ok(Object.keys(report.outcomes).length > 3, "and some fail, with typed errors");
});

Deno.test("a campaign run replays from its seed and path", async () => {
  const failure = await replayPath(20261122, "7");
  assert.ok(failure.scenario, "the run is regenerated");
  assert.deepEqual(failure.violations, []);
});
