import assert from "node:assert/strict";
import { killResumeRound, measureJobMs } from "./fuzz/kill_resume.ts";

Deno.test("write-flash killed at random points, then --resume, always ends verified with nothing else changed", async () => {
  const jobMs = await measureJobMs();
  for (const seed of [11, 12, 13]) {
    const r = await killResumeRound(seed, jobMs);
    assert.deepEqual(r.violations, [], `seed ${seed}: ${JSON.stringify(r)}`);
    assert.equal(r.exit, 0);
  }
});
