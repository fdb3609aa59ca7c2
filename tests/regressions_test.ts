import assert from "node:assert/strict";
import { COMMANDS } from "../core/uart/table.ts";
import { encodeRequest } from "../core/uart/codec.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { runScenario, type Scenario } from "./fuzz/scenario.ts";

Deno.test("regression: late in a long session the wire still delivers a reply's last byte", async () => {
  // found by the fuzzer: at ~131 s of virtual time the arithmetic byte count fell just below an
  // integer, the last byte of a CheckCRC reply stayed behind and the host timed out
  const v = await createVirtualChip({ chip: "bk7231n" });
  const wire = v.link();
  await v.clock.sleep(15);
  await wire.write(encodeRequest(COMMANDS.LinkCheck, {}));
  assert.equal((await wire.read(64, 50)).length, 8);
  await wire.write(encodeRequest(COMMANDS.SetBaudRate, { baud: 921600, delay: 20 }));
  await wire.drain();
  await v.clock.sleep(10);
  await wire.setBaud(921600);
  assert.equal((await wire.read(64, 100)).length, 12);
  let short = 0;
  for (let i = 0; i < 400; i++) {
    v.clock.advanceTo(100_000 + i * 97.31);
    await wire.write(encodeRequest(COMMANDS.CheckCRC, { start: 0x11000, end: 0x11fff }));
    const got = await wire.read(64, 1000);
    if (got.length !== 11) short++;
    await wire.flushInput();
  }
  assert.equal(short, 0, `${short} of 400 replies came back short`);
});

for await (const entry of Deno.readDir(new URL("../fixtures/regressions/", import.meta.url))) {
  if (!entry.name.endsWith(".json")) continue;
  Deno.test(`regression: ${entry.name}`, async () => {
    const text = await Deno.readTextFile(new URL(`../fixtures/regressions/${entry.name}`, import.meta.url));
    const { scenario, note } = JSON.parse(text) as { scenario: Scenario; note: string };
    const r = await runScenario(scenario);
    assert.deepEqual(r.violations, [], note);
  });
}
