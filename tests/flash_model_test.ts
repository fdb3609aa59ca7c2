import { assertSameBytes } from "./support/bytes.ts";
import assert from "node:assert/strict";
import fc from "fast-check";
import { chipById, type ChipProfile, CHIPS } from "../core/chips/profiles.ts";
import { ChipStatusError, FlashError } from "../core/errors.ts";
import { protectedRange } from "../core/spi/status.ts";
import type { UartClient } from "../core/uart/client.ts";
import { chipToStandard, crc32 } from "../core/crc.ts";
import { connect } from "../core/uart/connect.ts";
import { COMMANDS, ERASE_4K, ERASE_64K } from "../core/uart/table.ts";
import { createFaultyChip, type FaultyChip } from "../emulator/faults.ts";
import { Rng } from "../emulator/rng.ts";
import { crcLength, loaderFamilyOf } from "../core/chips/loaders.ts";

/**
 * Model-based test of the loader and flash over the wire (docs/testing.md §2 item 4): random
 * sequences of reads, erases, programs, status-register writes, CRCs, link checks, reboots
 * and power cuts in the middle of an erase or program, against a model that is a plain byte
 * array plus the status word. After every command: the touched bytes equal the model,
 * protected ranges did not change, no bit went 0→1 without an erase, the chip's CRC equals the
 * model's under the personality's end rule.
 */

const SECTOR = 0x1000;
/** 512 KiB, two status registers with CMP (P25Q40): small enough to compare whole. */
const FLASH_ID = [0x85, 0x60, 0x13] as const;

interface Model {
  profile: ChipProfile;
  flash: Uint8Array;
  /** Status word as the model believes it. */
  sr: number;
  /** Basic loaders: a LinkCheck after CheckCRC saw the flash protected (docs/uart.md §5.4). */
  lockFlag: boolean;
}

interface Real {
  v: FaultyChip;
  client: UartClient;
}

type Cmd = fc.AsyncCommand<Model, Real>;

const hex = (n: number) => `0x${n.toString(16)}`;

function part(r: Real) {
  return r.v.nor.part;
}

/** Address the loader accepts for sector `s` (basic loaders read their window through the wrap). */
function readAddr(m: Model, size: number, s: number): number {
  return s < m.profile.loaderProtectedEnd ? s + size : s;
}

function protectedBytes(m: Model, r: Real): { start: number; end: number } {
  return protectedRange(part(r), m.sr, m.flash.length);
}

function assertUnchanged(
  r: Real,
  range: { start: number; end: number },
  before: Uint8Array,
  what: string,
) {
  if (range.end <= range.start) return;
  const now = r.v.nor.read(range.start, range.end - range.start);
  assert.ok(now.every((b, i) => b === before[i]), `${what} changed protected bytes in ${hex(range.start)}..`);
}

function assertSectorMatches(m: Model, r: Real, addr: number, what: string) {
  const got = r.v.nor.read(addr, SECTOR);
  const want = m.flash.subarray(addr, addr + SECTOR);
  const i = got.findIndex((b, k) => b !== want[k]);
  assert.equal(i, -1, `${what}: flash differs from the model at ${hex(addr + i)}`);
}

async function expectRefused(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ChipStatusError || e instanceof FlashError, `${what}: ${e}`);
    return;
  }
  assert.fail(`${what} was not refused`);
}

/** The loader answers nothing to a write or erase overlapping its forbidden ranges (BK7236). */
function silentlyForbidden(m: Model, start: number, len: number): boolean {
  const f = loaderFamilyOf(m.profile).forbidden;
  return f.answer === "silence" && f.ranges.some((r) => start < r.end && start + len > r.start);
}

async function expectSilence(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FlashError && e.code === "TIMEOUT", `${what}: ${e}`);
    return;
  }
  assert.fail(`${what} was answered`);
}

