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
 * A resumed job checks the rest of the chip against the journal's fingerprint: a sector that a
 * corrupted request erased just before power failed (no reply ever said so) is named and left
 * alone, or, when the user asks (`restoreOutside`), saved and written back from the backup, or
 * named when the guard or the loader will not let it be written.
 */

const ID = { chip: "test", flashId: null, key: null };

async function interruptedJob(
  chip: string,
  collateral: number,
  opts: { restoreOutside?: boolean; overwriteBootloader?: boolean } = {},
) {
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
    ...opts,
  }).catch((x) => x);
  await second.target.close();
  return { v, pre, image, result, events, store };
}

Deno.test("resume names a sector outside the job that changed since, and writes nothing", async () => {
  const { v, result } = await interruptedJob("bk7231n", 0x5000);
  const before = v.nor.read(0, v.nor.size);
  assert.ok(result instanceof FlashError && result.code === "USAGE", String(result));
  assert.match(result.message, /1 sector\(s\) outside the image changed .*0x5000\.\.0x5fff/);
  assert.match(result.remedy, /--restore-outside/);
  assertSameBytes(v.nor.read(0, v.nor.size), before, "nothing written");
});

Deno.test("resume with restoreOutside saves a changed sector outside the job, then writes it back", async () => {
  const { v, pre, image, result, events, store } = await interruptedJob("bk7231n", 0x20000, {
    restoreOutside: true,
  });
  assert.ok(!(result instanceof Error), String(result));
  assert.deepEqual(result.restoredOutside, [0x20000]);
  assertSameBytes(v.nor.read(0x30000, image.length), image, "the job");
  assertSameBytes(v.nor.read(0, 0x30000), pre.subarray(0, 0x30000), "below the job (sector 0x20000 back)");
  assert.ok(
    events.some((e) => e.type === "notice" && /writing back 1 sector\(s\) outside the job/.test(e.message)),
  );
  const saved = [...store.entries].find(([n]) => /\.overwritten-.*\.bin$/.test(n));
  assert.ok(saved, "what was overwritten is saved");
  assertSameBytes(saved[1], new Uint8Array(0x1000).fill(0xff), "the erased sector as it was");
});

Deno.test("resume with restoreOutside honours the bootloader guard", async () => {
  const { v, result } = await interruptedJob("bk7231n", 0x0, { restoreOutside: true });
  assert.ok(result instanceof FlashError && result.code === "BOOTLOADER_GUARD", String(result));
  assertSameBytes(v.nor.read(0, 0x1000), new Uint8Array(0x1000).fill(0xff), "sector 0 left as it is");
});

Deno.test("resume names a bootloader sector the loader will not let it write back", async () => {
  const { v, pre, result } = await interruptedJob("bk7231t", 0x0, {
    restoreOutside: true,
    overwriteBootloader: true,
  });
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

Deno.test("a job writes back a bootloader sector a corrupted request hit only with overwriteBootloader", async () => {
  for (const allowed of [false, true]) {
    const v = createFaultyChip({
      chip: "bk7231n",
      flashId: [0x85, 0x60, 0x13],
      plan: { seed: 1, rates: {} },
    });
    const pre = v.nor.read(0, v.nor.size);
    const { target: real, client } = await openUartTarget(v.link(), { linkTimeoutMs: 2000 });
    let hit = false;
    // a corrupted request with a lost reply erased a sector of the bootloader and one beyond the job
    const target = new Proxy(real, {
      get(t, prop) {
        if (prop === "writeSector") {
          return (a: number, d: Uint8Array) => {
            if (!hit) {
              hit = true;
              v.nor.eraseRange(0x3000, "4k", v.clock.now());
              v.nor.eraseRange(0x60000, "4k", v.clock.now());
            }
            return t.writeSector(a, d);
          };
        }
        const value = Reflect.get(t, prop, t);
        return typeof value === "function" ? value.bind(t) : value;
      },
    });
    const events: FlasherEvent[] = [];
    const r = await writeFlash(
      await createContext(target, client.link.clock, { onEvent: (e) => events.push(e) }),
      new Uint8Array(0x3000).fill(0x11),
      {
        addr: 0x30000,
        store: new MemoryStore(),
        identity: ID,
        createdAt: new Date(0),
        overwriteBootloader: allowed,
      },
    ).catch((x) => x);
    await real.close();
    assertSameBytes(
      v.nor.read(0x60000, 0x1000),
      pre.subarray(0x60000, 0x61000),
      "outside the window: written back",
    );
    assert.ok(events.some((e) => e.type === "notice" && /writing back/.test(e.message)), "said without -v");
    if (allowed) {
      assert.ok(!(r instanceof Error), String(r));
      assertSameBytes(v.nor.read(0x3000, 0x1000), pre.subarray(0x3000, 0x4000), "the bootloader sector");
    } else {
      assert.ok(r instanceof FlashError && r.code === "WRITE_FAILED", String(r));
      assert.match(r.message, /bootloader window changed .*0x3000\.\.0x3fff.*needs --overwrite-bootloader/);
      // the job's own range, not verified yet when the write-back stopped, is named too
      assert.ok(r.damage && r.damage.start === 0x3000 && r.damage.end >= 0x4000, JSON.stringify(r.damage));
      assertSameBytes(
        v.nor.read(0x3000, 0x1000),
        new Uint8Array(0x1000).fill(0xff),
        "left as the request left it",
      );
    }
  }
});
