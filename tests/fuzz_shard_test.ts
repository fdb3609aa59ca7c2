import assert from "node:assert/strict";
import { replayPath, runCampaign } from "./fuzz/campaign.ts";
import type { Scenario } from "./fuzz/scenario.ts";
import { countsOf, inShard, MergeError, mergeReports, parseShard } from "./fuzz/merge.ts";

const SEED = 20261206;
const RUNS = 18;

Deno.test("fuzz shards: n shards merged equal the unsharded campaign, count for count", async () => {
  const whole = await runCampaign({ runs: RUNS, seed: SEED, shrink: 0 });
  const shards = [];
  for (let i = 1; i <= 3; i++) {
    shards.push(await runCampaign({ runs: RUNS, seed: SEED, shrink: 0, shard: { index: i, count: 3 } }));
  }
  assert.deepEqual(shards.map((s) => s.runs), [6, 6, 6]);
  // reports go through JSON between machines
  const merged = mergeReports(shards.map((s) => JSON.parse(JSON.stringify(s))));
  assert.equal(countsOf(merged), countsOf(whole));
  assert.deepEqual(merged.shards, { count: 3, indices: [1, 2, 3] });
  assert.ok(Math.abs(merged.virtualHours - whole.virtualHours) < 1e-9 * Math.max(1, whole.virtualHours));
});

Deno.test("fuzz shards: slices are disjoint and cover every run", () => {
  for (const n of [1, 2, 5, 7]) {
    for (let k = 0; k < 50; k++) {
      const owners = Array.from({ length: n }, (_, i) => i + 1).filter((i) =>
        inShard(k, { index: i, count: n })
      );
      assert.equal(owners.length, 1, `run ${k} of ${n} shards belongs to ${owners.join(",") || "none"}`);
    }
  }
  assert.deepEqual(parseShard("2/4"), { index: 2, count: 4 });
  for (const bad of ["0/4", "5/4", "1/0", "2", "a/b", "1/2/3"]) assert.throws(() => parseShard(bad));
});

Deno.test("fuzz merge refuses reports that do not make up one campaign", async () => {
  const a = await runCampaign({ runs: 4, seed: SEED, shrink: 0, shard: { index: 1, count: 2 } });
  const b = await runCampaign({ runs: 4, seed: SEED, shrink: 0, shard: { index: 2, count: 2 } });
  const other = await runCampaign({ runs: 4, seed: SEED + 1, shrink: 0, shard: { index: 2, count: 2 } });
  const whole = await runCampaign({ runs: 4, seed: SEED, shrink: 0 });
  assert.throws(
    () => mergeReports([a]),
    (e) => e instanceof MergeError && /shard 2 of 2 missing/.test(e.message),
  );
  assert.throws(
    () => mergeReports([a, a]),
    (e) => e instanceof MergeError && /appears twice/.test(e.message),
  );
  assert.throws(
    () => mergeReports([a, other]),
    (e) => e instanceof MergeError && /another campaign/.test(e.message),
  );
  assert.throws(
    () => mergeReports([whole]),
    (e) => e instanceof MergeError && /not from a sharded run/.test(e.message),
  );
  assert.equal(mergeReports([b, a]).runs, 4);
});

Deno.test("fuzz shards: a shard's run k is run k of the campaign, replayable by its global index", async () => {
  const ran = new Map<number, Scenario>();
  await runCampaign({
    runs: 9,
    seed: SEED,
    shrink: 0,
    shard: { index: 2, count: 3 },
    onRun: (i, s) => ran.set(i, s),
  });
  assert.deepEqual([...ran.keys()], [1, 4, 7]);
  const replayed = await replayPath(SEED, "4");
  assert.deepEqual(replayed.scenario, ran.get(4));
});