class Read implements Cmd {
  constructor(readonly s: number) {}
  check() {
    return true;
  }
  async run(m: Model, r: Real) {
    const data = (await r.client.command(COMMANDS.FlashRead4K, { addr: readAddr(m, m.flash.length, this.s) }))
      .data;
    assert.deepEqual(data, m.flash.subarray(this.s, this.s + SECTOR), `read ${hex(this.s)}`);
  }
  toString() {
    return `Read(${hex(this.s)})`;
  }
}

class Erase implements Cmd {
  constructor(readonly s: number, readonly big: boolean) {}
  check() {
    return true;
  }
  async run(m: Model, r: Real) {
    const len = this.big ? 0x10000 : SECTOR;
    const start = this.s - (this.s % len);
    const req = r.client.command(COMMANDS.FlashErase, {
      sizeCmd: this.big ? ERASE_64K : ERASE_4K,
      addr: start,
    });
    if (start < m.profile.loaderProtectedEnd) return await expectRefused(req, `erase ${hex(start)}`);
    if (silentlyForbidden(m, start, len)) return await expectSilence(req, `erase ${hex(start)}`);
    if (m.profile.crcProtectLock && m.lockFlag) {
      m.sr &= ~0xff;
      m.lockFlag = false;
    }
    const prot = protectedBytes(m, r);
    const before = r.v.nor.read(prot.start, prot.end - prot.start);
    await req;
    assertUnchanged(r, prot, before, this.toString());
    if (!(prot.end > prot.start && start < prot.end && start + len > prot.start)) {
      m.flash.fill(0xff, start, start + len);
    }
    for (let a = start; a < start + len; a += SECTOR) assertSectorMatches(m, r, a, this.toString());
  }
  toString() {
    return `Erase${this.big ? "64K" : "4K"}(${hex(this.s)})`;
  }
}

class Program implements Cmd {
  constructor(readonly s: number, readonly seed: number, readonly density: number) {}
  check() {
    return true;
  }
  async run(m: Model, r: Real) {
    const data = new Rng(this.seed).fill(new Uint8Array(SECTOR));
    // keep many bits at 1 so that programs over programs stay interesting
    for (let i = 0; i < SECTOR; i++) if (i % this.density !== 0) data[i] = 0xff;
    const req = r.client.command(COMMANDS.FlashWrite4K, { addr: this.s, data });
    if (this.s < m.profile.loaderProtectedEnd) return await expectRefused(req, `program ${hex(this.s)}`);
    if (silentlyForbidden(m, this.s, SECTOR)) return await expectSilence(req, `program ${hex(this.s)}`);
    const prot = protectedBytes(m, r);
    const before = r.v.nor.read(prot.start, prot.end - prot.start);
    const old = r.v.nor.read(this.s, SECTOR);
    await req;
    assertUnchanged(r, prot, before, this.toString());
    const now = r.v.nor.read(this.s, SECTOR);
    for (let i = 0; i < SECTOR; i++) {
      assert.equal(now[i] & ~old[i], 0, `${this} turned a 0 bit into 1 at ${hex(this.s + i)}`);
      const a = this.s + i;
      const page = a - (a % 256);
      if (!(prot.end > prot.start && page < prot.end && page + 256 > prot.start)) m.flash[a] &= data[i];
    }
    assertSectorMatches(m, r, this.s, this.toString());
  }
  toString() {
    return `Program(${hex(this.s)}, seed ${this.seed}, 1/${this.density})`;
  }
}

class WriteSr implements Cmd {
  constructor(readonly value: number) {}
  check(m: Readonly<Model>) {
    return m.profile.personality === "FULL";
  }
  async run(m: Model, r: Real) {
    const p = part(r);
    const bytes = p.srCount >= 2
      ? Uint8Array.of(this.value & 0xff, this.value >> 8)
      : Uint8Array.of(this.value & 0xff);
    const before = m.sr;
    await r.client.command(COMMANDS.FlashWriteSR, { cmd: 0x01, value: bytes });
    await r.v.clock.sleep(20);
    const after = await readSr(r);
    const l = p.layout;
    const locked = (l.srp1Bit !== null && (before >> l.srp1Bit) & 1) ||
      (l.srp0Bit !== null && (before >> l.srp0Bit) & 1 && !r.v.nor.wpHigh);
    if (locked) assert.equal(after, before, `${this} changed a locked status register`);
    assert.equal(after & l.stickyMask & before, before & l.stickyMask, `${this} cleared a one-time lock bit`);
    m.sr = after;
  }
  toString() {
    return `WriteSR(${hex(this.value)})`;
  }
}

