/**
 * The paths that make jobs fast, checked by what they do rather than how long they take
 * (speed is shown by `deno task bench`): read-ahead and its fallback, coarse-to-fine CRCs,
 * no second read without a chip CRC, backup reuse and the saved after-image, streaming
 * sources, and the T-type LinkCheck only where the lock needs it.
 */

import assert from "node:assert/strict";
import { fingerprintSpans } from "../core/flasher/fingerprint.ts";
import { chipById } from "../core/chips/profiles.ts";
import { VirtualClock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import {
  BLOCK,
  type ByteSource,
  bytesSource,
  createContext,
  type FlasherEvent,
  type FlashInfo,
  type FlashTarget,
  MemoryStore,
  readFlash,
  SECTOR,
  verifyFlash,
  type WireStats,
  writeFlash,
} from "../core/flasher/mod.ts";
import type { ByteLink } from "../core/io/link.ts";
import { encodeRequest } from "../core/uart/codec.ts";
import { crc32 } from "../core/crc.ts";
import { COMMANDS } from "../core/uart/table.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { planCh341 } from "../core/io/ch341a.ts";
import { PINS_IDLE } from "../core/io/ch341a_protocol.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

const FLASH = 0x80000;
const identity = { chip: "BK7231N", flashId: "eb6015", key: null };
const at = (s: number) => new Date(Date.UTC(2026, 10, 22, 1, 0, s));

/** A flash behind a minimal target; `readSectors` only when asked for. */
class Fake implements FlashTarget {
  readonly kind: "uart" | "spi";
  readonly hasChipCrc: boolean;
  readonly flash = new Uint8Array(FLASH);
  readonly clock = new VirtualClock();
  readonly log: string[] = [];
  readonly stats: WireStats = { bytesOut: 0, bytesIn: 0, roundTrips: 0 };
  readSectors?: FlashTarget["readSectors"];
  /** Sectors whose next read returns one flipped bit. */
  corrupt = new Set<number>();
  /** Read-ahead runs fail with TIMEOUT once this many sectors were delivered. */
  loseAfter: number | null = null;

  constructor(opts: { chipCrc?: boolean; readAhead?: boolean } = {}) {
    this.hasChipCrc = opts.chipCrc ?? true;
    this.kind = this.hasChipCrc ? "uart" : "spi";
    for (let i = 0; i < FLASH; i++) this.flash[i] = (i * 13 + (i >> 11)) & 0xff;
    if (opts.readAhead) {
      this.readSectors = async (addrs, onSector) => {
        this.log.push(`readSectors ${addrs.length}`);
        for (const [i, a] of addrs.entries()) {
          if (this.loseAfter !== null && i >= this.loseAfter) {
            this.loseAfter = null;
            throw new FlashError("TIMEOUT", "no reply to FlashRead4K", "retry");
          }
          await onSector(a, this.#read(a));
        }
      };
    }
  }
  #read(a: number): Uint8Array {
    this.stats.roundTrips++;
    const d = this.flash.slice(a, a + SECTOR);
    if (this.corrupt.delete(a)) d[7] ^= 0x04;
    return d;
  }
  info(): Promise<FlashInfo> {
    return Promise.resolve({
      flashId: Uint8Array.of(0xeb, 0x60, 0x15),
      flashSize: FLASH,
      statusRegisters: [0],
    });
  }
  readSector(a: number): Promise<Uint8Array> {
    this.log.push(`read ${a.toString(16)}`);
    return Promise.resolve(this.#read(a));
  }
  eraseSector(a: number): Promise<void> {
    this.log.push(`erase4k ${a.toString(16)}`);
    this.flash.fill(0xff, a, a + SECTOR);
    return Promise.resolve();
  }
  eraseBlock(a: number): Promise<void> {
    this.log.push(`erase64k ${a.toString(16)}`);
    this.flash.fill(0xff, a, a + BLOCK);
    return Promise.resolve();
  }
  writeSector(a: number, data: Uint8Array): Promise<void> {
    this.log.push(`write ${a.toString(16)}`);
    for (let i = 0; i < SECTOR; i++) this.flash[a + i] &= data[i];
    return Promise.resolve();
  }
  crc(a: number, len: number): Promise<number> {
    this.log.push(`crc ${a.toString(16)} ${len.toString(16)}`);
    return Promise.resolve(crc32(this.flash.subarray(a, a + len)));
  }
  unprotect() {
    return Promise.resolve({ before: [0], after: [0], wrote: false });
  }
  reboot(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function setup(t: Fake) {
  const events: FlasherEvent[] = [];
  const ctx = await createContext(t, t.clock, { baud: 921600, onEvent: (e) => events.push(e) });
  return { ctx, events, notices: () => events.filter((e) => e.type === "notice") };
}

const count = (log: string[], prefix: string) => log.filter((l) => l.startsWith(prefix)).length;

Deno.test("read-ahead: a lost reply turns it off once, the read continues one request at a time", async () => {
  const t = new Fake({ readAhead: true });
  t.loseAfter = 5;
  const { ctx, notices } = await setup(t);
  const r = await readFlash(ctx, { addr: 0, size: FLASH });
  assert.deepEqual(r.data, t.flash);
  assert.equal(notices().length, 1);
  assert.match((notices()[0] as { message: string }).message, /read-ahead off .*0x5000/);
  assert.equal(count(t.log, "readSectors"), 1, "no read-ahead after the fallback");
  assert.equal(count(t.log, "read "), FLASH / SECTOR - 5);
  assert.equal(ctx.readAhead, false);
});

Deno.test("read-ahead can be turned off by the caller; without trouble it is used for every window", async () => {
  const t = new Fake({ readAhead: true });
  const { ctx, notices } = await setup(t);
  await readFlash(ctx, { addr: 0, size: FLASH });
  assert.equal(count(t.log, "read "), 0);
  assert.equal(count(t.log, "readSectors"), 2, "one run per 256 KiB window");
  assert.equal(notices().length, 0);

  const t2 = new Fake({ readAhead: true });
  const { ctx: ctx2 } = await setup(t2);
  ctx2.readAhead = false;
  await readFlash(ctx2, { addr: 0, size: 0x10000 });
  assert.equal(count(t2.log, "readSectors"), 0);
  assert.equal(count(t2.log, "read "), 16);
});

Deno.test("a window with a wrong CRC is narrowed to its sector, re-read, and later windows are small", async () => {
  const t = new Fake({ readAhead: true });
  t.corrupt.add(0x23000);
  const { ctx, notices, events } = await setup(t);
  const r = await readFlash(ctx, { addr: 0, size: FLASH });
  assert.deepEqual(r.data, t.flash);
  assert.equal(r.rereads, 1);
  assert.ok(events.some((e) => e.type === "retry" && e.addr === 0x23000));
  assert.equal(notices().length, 1, "said once");
  const crcs = t.log.filter((l) => l.startsWith("crc"));
  assert.equal(crcs[0], "crc 0 40000", "first window: 256 KiB");
  assert.ok(crcs.includes("crc 20000 8000"), "narrowed through 32 KiB");
  assert.ok(crcs.includes("crc 23000 1000"), "down to the sector");
  assert.ok(crcs.includes("crc 40000 8000") && !crcs.includes("crc 40000 40000"), "then 32 KiB windows");
});

Deno.test("without a chip CRC a read checks each window by reading it again; check: false reads once", async () => {
  const t = new Fake({ chipCrc: false, readAhead: true });
  const { ctx } = await setup(t);
  const once = await readFlash(ctx, { addr: 0x1000, size: 0x30000, check: false });
  assert.deepEqual(once.data, t.flash.subarray(0x1000, 0x31000));
  assert.equal(count(t.log, "crc"), 0);
  assert.equal(t.stats.roundTrips, 0x30000 / SECTOR);
  t.log.length = 0;
  const checked = await readFlash(ctx, { addr: 0x1000, size: 0x30000 });
  assert.deepEqual(checked.data, t.flash.subarray(0x1000, 0x31000));
  assert.deepEqual(
    t.log.filter((l) => l.startsWith("crc")),
    ["crc 1000 30000"],
    "the window, read a second time",
  );
});

Deno.test("verify is one CRC when the flash matches, and narrows down coarse to fine when it does not", async () => {
  const t = new Fake();
  const { ctx } = await setup(t);
  const image = t.flash.slice(0x11000, 0x71000);
  await verifyFlash(ctx, image, { addr: 0x11000 });
  assert.deepEqual(t.log, ["crc 11000 60000"]);
  t.log.length = 0;
  t.flash[0x42345] ^= 1;
  await assert.rejects(verifyFlash(ctx, image, { addr: 0x11000 }), /1 sector\(s\).*first at 0x42000/);
  const crcs = t.log.filter((l) => l.startsWith("crc"));
  assert.equal(crcs.length, 1 + 7 + 16, "whole image, its 64 KiB windows, the sectors of the bad one");
});

Deno.test("backup reuse: the after-image of one write is the next write's backup, for one CRC", async () => {
  const t = new Fake();
  const { ctx, events } = await setup(t);
  const store = new MemoryStore();
  const first = t.flash.slice(0x11000, 0x51000).map((b) => b ^ 0xa5);
  const r1 = await writeFlash(ctx, first, {
    addr: 0x11000,
    store,
    identity,
    createdAt: at(0),
    saveResult: true,
  });
  assert.equal(r1.backupRecord?.reused, false);
  assert.ok(r1.afterImage);
  assert.deepEqual(store.entries.get(r1.afterImage!), t.flash, "the after-image is the flash");
  const sidecar = JSON.parse(
    new TextDecoder().decode(store.entries.get(r1.afterImage!.replace(/bin$/, "json"))),
  );
  assert.equal(sidecar.kind, "after-write");
  assert.equal(sidecar.from, r1.backup);

  const second = first.slice();
  for (const s of [0x3000, 0x17000, 0x2f000]) second[s + 9] ^= 0xff;
  t.log.length = 0;
  const r2 = await writeFlash(ctx, second, {
    addr: 0x11000,
    store,
    identity,
    createdAt: at(1),
    saveResult: true,
  });
  assert.equal(r2.backup, r1.afterImage);
  assert.equal(r2.backupRecord?.reused, true);
  assert.ok(events.some((e) => e.type === "backup" && e.reused));
  const beforeErase = t.log.slice(0, t.log.findIndex((l) => l.startsWith("erase")));
  // one whole-flash CRC finds the backup; then the journal's fingerprint (a chip CRC per 64 KiB
  // window, cut at the job's edges): no read, no compare
  const windows = fingerprintSpans(0x11000, 0x51000, FLASH).map((w) =>
    `crc ${w.addr.toString(16)} ${w.len.toString(16)}`
  );
  assert.deepEqual(beforeErase, [`crc 0 ${FLASH.toString(16)}`, ...windows], "no read, no compare");
  assert.equal(r2.changed, 3);
  assert.deepEqual(t.flash.subarray(0x11000, 0x51000), second);
  assert.equal(r2.journal, "BK7231N_eb6015_20261122T010001Z.journal.json", "the job's own journal");
  assert.deepEqual(store.entries.get(r2.afterImage!), t.flash);
  assert.ok(store.entries.has(r1.afterImage!), "the after-image the second job started from stays");

  const third = second.slice();
  third[0x100] ^= 0xff;
  const r2b = await writeFlash(ctx, third, {
    addr: 0x11000,
    store,
    identity,
    createdAt: at(2),
    saveResult: true,
  });
  assert.equal(r2b.backup, r2.afterImage);
  assert.ok(!store.entries.has(r1.afterImage!), "an after-image two jobs old is pruned");
  assert.ok(!store.entries.has(r1.afterImage!.replace(/bin$/, "json")), "with its sidecar");
  assert.ok(store.entries.has(r1.backup!), "backups read from the chip are never pruned");
  assert.ok(store.entries.has(r2.afterImage!) && store.entries.has(r2b.afterImage!));

  // the chip changed behind our back: no reuse, a fresh backup
  t.flash[0x7f000] ^= 1;
  const r3 = await writeFlash(ctx, first, { addr: 0x11000, store, identity, createdAt: at(3) });
  assert.equal(r3.backupRecord?.reused, false);
  assert.equal(r3.afterImage, null, "saveResult is off by default");
});

Deno.test("two jobs in the same second never overwrite each other's backup or after-image", async () => {
  const t = new Fake();
  const { ctx } = await setup(t);
  const store = new MemoryStore();
  const image = t.flash.slice(0x20000, 0x22000).map((b) => b ^ 0x11);
  const r1 = await writeFlash(ctx, image, {
    addr: 0x20000,
    store,
    identity,
    createdAt: at(5),
    saveResult: true,
  });
  const kept = store.entries.get(r1.afterImage!)!.slice();
  const r2 = await writeFlash(ctx, image.map((b) => b ^ 0x22), {
    addr: 0x20000,
    store,
    identity,
    createdAt: at(5),
    saveResult: true,
  });
  assert.equal(r2.backup, r1.afterImage, "reused");
  assert.notEqual(r2.afterImage, r1.afterImage);
  assert.notEqual(r2.journal, r1.journal);
  assert.deepEqual(store.entries.get(r1.afterImage!), kept, "the reused backup is untouched");
  assert.match(r2.afterImage!, /_20261122T010005Z-2\.after\.bin$/);
});

Deno.test("a stored backup whose bytes no longer match its sidecar is not reused", async () => {
  const t = new Fake();
  const { ctx } = await setup(t);
  const store = new MemoryStore();
  const image = t.flash.slice(0x20000, 0x30000).map((b) => ~b & 0xff);
  const r1 = await writeFlash(ctx, image, {
    addr: 0x20000,
    store,
    identity,
    createdAt: at(0),
    saveResult: true,
  });
  store.entries.get(r1.afterImage!)![100] ^= 1;
  const r2 = await writeFlash(ctx, image.map((b) => b ^ 1), {
    addr: 0x20000,
    store,
    identity,
    createdAt: at(1),
  });
  assert.equal(r2.backupRecord?.reused, false);
});

Deno.test("images are read from their source piece by piece", async () => {
  const t = new Fake();
  const { ctx } = await setup(t);
  const data = t.flash.slice(0x11000, 0x7f000).map((b) => b ^ 0x3c);
  let largest = 0;
  const source: ByteSource = {
    size: data.length,
    read(offset, length) {
      largest = Math.max(largest, length);
      return bytesSource(data).read(offset, length);
    },
  };
  await writeFlash(ctx, source, { addr: 0x11000, identity, createdAt: at(0), noBackup: true });
  assert.deepEqual(t.flash.subarray(0x11000, 0x7f000), data);
  assert.ok(largest <= 0x10000, `largest read ${largest}`);
  await verifyFlash(ctx, source, { addr: 0x11000 });
});

/** A ByteLink that drops the first FlashRead4K request for `victim` on its way to the chip. */
class DropRequest implements ByteLink {
  dropped = false;
  readonly #inner: ByteLink;
  readonly #frame: Uint8Array;
  constructor(inner: ByteLink, victim: number) {
    this.#inner = inner;
    this.#frame = encodeRequest(COMMANDS.FlashRead4K, { addr: victim });
  }
  get name() {
    return this.#inner.name;
  }
  get clock() {
    return this.#inner.clock;
  }
  get baud() {
    return this.#inner.baud;
  }
  get hasModemLines() {
    return this.#inner.hasModemLines;
  }
  write(data: Uint8Array): Promise<void> {
    const f = this.#frame;
    if (!this.dropped && data.length === f.length && data.every((b, i) => b === f[i])) {
      this.dropped = true;
      return Promise.resolve();
    }
    return this.#inner.write(data);
  }
  read(max: number, timeoutMs: number) {
    return this.#inner.read(max, timeoutMs);
  }
  drain() {
    return this.#inner.drain();
  }
  flushInput() {
    return this.#inner.flushInput();
  }
  setBaud(baud: number) {
    return this.#inner.setBaud(baud);
  }
  setSignals(signals: Parameters<ByteLink["setSignals"]>[0]) {
    return this.#inner.setSignals(signals);
  }
  close() {
    return this.#inner.close();
  }
}

Deno.test("e2e: read-ahead over the wire writes the next request before the reply ends; a lost request falls back", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const wire: { dir: string; t: number; n: number }[] = [];
  const link = new DropRequest(
    v.link({ onEvent: (e) => wire.push({ dir: e.dir, t: e.t, n: e.data?.length ?? 0 }) }),
    0x13000,
  );
  const { target } = await openUartTarget(link, { chip: chipById("bk7231t"), baud: 921600 });
  const events: FlasherEvent[] = [];
  const ctx = await createContext(target, link.clock, { baud: 921600, onEvent: (e) => events.push(e) });
  const start = wire.length;
  const r = await readFlash(ctx, { addr: 0x10000, size: 0x8000 });
  assert.deepEqual(r.data, v.nor.read(0x10000, 0x8000));
  assert.ok(link.dropped);
  assert.equal(events.filter((e) => e.type === "notice").length, 1);
  // before the loss: the second request went out while the first reply was still arriving
  const tx = wire.slice(start).filter((e) => e.dir === "tx");
  const firstReplyDone = wire.slice(start).find((e) => e.dir === "rx" && e.n > 4000)!.t;
  assert.ok(tx[1].t < firstReplyDone, "request 2 written before reply 1 was complete");
});

Deno.test("e2e bk7231t: CRCs alone send no LinkCheck; the first erase after a CRC does", async () => {
  const v = await createVirtualChip({ chip: "bk7231t" });
  const sent: string[] = [];
  const { target } = await openUartTarget(v.link(), { chip: chipById("bk7231t"), baud: 921600 });
  target.client.link.write = ((orig) => (data: Uint8Array) => {
    sent.push(data[3] === 0xff ? `L${data[7].toString(16)}` : `S${data[4].toString(16)}`);
    return orig(data);
  })(target.client.link.write.bind(target.client.link));
  const ctx = await createContext(target, target.client.link.clock, { baud: 921600 });
  await readFlash(ctx, { addr: 0x11000, size: 0x10000 });
  await verifyFlash(ctx, v.nor.read(0x11000, 0x10000), { addr: 0x11000 });
  assert.ok(!sent.includes("S0"), "no LinkCheck after CRCs");
  const image = new Uint8Array(0x11000).fill(0x5a);
  await writeFlash(ctx, image, { addr: 0x30000, identity, createdAt: at(0), noBackup: true });
  const firstErase = sent.indexOf("Lf");
  assert.equal(sent[firstErase - 1], "S0", "LinkCheck right before the first erase");
  assert.equal(
    sent.filter((s) => s === "S0").length,
    2,
    "and before the erase after the first block's check",
  );
  assert.deepEqual(v.nor.read(0x30000, 0x11000), image);
});

Deno.test("ch341a: a whole-page program is padded with its own first bytes, so it needs no short packet", () => {
  const page = Uint8Array.from({ length: 256 }, (_, i) => (i * 7) & 0xff);
  const out = new Uint8Array(260);
  out.set([0x02, 0x01, 0x00, 0x00]);
  out.set(page, 4);
  const wren = { frame: { out: Uint8Array.of(0x06) } };
  const rdsr = { frame: { out: Uint8Array.of(0x05), read: 1, tolerant: true } };
  const padded = planCh341([wren, rdsr, { frame: { out, pad: out.subarray(4) } }, rdsr], PINS_IDLE);
  const plain = planCh341([wren, rdsr, { frame: { out } }, rdsr], PINS_IDLE);
  assert.equal(padded.transfers.length, 2, "WREN | RDSR + PP + RDSR");
  assert.equal(plain.transfers.length, 3);
  assert.deepEqual(padded.frames[2], { clocked: 279, length: 260 });
  // the 19 extra bytes are the page's first 19, bit-reversed on the wire
  const pp = padded.transfers[1];
  const packets = Array.from({ length: pp.length / 32 }, (_, i) => pp.subarray(i * 32, i * 32 + 32));
  const spi = packets.filter((p) => p[0] === 0xa8).slice(1, 10).flatMap((p) => [...p.subarray(1)]);
  const rev = (b: number) => parseInt(b.toString(2).padStart(8, "0").split("").reverse().join(""), 2);
  assert.deepEqual(spi.slice(260).map(rev), [...page.subarray(0, 19)]);
});
