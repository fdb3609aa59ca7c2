import assert from "node:assert/strict";
import { VirtualClock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import { crc32 } from "../core/crc.ts";
import {
  BLOCK,
  blockInFlux,
  createContext,
  eraseRegion,
  type FlasherContext,
  type FlasherEvent,
  type FlashInfo,
  type FlashTarget,
  MemoryStore,
  parseJournal,
  type ProgressEvent,
  READ_WINDOW,
  readFlash,
  SECTOR,
  verifyFlash,
  type WireStats,
  writeFlash,
} from "../core/flasher/mod.ts";

/** Faults the fake target injects; counters are consumed as they fire. */
interface Faults {
  /** sector → number of reads still to corrupt (one flipped byte). */
  corruptReads?: Map<number, number>;
  /** sector → number of writes still to drop silently. */
  dropWrites?: Map<number, number>;
  /** Sectors whose content never changes (a locked area). */
  stuck?: Set<number>;
  /** "op@addr" → number of calls still to fail with TIMEOUT. */
  timeouts?: Map<string, number>;
  /** Throw DISCONNECTED on this erase call (1-based count of erase calls). */
  disconnectAtErase?: number;
}

class FakeTarget implements FlashTarget {
  readonly kind: "uart" | "spi";
  readonly hasChipCrc: boolean;
  readonly flash: Uint8Array;
  readonly clock = new VirtualClock();
  readonly log: string[] = [];
  readonly stats: WireStats = { bytesOut: 0, bytesIn: 0, roundTrips: 0 };
  faults: Faults;
  protectedSr = 0;
  #erases = 0;

  constructor(size: number, opts: { faults?: Faults; chipCrc?: boolean; fill?: (i: number) => number } = {}) {
    this.flash = new Uint8Array(size);
    const fill = opts.fill ?? ((i) => (i * 7 + (i >> 12)) & 0xff);
    for (let i = 0; i < size; i++) this.flash[i] = fill(i);
    this.faults = opts.faults ?? {};
    this.hasChipCrc = opts.chipCrc ?? true;
    this.kind = this.hasChipCrc ? "uart" : "spi";
  }

  #trip(op: string, addr: number, out: number, inBytes: number, ms: number): void {
    this.stats.bytesOut += out;
    this.stats.bytesIn += inBytes;
    this.stats.roundTrips++;
    this.clock.advanceTo(this.clock.now() + ms);
    const key = `${op}@${addr.toString(16)}`;
    const left = this.faults.timeouts?.get(key) ?? 0;
    if (left > 0) {
      this.faults.timeouts!.set(key, left - 1);
      throw new FlashError("TIMEOUT", `no reply to ${op}`, "retry");
    }
  }

  info(): Promise<FlashInfo> {
    return Promise.resolve({
      flashId: new Uint8Array([0xeb, 0x60, 0x15]),
      flashSize: this.flash.length,
      statusRegisters: [this.protectedSr],
    });
  }
  readSector(addr: number): Promise<Uint8Array> {
    this.log.push(`read ${addr.toString(16)}`);
    this.#trip("read", addr, 12, 4111, 45);
    const data = this.flash.slice(addr, addr + SECTOR);
    const left = this.faults.corruptReads?.get(addr) ?? 0;
    if (left > 0) {
      this.faults.corruptReads!.set(addr, left - 1);
      data[100] ^= 0x10;
    }
    return Promise.resolve(data);
  }
  eraseSector(addr: number): Promise<void> {
    return this.#erase(addr, SECTOR, "erase4k");
  }
  eraseBlock(addr: number): Promise<void> {
    assert.equal(addr % BLOCK, 0, "block erase must be aligned");
    return this.#erase(addr, BLOCK, "erase64k");
  }
  #erase(addr: number, len: number, name: string): Promise<void> {
    this.log.push(`${name} ${addr.toString(16)}`);
    this.#erases++;
    if (this.faults.disconnectAtErase === this.#erases) {
      throw new FlashError("DISCONNECTED", "device disconnected: fake", "plug it back in");
    }
    this.#trip(name, addr, 16, 13, len === SECTOR ? 40 : 300);
    for (let s = addr; s < addr + len; s += SECTOR) {
      if (!this.faults.stuck?.has(s) && this.protectedSr === 0) this.flash.fill(0xff, s, s + SECTOR);
    }
    return Promise.resolve();
  }
  writeSector(addr: number, data: Uint8Array): Promise<void> {
    assert.equal(data.length, SECTOR);
    this.log.push(`write ${addr.toString(16)}`);
    this.#trip("write", addr, 4108, 15, 50);
    const left = this.faults.dropWrites?.get(addr) ?? 0;
    if (left > 0) {
      this.faults.dropWrites!.set(addr, left - 1);
      return Promise.resolve();
    }
    if (this.faults.stuck?.has(addr) || this.protectedSr !== 0) return Promise.resolve();
    for (let i = 0; i < SECTOR; i++) this.flash[addr + i] &= data[i];
    return Promise.resolve();
  }
  crc(addr: number, len: number): Promise<number> {
    this.log.push(`crc ${addr.toString(16)} ${len.toString(16)}`);
    this.#trip("crc", addr, 11, 11, this.hasChipCrc ? len / 400 : len / 100);
    return Promise.resolve(crc32(this.flash.subarray(addr, addr + len)));
  }
  unprotect() {
    const before = [this.protectedSr];
    const wrote = this.protectedSr !== 0;
    this.protectedSr = 0;
    this.log.push(`unprotect ${wrote}`);
    return Promise.resolve({ before, after: [0], wrote });
  }
  reboot(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const FLASH = 0x80000;
const identity = { chip: "BK7231N", flashId: "eb6015", key: "510fb093 a3cbeadc 5993a17e c7adeb03" };
const createdAt = new Date("2026-11-22T01:30:12.345Z");

async function setup(target: FakeTarget, extra: Partial<FlasherContext> = {}) {
  const events: FlasherEvent[] = [];
  const progress: ProgressEvent[] = [];
  const ctx = await createContext(target, target.clock, {
    baud: 921600,
    onEvent: (e) => events.push(e),
    onProgress: (e) => progress.push(e),
    ...extra,
  });
  return { ctx, events, progress, store: new MemoryStore() };
}

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<FlashError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FlashError, `expected FlashError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

const mutations = (t: FakeTarget) => t.log.filter((l) => /^(erase|write)/.test(l));

Deno.test("read returns the flash, checks CRC per window, reports progress and accounting", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx, progress } = await setup(t);
  const r = await readFlash(ctx, { addr: 0, size: FLASH });
  assert.deepEqual(r.data, t.flash);
  assert.equal(r.crc32, crc32(t.flash));
  assert.equal(r.rereads, 0);
  assert.equal(t.log.filter((l) => l.startsWith("crc")).length, FLASH / READ_WINDOW);
  assert.equal(progress.at(-1)?.done, FLASH);
  assert.ok(progress.every((e, i) => i === 0 || e.done >= progress[i - 1].done));
  assert.ok(progress.at(-1)!.bytesPerSec! > 0);
  assert.equal(r.accounting.payloadBytes, FLASH);
  assert.equal(r.accounting.roundTrips, FLASH / SECTOR + FLASH / READ_WINDOW);
  assert.ok(r.accounting.elapsedMs > 0);
  assert.ok(r.accounting.floorRatio! > 1);
});

Deno.test("read of an unaligned range returns exactly those bytes", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx } = await setup(t);
  const r = await readFlash(ctx, { addr: 0x1234, size: 0x2100 });
  assert.deepEqual(r.data, t.flash.subarray(0x1234, 0x1234 + 0x2100));
});

Deno.test("read re-reads a corrupted sector and gives up after the attempt bound", async () => {
  const t = new FakeTarget(FLASH, { faults: { corruptReads: new Map([[0x3000, 2]]) } });
  const { ctx, events } = await setup(t);
  const r = await readFlash(ctx, { addr: 0, size: 0x10000 });
  assert.deepEqual(r.data, t.flash.subarray(0, 0x10000));
  assert.equal(r.rereads, 1);
  assert.equal(events.filter((e) => e.type === "retry").length, 2);

  const t2 = new FakeTarget(FLASH, { faults: { corruptReads: new Map([[0x3000, 99]]) } });
  const { ctx: ctx2 } = await setup(t2);
  const e = await rejectsWith(readFlash(ctx2, { addr: 0, size: 0x10000, attempts: 4 }), "CRC_MISMATCH");
  assert.match(e.message, /0x3000/);
  assert.equal(t2.log.filter((l) => l === "read 3000").length, 4);
});

Deno.test("read retries a timed-out sector, and refuses ranges outside the flash", async () => {
  const t = new FakeTarget(FLASH, { faults: { timeouts: new Map([["read@5000", 1]]) } });
  const { ctx, events } = await setup(t);
  const r = await readFlash(ctx, { addr: 0, size: 0x8000 });
  assert.deepEqual(r.data, t.flash.subarray(0, 0x8000));
  assert.ok(events.some((e) => e.type === "retry" && e.addr === 0x5000));
  await rejectsWith(readFlash(ctx, { addr: FLASH - 0x1000, size: 0x2000 }), "BAD_RANGE");
  await rejectsWith(readFlash(ctx, { addr: FLASH, size: 1 }), "BAD_RANGE");
});

Deno.test("write into the bootloader window is refused before anything is touched", async () => {
  const t = new FakeTarget(FLASH);
  const before = t.flash.slice();
  const { ctx, store } = await setup(t);
  const e = await rejectsWith(
    writeFlash(ctx, pattern(0x20000, 1), { addr: 0, store, identity, createdAt }),
    "BOOTLOADER_GUARD",
  );
  assert.equal(
    e.message,
    "refusing to write 0x0..0x10fff: that is the bootloader; a failed write there bricks the chip",
  );
  assert.equal(
    e.remedy,
    "write the app at --addr 0x11000, or pass --overwrite-bootloader if you really mean to (use SPI mode to recover)",
  );
  assert.equal(e.lines().length, 2);
  assert.deepEqual(t.log, []);
  assert.equal(store.entries.size, 0);
  assert.deepEqual(t.flash, before);

  const ok = await writeFlash(ctx, pattern(0x20000, 1), {
    addr: 0,
    store,
    identity,
    createdAt,
    overwriteBootloader: true,
  });
  assert.equal(ok.addr, 0);
  assert.deepEqual(t.flash.subarray(0, 0x20000), pattern(0x20000, 1));
});

Deno.test("write takes a checked backup with sidecar before the first erase, then writes and verifies", async () => {
  const t = new FakeTarget(FLASH);
  const original = t.flash.slice();
  const { ctx, store, events } = await setup(t);
  const image = pattern(0x30000, 9);
  const r = await writeFlash(ctx, image, { addr: 0x11000, store, identity, createdAt });
  assert.deepEqual(t.flash.subarray(0x11000, 0x41000), image);
  assert.deepEqual(t.flash.subarray(0, 0x11000), original.subarray(0, 0x11000));
  assert.deepEqual(t.flash.subarray(0x41000), original.subarray(0x41000));

  assert.equal(r.backup, "BK7231N_eb6015_20261122T013012Z.bin");
  assert.deepEqual(store.entries.get(r.backup!), original);
  const sidecar = JSON.parse(
    new TextDecoder().decode(store.entries.get("BK7231N_eb6015_20261122T013012Z.json")),
  );
  assert.equal(sidecar.chip, "BK7231N");
  assert.equal(sidecar.flashId, "eb6015");
  assert.equal(sidecar.key, identity.key);
  assert.equal(sidecar.size, FLASH);
  assert.equal(sidecar.crc32, crc32(original).toString(16).padStart(8, "0"));
  assert.equal(sidecar.createdAt, "2026-11-22T01:30:12.345Z");

  const firstMutation = t.log.findIndex((l) => /^(erase|write)/.test(l));
  const lastBackupRead = t.log.lastIndexOf(`read ${(FLASH - SECTOR).toString(16)}`);
  assert.ok(lastBackupRead >= 0 && lastBackupRead < firstMutation, "whole flash read before the first erase");
  assert.ok(t.log.indexOf("unprotect false") < firstMutation);
  const backupEvent = events.findIndex((e) => e.type === "backup");
  assert.ok(backupEvent >= 0);

  assert.equal(r.changed, 0x30000 / SECTOR);
  assert.equal(r.unchanged, 0);
  assert.equal(r.crc32, crc32(image));
  const journal = parseJournal(
    new TextDecoder().decode(store.entries.get("BK7231N_eb6015_20261122T013012Z.journal.json")),
  );
  assert.equal(journal.state, "verified");
  assert.equal(journal.backup, r.backup);
  assert.deepEqual([...journal.done].sort((a, b) => a - b), [...journal.planned].sort((a, b) => a - b));
  assert.equal(r.journal, "BK7231N_eb6015_20261122T013012Z.journal.json");
  const backupCost = r.backupRecord!.accounting;
  assert.equal(r.accounting.roundTrips + backupCost.roundTrips, t.stats.roundTrips, "backup accounted apart");
  assert.equal(r.accounting.elapsedMs + backupCost.elapsedMs, t.clock.now());
});

Deno.test("write uses 64 KiB erases only for whole differing aligned blocks, skips matching and blank sectors", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx, store } = await setup(t);
  // 0x10000..0x30000: block 0x10000 partly (starts at 0x11000), block 0x20000 whole.
  const image = t.flash.slice(0x11000, 0x30000);
  image.set(pattern(0x10000, 3), 0x20000 - 0x11000); // whole block 0x20000 differs
  image[0x15000 - 0x11000] ^= 1; // one sector in block 0x10000 differs
  image.fill(0xff, 0x18000 - 0x11000, 0x19000 - 0x11000); // one blank sector
  const r = await writeFlash(ctx, image, { addr: 0x11000, store, identity, createdAt });
  const m = mutations(t);
  assert.deepEqual(
    m.filter((l) => l.startsWith("erase")),
    ["erase4k 15000", "erase4k 18000", "erase64k 20000"],
  );
  assert.ok(!m.includes("write 18000"), "blank sector only erased");
  assert.equal(m.filter((l) => l.startsWith("write")).length, 1 + 16);
  assert.equal(r.changed, 18);
  assert.equal(r.blockErases, 1);
  assert.equal(r.sectorErases, 2);
  assert.deepEqual(t.flash.subarray(0x11000, 0x30000), image);
});

Deno.test("writing what is already there touches nothing and takes no backup", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx, store } = await setup(t);
  const image = t.flash.slice(0x20000, 0x40000);
  const r = await writeFlash(ctx, image, { addr: 0x20000, store, identity, createdAt });
  assert.equal(r.changed, 0);
  assert.equal(r.backup, null);
  assert.deepEqual(mutations(t), []);
  assert.equal(store.entries.size, 0);
  assert.ok(!t.log.includes("read 0"), "no backup read");
  assert.equal(t.log.filter((l) => l.startsWith("crc")).length, 2, "one CRC per 64 KiB window");
});

Deno.test("write pads the tail sector with 0xFF; verify then matches the unpadded image", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx, store } = await setup(t);
  const image = pattern(5000, 4);
  const r = await writeFlash(ctx, image, { addr: 0x40000, store, identity, createdAt });
  assert.equal(r.size, 2 * SECTOR);
  assert.deepEqual(t.flash.subarray(0x40000, 0x40000 + 5000), image);
  assert.ok(t.flash.subarray(0x40000 + 5000, 0x42000).every((b) => b === 0xff));
  const v = await verifyFlash(ctx, image, { addr: 0x40000 });
  assert.equal(v.crc32, crc32(image));
});

Deno.test("write refuses bad inputs without touching the flash", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx, store } = await setup(t);
  const o = { store, identity, createdAt };
  await rejectsWith(writeFlash(ctx, new Uint8Array(0), { addr: 0x11000, ...o }), "BAD_IMAGE");
  const big = await rejectsWith(
    writeFlash(ctx, new Uint8Array(FLASH + 1), { addr: 0x11000, ...o }),
    "BAD_RANGE",
  );
  assert.match(big.message, /larger than the 512 KiB flash/);
  const past = await rejectsWith(
    writeFlash(ctx, new Uint8Array(0x10000), { addr: FLASH - 0x8000, ...o }),
    "BAD_RANGE",
  );
  assert.match(past.message, /runs past the end/);
  const unaligned = await rejectsWith(
    writeFlash(ctx, new Uint8Array(0x1000), { addr: 0x11001, ...o }),
    "BAD_RANGE",
  );
  assert.match(unaligned.remedy, /0x11000/);
  assert.deepEqual(t.log, []);
});

Deno.test("a sector that fails its check is re-erased and re-programmed within the bound", async () => {
  const t = new FakeTarget(FLASH, { faults: { dropWrites: new Map([[0x22000, 1]]) } });
  const { ctx, store, events } = await setup(t);
  const image = pattern(0x10000, 5);
  const r = await writeFlash(ctx, image, { addr: 0x20000, store, identity, createdAt });
  assert.equal(r.retries, 1);
  assert.ok(events.some((e) => e.type === "retry" && e.addr === 0x22000));
  assert.deepEqual(t.flash.subarray(0x20000, 0x30000), image);
});

Deno.test("a sector that never takes fails with WRITE_FAILED naming the damaged range and the backup", async () => {
  const t = new FakeTarget(FLASH, { faults: { stuck: new Set([0x33000]) } });
  const { ctx, store } = await setup(t);
  const image = pattern(0x20000, 6);
  const e = await rejectsWith(
    writeFlash(ctx, image, { addr: 0x20000, store, identity, createdAt }),
    "WRITE_FAILED",
  );
  assert.match(e.message, /0x33000 still differs after 3/);
  assert.equal(e.damage?.start, 0x30000);
  assert.equal(e.damage?.end, 0x40000);
  assert.equal(e.damage?.backup, "BK7231N_eb6015_20261122T013012Z.bin");
  assert.equal(e.lines().length, 3);
  assert.equal(t.log.filter((l) => l === "erase4k 33000").length, 2, "two re-erases after the block erase");
  assert.deepEqual(t.flash.subarray(0x20000, 0x30000), image.subarray(0, 0x10000), "first block done");
  const journal = parseJournal(
    new TextDecoder().decode(store.entries.get("BK7231N_eb6015_20261122T013012Z.journal.json")),
  );
  assert.equal(journal.state, "failed");
  assert.equal(journal.done.length, 16);
  assert.equal(journal.planned.length, 32);
});

Deno.test("a lost link mid-write becomes WRITE_FAILED with damage; a resumed job reuses the backup and finishes", async () => {
  const t = new FakeTarget(FLASH, { faults: { disconnectAtErase: 2 } });
  const original = t.flash.slice();
  const { ctx, store } = await setup(t);
  const image = pattern(0x30000, 7);
  const e = await rejectsWith(
    writeFlash(ctx, image, { addr: 0x20000, store, identity, createdAt }),
    "WRITE_FAILED",
  );
  assert.match(e.message, /DISCONNECTED/);
  assert.deepEqual(e.damage, { start: 0x30000, end: 0x50000, backup: "BK7231N_eb6015_20261122T013012Z.bin" });

  const name = "BK7231N_eb6015_20261122T013012Z.journal.json";
  const journal = parseJournal(new TextDecoder().decode(store.entries.get(name)));
  assert.equal(journal.state, "failed");
  assert.equal(journal.stoppedAt, 0x30000, "the first sector not finished, recorded by the failure");
  assert.equal(blockInFlux(journal), 0x30000);
  t.faults = {};
  const before = store.entries.size;
  const later = new Date("2026-11-22T02:00:00Z");
  const r = await writeFlash(ctx, image, {
    addr: 0x20000,
    store,
    identity,
    createdAt: later,
    resume: { journal, name },
  });
  assert.equal(store.entries.size, before, "no new backup");
  assert.equal(r.backup, "BK7231N_eb6015_20261122T013012Z.bin");
  assert.equal(r.changed, 32, "the finished block is skipped");
  assert.deepEqual(t.flash.subarray(0x20000, 0x50000), image);
  assert.deepEqual(store.entries.get(r.backup!), original);
  const finished = parseJournal(new TextDecoder().decode(store.entries.get(name)));
  assert.equal(finished.state, "verified");
  assert.equal(finished.stoppedAt, undefined, "the resumed job dropped where the first one stopped");
  assert.equal(blockInFlux(finished), null);

  const other = await rejectsWith(
    writeFlash(ctx, pattern(0x30000, 8), {
      addr: 0x20000,
      store,
      identity,
      createdAt,
      resume: { journal, name },
    }),
    "USAGE",
  );
  assert.match(other.message, /different job/);
});

Deno.test("a protected flash is unprotected before the first erase, and no-backup skips the store", async () => {
  const t = new FakeTarget(FLASH);
  t.protectedSr = 0x1c;
  const { ctx, events } = await setup(t);
  const image = pattern(0x1000, 1);
  const r = await writeFlash(ctx, image, { addr: 0x60000, identity, createdAt, noBackup: true });
  assert.equal(r.backup, null);
  assert.equal(r.journal, null);
  assert.deepEqual(r.unprotect, { before: [0x1c], after: [0], wrote: true });
  assert.ok(events.some((e) => e.type === "unprotect"));
  assert.ok(t.log.indexOf("unprotect true") < t.log.indexOf("erase4k 60000"));
  assert.ok(!t.log.includes("read 0"));
  await rejectsWith(writeFlash(ctx, pattern(0x1000, 2), { addr: 0x60000, identity, createdAt }), "USAGE");
});

Deno.test("erase-region uses 64 KiB erases for covered blocks, verifies blank, refuses unaligned and the bootloader", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx, store } = await setup(t);
  const o = { store, identity, createdAt };
  await rejectsWith(eraseRegion(ctx, { addr: 0x20800, size: 0x1000, ...o }), "BAD_RANGE");
  await rejectsWith(eraseRegion(ctx, { addr: 0x20000, size: 0x1800, ...o }), "BAD_RANGE");
  await rejectsWith(eraseRegion(ctx, { addr: FLASH, size: 0x1000, ...o }), "BAD_RANGE");
  const g = await rejectsWith(eraseRegion(ctx, { addr: 0x10000, size: 0x2000, ...o }), "BOOTLOADER_GUARD");
  assert.match(g.message, /^refusing to erase 0x10000\.\.0x10fff/);
  assert.deepEqual(t.log, []);

  t.flash.fill(0xff, 0x3e000, 0x3f000);
  const r = await eraseRegion(ctx, { addr: 0x1e000, size: 0x22000, ...o });
  assert.deepEqual(
    mutations(t),
    ["erase4k 1e000", "erase4k 1f000", "erase64k 20000", "erase64k 30000"],
  );
  assert.ok(t.flash.subarray(0x1e000, 0x40000).every((b) => b === 0xff));
  assert.equal(r.changed, 0x22 - 1);
  assert.equal(r.sectorWrites, 0);
  assert.ok(r.backup);
});

Deno.test("verify names the first differing sector", async () => {
  const t = new FakeTarget(FLASH);
  const { ctx } = await setup(t);
  const image = t.flash.slice(0x11000, 0x71000);
  assert.equal((await verifyFlash(ctx, image, { addr: 0x11000 })).crc32, crc32(image));
  t.flash[0x52345] ^= 0xff;
  t.flash[0x60000] ^= 0xff;
  const e = await rejectsWith(verifyFlash(ctx, image, { addr: 0x11000 }), "VERIFY_FAILED");
  assert.match(e.message, /2 sector\(s\).*first at 0x52000/);
});

Deno.test("targets without a chip CRC (SPI) run the same operations", async () => {
  const t = new FakeTarget(FLASH, { chipCrc: false });
  const { ctx, store } = await setup(t, { baud: null });
  const image = pattern(0x21000, 2);
  const r = await writeFlash(ctx, image, {
    addr: 0,
    store,
    identity: { ...identity, chip: "SPI" },
    createdAt,
    overwriteBootloader: true,
  });
  assert.deepEqual(t.flash.subarray(0, 0x21000), image);
  assert.equal(r.accounting.wireFloorMs, null);
  assert.equal(r.backup, "SPI_eb6015_20261122T013012Z.bin");
  assert.equal(t.log[0], "read 0", "no separate compare pass before the backup");
  const firstErase = t.log.findIndex((l) => l.startsWith("erase"));
  const beforeFirstErase = t.log.slice(0, firstErase);
  assert.equal(beforeFirstErase.filter((l) => l.startsWith("read")).length, FLASH / SECTOR, "the backup");
  assert.deepEqual(
    beforeFirstErase.filter((l) => l.startsWith("crc")),
    ["crc 0 40000", "crc 40000 40000"],
    "each 256 KiB window of the backup read a second time (the check of an SPI backup)",
  );
  assert.equal(t.log.slice(firstErase).filter((l) => l.startsWith("crc")).length, 0, "no CRC after");
  assert.equal(
    t.log.slice(firstErase).filter((l) => l.startsWith("read")).length,
    0x21,
    "each programmed sector read back once, no further verify pass",
  );
});

Deno.test("cancelling stops before the first erase without damage, and mid-write with damage (still CANCELLED)", async () => {
  const t = new FakeTarget(FLASH);
  const ac = new AbortController();
  ac.abort();
  const { ctx, store } = await setup(t, { signal: ac.signal });
  await rejectsWith(
    writeFlash(ctx, pattern(0x1000, 1), { addr: 0x20000, store, identity, createdAt }),
    "CANCELLED",
  );
  assert.deepEqual(mutations(t), []);

  const t2 = new FakeTarget(FLASH);
  const ac2 = new AbortController();
  const { ctx: ctx2, store: store2 } = await setup(t2, {
    signal: ac2.signal,
    onProgress: (e) => {
      if (e.op === "write" && e.done > 0) ac2.abort();
    },
  });
  const e = await rejectsWith(
    writeFlash(ctx2, pattern(0x20000, 1), { addr: 0x20000, store: store2, identity, createdAt }),
    "CANCELLED",
  );
  assert.match(e.message, /^write interrupted at 0x30000/);
  assert.match(e.remedy, /--resume/);
  assert.equal(e.damage?.start, 0x30000);
});

Deno.test("the block in flux: the failure's record wins over the done list, and a bad record is refused", () => {
  const base = {
    version: 2,
    op: "write",
    chip: "bk7231n",
    flashId: null,
    addr: 0x20000,
    size: 0x30000,
    crc32: "00000000",
    backup: null,
    planned: [0x20000, 0x21000, 0x35000, 0x41000],
    done: [0x35000],
    state: "failed",
    createdAt: "2026-11-22T01:30:12Z",
  };
  // a killed job: the first planned sector not done
  assert.equal(blockInFlux(parseJournal(JSON.stringify(base))), 0x20000);
  // a failure that took every finished sector out of the done list recorded where it was
  assert.equal(blockInFlux(parseJournal(JSON.stringify({ ...base, done: [], stoppedAt: 0x41000 }))), 0x40000);
  assert.equal(blockInFlux(parseJournal(JSON.stringify({ ...base, done: [], stoppedAt: null }))), null);
  assert.throws(() => parseJournal(JSON.stringify({ ...base, stoppedAt: "0x41000" })), /stoppedAt/);
});