async function readSr(r: Real): Promise<number> {
  const p = part(r);
  let sr = 0;
  for (const [i, cmd] of p.srRead.slice(0, p.srCount).entries()) {
    sr |= ((await r.client.command(COMMANDS.FlashReadSR, { cmd })).value) << (8 * i);
  }
  return sr;
}

class ReadSr implements Cmd {
  check(m: Readonly<Model>) {
    return m.profile.personality === "FULL";
  }
  async run(m: Model, r: Real) {
    assert.equal(await readSr(r), m.sr, "status register differs from the model");
  }
  toString() {
    return "ReadSR";
  }
}

class Crc implements Cmd {
  constructor(readonly start: number, readonly len: number) {}
  check() {
    return true;
  }
  async run(m: Model, r: Real) {
    const size = m.flash.length;
    const start = Math.min(this.start, size - this.len);
    const end = m.profile.crcEndInclusive ? start + this.len - 1 : start + this.len;
    const raw = (await r.client.command(COMMANDS.CheckCRC, { start, end })).crc;
    // the loader's own length rule (T/U: whole 256-byte chunks only)
    const bytes = crcLength(loaderFamilyOf(m.profile).crcLength, start, end);
    assert.equal(chipToStandard(raw), crc32(m.flash.subarray(start, start + bytes)), this.toString());
    if (m.profile.crcProtectLock) {
      const { bpShift, bpBits } = part(r).layout;
      m.sr = (m.sr & ~0xff) | ((((1 << bpBits) - 1) << bpShift) & 0xff);
    }
  }
  toString() {
    return `CRC(${hex(this.start)}, ${this.len})`;
  }
}

class LinkCheck implements Cmd {
  check() {
    return true;
  }
  async run(m: Model, r: Real) {
    await r.client.command(COMMANDS.LinkCheck, {});
    if (m.profile.crcProtectLock) m.lockFlag = protectedRange(part(r), m.sr, m.flash.length).end > 0;
  }
  toString() {
    return "LinkCheck";
  }
}

/** Link again after a reset; the link checks re-arm a basic loader's unprotect flag. */
async function relink(m: Model, r: Real): Promise<void> {
  r.client = await connect(r.client.link, { linkTimeoutMs: 3000 });
  r.client.personality = r.v.profile.personality;
  m.lockFlag = m.profile.crcProtectLock && protectedRange(part(r), m.sr, m.flash.length).end > 0;
}

class Reboot implements Cmd {
  check() {
    return true;
  }
  async run(m: Model, r: Real) {
    await r.client.send(COMMANDS.Reboot, { magic: 0xa5 });
    await r.v.clock.sleep(5);
    await relink(m, r);
  }
  toString() {
    return "Reboot";
  }
}

