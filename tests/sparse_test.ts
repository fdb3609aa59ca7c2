/**
 * Sparse reads and backups: erased regions found by chip CRC are confirmed by a second CRC and
 * not read; what is read is checked against the map taken before the first read; a lying CRC
 * reply does not make a wrong backup; the sidecar and the accounting say what was skipped;
 * writes do not erase sectors the backup shows blank. Synthetic images only.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { main } from "../cli/flash.ts";
import { chipById } from "../core/chips/profiles.ts";
import { MemoryStore, saveBackup, SECTOR, writeFlash } from "../core/flasher/mod.ts";
import { createContext, type FlasherContext } from "../core/flasher/context.ts";
import { confirmSpans, erasedCrc, ErasedPlanner, planCosts } from "../core/flasher/erased.ts";
import { readSparseTo } from "../core/flasher/sparse_read.ts";
import { FlashError } from "../core/errors.ts";
import { DEFAULT_TIMING } from "../core/timing.ts";
import { crc32 } from "../core/crc.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createFaultyChip, type FaultPlan } from "../emulator/faults.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

const SIZE = 0x80000;
const identity = { chip: "BK7231N", flashId: "eb6013", key: null };
const at = new Date(Date.UTC(2026, 11, 6));

/** Byte equality that names the first difference (a diff of two flash images would take minutes). */
function sameBytes(actual: Uint8Array, expected: Uint8Array, what = "bytes"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const i = actual.findIndex((b, k) => b !== expected[k]);
  assert.equal(i, -1, `${what} differ first at 0x${i.toString(16)}`);
}

/** Deterministic bytes with a layout like real flash: content, blank runs, stray sectors. */
function sparseImage(seed = 1): Uint8Array {
  const img = new Uint8Array(SIZE).fill(0xff);
  let x = seed;
  const fill = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      img[i] = x >>> 24;
    }
  };
  fill(0, 0x23000); // bootloader and app
  fill(0x23000, 0x23100); // one 256-byte page at the start of an otherwise blank sector
  fill(0x40000, 0x41000); // a lone sector inside a blank run
  fill(0x4f800, 0x50000); // the second half of the last sector of a block
  fill(0x7c000, 0x80000); // config at the end
  return img;
}

async function openChip(image: Uint8Array, chip = "bk7231n", crcBytesPerSec = 800_000) {
  const v = await createVirtualChip({ chip, image, flashId: [0xeb, 0x60, 0x13], timing: { crcBytesPerSec } });
  const link = v.link();
  const { target } = await openUartTarget(link, { chip: chipById(chip), baud: 921600 });
  const ctx = await createContext(target, link.clock, {
    baud: 921600,
    timing: { ...DEFAULT_TIMING, crcBytesPerSec },
  });
  return { v, ctx, target };
}

async function backupOf(ctx: FlasherContext) {
  const store = new MemoryStore();
  const info = await saveBackup(ctx, { store, identity, createdAt: at });
  const data = await store.get(info.location);
  const sidecar = JSON.parse(new TextDecoder().decode(await store.get(info.sidecar)));
  return { info, data, sidecar };
}

Deno.test("confirming spans cover a run once, cut every unit, in whole 256-byte chunks of other lengths", () => {
  const unitArb = fc.constantFrom(0x1000, 0x2000, 0x4000, 0x8000, 0x10000);
  fc.assert(fc.property(fc.array(unitArb, { minLength: 1, maxLength: 12 }), (lens) => {
    let a = 0x100000;
    const run = lens.map((len) => {
      const u = { addr: a, len };
      a += len;
      return u;
    });
    const spans = confirmSpans(run);
    let at = run[0].addr;
    for (const s of spans) {
      assert.equal(s.addr, at);
      assert.equal(s.addr % 256, 0);
      assert.equal(s.len % 256, 0);
      assert.ok(s.len > 0);
      at += s.len;
      for (const u of run) {
        if (u.addr < s.addr + s.len && u.addr + u.len > s.addr) assert.notEqual(s.len, u.len);
      }
    }
    assert.equal(at, a);
    for (const u of run) {
      assert.ok(spans.some((s) => s.addr > u.addr && s.addr < u.addr + u.len), `unit ${u.addr} is not cut`);
    }
  }));
});

