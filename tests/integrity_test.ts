import { assertSameBytes } from "./support/bytes.ts";
import assert from "node:assert/strict";
import { FlashError } from "../core/errors.ts";
import {
  createContext,
  type FlasherEvent,
  MemoryStore,
  parseJournal,
  writeFlash,
} from "../core/flasher/mod.ts";
import { openUartTarget, UartTarget } from "../core/uart/target.ts";
import { createFaultyChip } from "../emulator/faults.ts";

/**
 * A resumed job checks the rest of the chip against the interrupted job's backup: a sector
 * that a corrupted request erased just before power failed (no reply ever said so) is written
 * back, or named when the loader will not let it be written.
 */

const ID = { chip: "test", flashId: null, key: null };

async function interruptedJob(chip: string, collateral: number) {
  const v = createFaultyChip({
    chip,
    flashId: [0x85, 0x60, 0x13],
    plan: { seed: 1, rates: { "power-loss-program": 1 }, skip: { "power-loss-program": 20 }, maxFaults: 1 },
  });
  const pre = v.nor.read(0, v.nor.size);
  const image = new Uint8Array(0x8000).fill(0x3c);
  const store = new MemoryStore();
  v.dice.active = false;
  const first = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
  v.dice.active = true;
  const e = await writeFlash(await createContext(first.target, first.client.link.clock), image, {
    addr: 0x30000,
    store,
    identity: ID,
    createdAt: new Date(0),
  }).catch((x) => x);
  assert.ok(e instanceof FlashError && e.code === "WRITE_FAILED", String(e));
  await first.target.close();
  // what a corrupted erase did in the moment before power failed, unseen by the host
  v.nor.eraseRange(collateral, "4k", v.clock.now());
  v.dice.active = false;
  v.rail.powerOn(v.clock.now());
  const [name, bytes] = [...store.entries].find(([n]) => n.endsWith(".journal.json"))!;
  const events: FlasherEvent[] = [];
  const second = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
  const ctx = await createContext(second.target, second.client.link.clock, {
    onEvent: (ev) => events.push(ev),
  });
  const result = await writeFlash(ctx, image, {
    addr: 0x30000,
    store,
    identity: ID,
    createdAt: new Date(0),
    resume: { journal: parseJournal(new TextDecoder().decode(bytes)), name },
  }).catch((x) => x);
  await second.target.close();
  return { v, pre, image, result, events };
}

Deno.test("resume writes back a sector outside the job that a corrupted request erased", async () => {
  const { v, pre, image, result, events } = await interruptedJob("bk7231n", 0x5000);
  assert.ok(!(result instanceof Error), String(result));
  assertSameBytes(v.nor.read(0x30000, image.length), image, "the job");
  assertSameBytes(v.nor.read(0, 0x30000), pre.subarray(0, 0x30000), "below the job (sector 0x5000 back)");
  assert.ok(events.some((e) => e.type === "note" && /outside the job/.test(e.message)));
});

Deno.test("resume names a bootloader sector it is not allowed to write back", async () => {
  const { v, pre, result } = await interruptedJob("bk7231t", 0x0);
  assert.ok(result instanceof FlashError && result.code === "WRITE_FAILED", String(result));
  assert.ok(
    result.damage && result.damage.start === 0 && result.damage.end >= 0x1000,
    JSON.stringify(result.damage),
  );
  assert.match(result.remedy, /backup/);
  assertSameBytes(v.nor.read(0x1000, 0x2f000), pre.subarray(0x1000, 0x30000), "the rest below the job");
});

Deno.test("a job notices a sector outside its range that changed while it ran, with or without a backup", async () => {
  for (const backup of [true, false]) {
    const v = createFaultyChip({
      chip: "bk7231n",
      flashId: [0x85, 0x60, 0x13],
      plan: { seed: 1, rates: {} },
    });
    const pre = v.nor.read(0, v.nor.size);
    const { target: real, client } = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
    let hit = false;
    // what a corrupted request with a lost reply does: the host never hears of it
    const target = new Proxy(real, {
      get(t, prop) {
        if (prop === "writeSector") {
          return (a: number, d: Uint8Array) => {
            if (!hit) {
              hit = true;
              v.nor.eraseRange(0x60000, "4k", v.clock.now());
            }
            return t.writeSector(a, d);
          };
        }
        const value = Reflect.get(t, prop, t);
        return typeof value === "function" ? value.bind(t) : value;
      },
    });
    const image = new Uint8Array(0x3000).fill(0x11);
    const r = await writeFlash(await createContext(target, client.link.clock), image, {
      addr: 0x30000,
      store: backup ? new MemoryStore() : undefined,
      noBackup: !backup,
      identity: ID,
      createdAt: new Date(0),
    }).catch((x) => x);
    await real.close();
    if (backup) {
      assert.ok(!(r instanceof Error), String(r));
      assertSameBytes(
        v.nor.read(0x60000, 0x1000),
        pre.subarray(0x60000, 0x61000),
        "written back from the backup",
      );
    } else {
      assert.ok(r instanceof FlashError && r.code === "WRITE_FAILED", String(r));
      assert.ok(r.damage && r.damage.start <= 0x60000 && r.damage.end >= 0x61000, JSON.stringify(r.damage));
    }
  }
});

Deno.test("a flash size detected twice too big never ends in a success that the alias undid", async () => {
  // found by the fuzzer: writing back the "outside" half, an alias of the job's range, after the
  // final verify clobbered the job and the write still reported success
  const v = createFaultyChip({ chip: "bk7231t", flashId: [0x85, 0x60, 0x13], plan: { seed: 1, rates: {} } });
  const opened = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
  const wrong = new UartTarget(opened.client, { ...opened.identity, flashSize: v.nor.size * 2 });
  const image = new Uint8Array(0x2000).fill(0x77);
  const r = await writeFlash(await createContext(wrong, opened.client.link.clock), image, {
    addr: 0x20000,
    store: new MemoryStore(),
    identity: ID,
    createdAt: new Date(0),
  }).catch((x) => x);
  const holds = v.nor.read(0x20000, image.length).every((b) => b === 0x77);
  assert.ok(r instanceof FlashError || holds, `reported success but the chip does not hold the image: ${r}`);
  await wrong.close();
});