/** Power fails part-way through an erase or a program; power returns, the host links again. */
class PowerCut implements Cmd {
  constructor(readonly s: number, readonly erase: boolean, readonly seed: number) {}
  check(m: Readonly<Model>) {
    return this.s >= m.profile.loaderProtectedEnd;
  }
  async run(m: Model, r: Real) {
    const prot = protectedBytes(m, r);
    const len = this.erase ? SECTOR : SECTOR;
    const covered = prot.end > prot.start && this.s < prot.end && this.s + len > prot.start;
    if (m.profile.crcProtectLock && m.lockFlag && this.erase) {
      m.sr &= ~0xff;
      m.lockFlag = false;
    }
    const protNow = protectedBytes(m, r);
    const before = r.v.nor.read(protNow.start, protNow.end - protNow.start);
    const old = r.v.nor.read(this.s, SECTOR);
    const data = new Rng(this.seed).fill(new Uint8Array(SECTOR));
    r.v.dice.active = true;
    const req = this.erase
      ? r.client.command(COMMANDS.FlashErase, { sizeCmd: ERASE_4K, addr: this.s })
      : r.client.command(COMMANDS.FlashWrite4K, { addr: this.s, data });
    await req.then(() => {}, () => {});
    r.v.dice.active = false;
    const cut = !r.v.rail.powered;
    r.v.rail.powerOn(r.v.clock.now());
    // a power cycle lifts the power-cycle lock (SRP1 = 1, SRP0 = 0)
    const l = part(r).layout;
    if (l.srp1Bit !== null && (m.sr >> l.srp1Bit) & 1 && !(l.srp0Bit !== null && (m.sr >> l.srp0Bit) & 1)) {
      m.sr &= ~(1 << l.srp1Bit);
    }
    await relink(m, r);
    assertUnchanged(r, protNow, before, this.toString());
    const now = r.v.nor.read(this.s, SECTOR);
    for (let i = 0; i < SECTOR; i++) {
      if (this.erase) {
        assert.equal(old[i] & ~now[i], 0, `${this}: a partial erase cleared a bit at ${hex(this.s + i)}`);
      } else {
        assert.equal(now[i] & ~old[i], 0, `${this}: a partial program set a bit at ${hex(this.s + i)}`);
        assert.equal(old[i] & data[i] & ~now[i], 0, `${this}: a partial program went past the data`);
      }
    }
    if (!cut && covered) assertSameBytes(now, old, `${this}: protected sector`);
    m.flash.set(now, this.s);
  }
  toString() {
    return `PowerCut(${this.erase ? "erase" : "program"} ${hex(this.s)})`;
  }
}

const sectorArb = fc.oneof(
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x10 }).map((i) => i * SECTOR) },
  { weight: 6, arbitrary: fc.integer({ min: 0x11, max: 0x22 }).map((i) => i * SECTOR) },
  { weight: 1, arbitrary: fc.integer({ min: 0x70, max: 0x7f }).map((i) => i * SECTOR) },
);

const commands = [
  sectorArb.map((s) => new Read(s)),
  fc.tuple(sectorArb, fc.boolean()).map(([s, big]) => new Erase(s, big)),
  fc.tuple(sectorArb, fc.nat(), fc.constantFrom(1, 3, 17)).map(([s, seed, d]) => new Program(s, seed, d)),
  fc.oneof(
    fc.constantFrom(0, 0x4004, 0x001c, 0x0004, 0x0024, 0x4000, 0x0080, 0x0100, 0x0800),
    fc.integer({ min: 0, max: 0xffff }),
  ).map((v) => new WriteSr(v)),
  fc.constant(new ReadSr()),
  fc.tuple(fc.integer({ min: 0, max: 0x7ffff }), fc.integer({ min: 1, max: 0x9000 })).map(([s, l]) =>
    new Crc(s, l)
  ),
  fc.constant(new LinkCheck()),
  fc.constant(new Reboot()),
  fc.tuple(sectorArb, fc.boolean(), fc.nat()).map(([s, e, seed]) => new PowerCut(s, e, seed)),
];

for (const profile of CHIPS.filter((c) => c.uart)) {
  Deno.test(`model: ${profile.id} loader and flash follow a byte-array model through any command sequence`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), fc.nat(), async (cmds, seed) => {
        const v = createFaultyChip({
          chip: profile.id,
          flashId: FLASH_ID,
          plan: { seed, rates: { "power-loss-erase": 1, "power-loss-program": 1 }, maxFaults: 1000 },
        });
        v.dice.active = false;
        const link = v.link();
        const client = await connect(link, { linkTimeoutMs: 3000 });
        client.personality = profile.personality;
        const model: Model = {
          profile: chipById(profile.id)!,
          flash: v.nor.read(0, v.nor.size),
          sr: 0,
          lockFlag: false,
        };
        const real: Real = { v, client };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        assertSameBytes(v.nor.read(0, v.nor.size), model.flash, "whole flash against the model at the end");
        await real.client.close();
      }),
      { seed: 4242, numRuns: 25 },
    );
  });
}