Deno.test("the plan follows the CRC speed it is given: slower CRC, fewer and larger units where erased runs are likely", () => {
  const fast = new ErasedPlanner(planCosts({ ...DEFAULT_TIMING, crcBytesPerSec: 1_500_000 }, 921600));
  const slow = new ErasedPlanner(planCosts({ ...DEFAULT_TIMING, crcBytesPerSec: 420_000 }, 921600));
  assert.ok(planCosts({ ...DEFAULT_TIMING, crcBytesPerSec: 420_000 }, 921600).crcMsPerByte > 0.002);
  for (const p of [fast, slow]) for (let i = 0; i < 8; i++) p.observe(16, true);
  assert.ok(fast.plan(16).length >= 1 && slow.plan(16).length <= fast.plan(16).length);
  assert.equal(fast.plan(16).reduce((a, b) => a + b, 0), 16);
  // one CRC over a whole range pays only where the range is expected blank
  const fresh = new ErasedPlanner(planCosts(DEFAULT_TIMING, 921600));
  assert.equal(fresh.wholeRangePays(512).pays, false);
});

for (const chip of ["bk7231n", "bk7231t"]) {
  Deno.test(`${chip}: a sparse backup equals the flash, skips the blank regions and says so in its sidecar`, async () => {
    const image = sparseImage();
    const { v, ctx, target } = await openChip(image, chip);
    let reads = 0;
    v.chip.onCommand = (name) => void (name === "FlashRead4K" && reads++);
    const { info, data, sidecar } = await backupOf(ctx);
    await target.close();
    sameBytes(data, image);
    const notRead = info.accounting.notRead!;
    assert.ok(notRead.bytes >= 0x18000, `only ${notRead.bytes} bytes not read`);
    assert.equal(reads * SECTOR + notRead.bytes, SIZE);
    // every region taken as erased is blank in the image, and the sidecar lists exactly them
    let listed = 0;
    for (const [addr, len] of sidecar.erased.regions as [number, number][]) {
      assert.ok(image.subarray(addr, addr + len).every((b) => b === 0xff));
      listed += len;
    }
    assert.equal(listed, notRead.bytes);
    assert.match(sidecar.erased.method, /second chip CRC/);
    assert.equal(info.crc32, crc32(image));
  });
}

Deno.test("a full chip costs less than reading every byte with a whole-flash CRC first", async () => {
  const image = sparseImage().map((b, i) => (b === 0xff ? i & 0xfe : b));
  const a = await openChip(image);
  const t0 = a.ctx.clock.now();
  const sparse = await backupOf(a.ctx);
  const sparseMs = a.ctx.clock.now() - t0;
  await a.target.close();
  const b = await openChip(image);
  b.ctx.sparse = false;
  const t1 = b.ctx.clock.now();
  await backupOf(b.ctx);
  const fullMs = b.ctx.clock.now() - t1;
  await b.target.close();
  sameBytes(sparse.data, image);
  assert.equal(sparse.info.accounting.notRead!.bytes, 0);
  assert.equal(sparse.sidecar.erased, undefined);
  assert.ok(sparseMs < fullMs, `sparse ${sparseMs} ms, every byte ${fullMs} ms`);
});

Deno.test("a CheckCRC reply that claims a written sector is blank does not make a wrong backup", async () => {
  const image = sparseImage();
  for (let run = 0; run < 12; run++) {
    const plan: FaultPlan = { seed: run, rates: {} };
    const v = createFaultyChip({ chip: "bk7231n", image, flashId: [0xeb, 0x60, 0x13], plan });
    const link = v.link();
    const { target } = await openUartTarget(link, { chip: chipById("bk7231n"), baud: 921600 });
    // the lie is for the backup, not for the detection CRCs of the open
    plan.rates["crc-erased"] = run % 3 === 0 ? 1 : 0.2;
    const ctx = await createContext(target, link.clock, { baud: 921600 });
    const data = new Uint8Array(SIZE);
    try {
      await readSparseTo(ctx, { addr: 0, size: SIZE, op: "backup" }, (c, o) => data.set(c, o));
      sameBytes(data, image, `run ${run}`);
    } catch (e) {
      // failing safely (with a cause and a remedy) is allowed; a wrong image is not
      assert.ok(e instanceof FlashError, String(e));
    }
    await target.close();
    if (run % 3 === 0) assert.equal(v.recorder.counts()["crc-erased"], 1, `run ${run}: the lie did not fire`);
  }
});

Deno.test("a sector erased between the map and its read (a corrupted request) fails the backup naming it", async () => {
  const image = sparseImage();
  const { v, ctx, target } = await openChip(image);
  let hit = false;
  // the first read request is carried out as an erase of a sector read later; its reply never comes
  v.chip.rewriteReply = (name, _req, reply) => {
    if (name !== "FlashRead4K" || hit) return reply;
    hit = true;
    v.nor.eraseRange(0x7d000, "4k", 0);
    return null;
  };
  await assert.rejects(
    () => backupOf(ctx),
    (e: unknown) =>
      e instanceof FlashError && e.code === "BACKUP_FAILED" &&
      /changed while it was being read/.test(e.message) &&
      e.damage !== undefined && e.damage.start <= 0x7d000 && e.damage.end > 0x7d000,
  );
  await target.close();
});

Deno.test("a corrupted map reply over a blank sector is not taken for damage when every request was answered", async () => {
  const image = sparseImage();
  const { v, ctx, target } = await openChip(image);
  let flipped = false;
  v.chip.rewriteReply = (name, req, reply) => {
    if (name !== "CheckCRC" || flipped || !req) return reply;
    const start = new DataView(req.buffer, req.byteOffset).getUint32(0, true);
    if (start !== 0x60000) return reply;
    flipped = true;
    const out = reply!.slice();
    out[out.length - 1] ^= 0x40;
    return out;
  };
  const { data } = await backupOf(ctx);
  await target.close();
  assert.ok(flipped);
  sameBytes(data, image);
});

Deno.test("a write does not erase sectors the backup shows blank", async () => {
  const image = sparseImage();
  const { v, ctx, target } = await openChip(image);
  const app = new Uint8Array(0x10000).map((_, i) => (i * 7 + 3) & 0xff);
  const r = await writeFlash(ctx, app, { addr: 0x50000, store: new MemoryStore(), identity, createdAt: at });
  await target.close();
  assert.equal(r.changed, 16);
  assert.equal(r.blockErases + r.sectorErases, 0);
  sameBytes(v.nor.read(0x50000, 0x10000), app);
  // a block partly blank: only its written sectors are erased
  const again = await openChip(v.nor.read(0, SIZE));
  const r2 = await writeFlash(again.ctx, app, {
    addr: 0x40000,
    store: new MemoryStore(),
    identity,
    createdAt: at,
  });
  await again.target.close();
  assert.equal(r2.blockErases, 0);
  assert.equal(r2.sectorErases, 2); // 0x40000 and 0x4f000 held data
  sameBytes(again.v.nor.read(0x40000, 0x10000), app);
  assert.equal(erasedCrc(SECTOR), crc32(new Uint8Array(SECTOR).fill(0xff)));
});

Deno.test("read-flash on a --state chip writes a byte-identical file and reports what it did not read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-sparse-" });
  try {
    const image = sparseImage(3);
    const state = join(dir, "chip.state");
    const v = await createVirtualChip({ chip: "bk7231n", state, image, flashId: [0xeb, 0x60, 0x13] });
    await v.save();
    let stdout = "";
    let stderr = "";
    const out = join(dir, "x.bin");
    const run = (extra: string[]) =>
      main(["--port", "virtual:bk7231n", "--state", state, "read-flash", "--out", out, ...extra], {
        io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
      });
    assert.equal(await run(["--json"]), 0, stderr);
    sameBytes(await Deno.readFile(out), image);
    const json = JSON.parse(stdout.trim());
    const notRead = json.accounting.operation.notRead;
    assert.ok(notRead.bytes > 0 && /erased/.test(notRead.reason));
    stderr = "";
    assert.equal(await run([]), 0, stderr);
    assert.match(stderr, /not read \(erased/);
    sameBytes(await Deno.readFile(out), image);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sparse read of an unaligned range hands over exactly its bytes, in order", async () => {
  const image = sparseImage(5);
  const { ctx, target } = await openChip(image);
  for (const [addr, size] of [[0x22f00, 0x21234], [0x4f7ff, 0x802], [0x1, 0x7ffff]]) {
    const got = new Uint8Array(size);
    let next = 0;
    const r = await readSparseTo(ctx, { addr, size }, (chunk, o) => {
      assert.equal(o, next);
      got.set(chunk, o);
      next += chunk.length;
    });
    assert.equal(next, size);
    sameBytes(got, image.subarray(addr, addr + size), `0x${addr.toString(16)}+0x${size.toString(16)}`);
    assert.equal(r.crc32, crc32(image.subarray(addr, addr + size)));
    assert.ok(r.accounting.notRead!.bytes <= size);
  }
  await target.close();
});

Deno.test("a blank chip is not read at all; one CRC of a whole range pays once the planner expects it blank", async () => {
  const image = new Uint8Array(SIZE).fill(0xff);
  const { v, ctx, target } = await openChip(image);
  let reads = 0;
  v.chip.onCommand = (name) => void (name === "FlashRead4K" && reads++);
  const r = await readSparseTo(ctx, { addr: 0, size: SIZE }, () => {});
  await target.close();
  assert.equal(reads, 0);
  assert.equal(r.accounting.notRead!.bytes, SIZE);
  assert.deepEqual(r.erased.regions, [{ addr: 0, len: SIZE }]);
  const planner = new ErasedPlanner(planCosts(DEFAULT_TIMING, 921600));
  assert.equal(planner.wholeRangePays(512).pays, false);
  for (let i = 0; i < 40; i++) planner.observe(16, true);
  assert.equal(planner.wholeRangePays(128).pays, true);
});

Deno.test("the plan maps a long written run in whole blocks and still finds an erased run that starts inside a block", async () => {
  // 0x00000..0x49000 written (an erased run starts 9 sectors into block 4), blank to the end
  const image = new Uint8Array(SIZE).fill(0xff);
  let x = 7;
  for (let i = 0; i < 0x49000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    image[i] = x >>> 24;
  }
  const { ctx, target } = await openChip(image);
  const r = await readSparseTo(ctx, { addr: 0, size: SIZE }, () => {});
  await target.close();
  // far fewer map CRCs than sectors, and no block cut into single sectors
  assert.ok(Object.values(r.erased.units).reduce((a, b) => a + b, 0) <= 64, JSON.stringify(r.erased.units));
  assert.equal(r.erased.units[SECTOR] ?? 0, 0, JSON.stringify(r.erased.units));
  // the erased run (from 0x49000) is found from within three sectors of its start
  assert.equal(r.erased.regions.length, 1);
  assert.ok(r.erased.regions[0].addr <= 0x4c000, `erased from ${r.erased.regions[0].addr.toString(16)}`);
  assert.equal(r.erased.regions[0].addr + r.erased.regions[0].len, SIZE);
});
