/**
 * One fuzz scenario: a virtual chip (any profile, UART or SPI path), a fault plan, one user
 * operation (write, erase, read, verify) run through the real core, then the invariants
 * checked against the emulator's flash. A failed operation is followed, when the scenario
 * asks for it, by the user's recovery (power back on, port reopened, faults gone, the same
 * command again with the journal's `--resume`), which must end verified.
 *
 * Invariants (each breach is a violation string):
 * - success ⇒ the range holds exactly the expected bytes (read: the bytes returned are the flash);
 * - bytes outside the range never change;
 * - a failure is a typed FlashError; every byte in the range that is neither the old nor the
 *   expected content lies inside the error's damage range;
 * - every backup saved equals the flash as it was before the job;
 * - the host never sends a command outside the loader personality's table;
 * - erases and programs per address stay within the retry bounds;
 * - after opening, the host's real baud equals the chip's, and the rate is the requested one
 *   or 115200 with a fallback notice;
 * - without any injected fault, nothing fails except refusals the scenario calls for;
 * - recovery without faults always ends with the range verified and nothing else changed.
 *
 * @module
 */

import { chipById, type ChipProfile } from "../../core/chips/profiles.ts";
import { FlashError } from "../../core/errors.ts";
import {
  createContext,
  eraseRegion,
  type FlasherContext,
  type FlashTarget,
  MemoryStore,
  parseJournal,
  PROGRAM_ATTEMPTS,
  readFlash,
  SECTOR,
  verifyFlash,
  writeFlash,
  type WriteJournal,
} from "../../core/flasher/mod.ts";
import { readSparseTo, sparseAllowed } from "../../core/flasher/sparse_read.ts";
import { Ch341aSpi } from "../../core/io/ch341a.ts";
import { flashPartFor, formatJedecId } from "../../core/spi/jedec.ts";
import { diagnoseLock, needsUnprotect, protectClearMask } from "../../core/spi/status.ts";
import { openSpiTarget } from "../../core/spi/target.ts";
import { decodeFields } from "../../core/uart/codec.ts";
import { RequestParser } from "../../core/uart/parser.ts";
import type { SessionEvent } from "../../core/uart/session.ts";
import { commandByKey, COMMANDS } from "../../core/uart/table.ts";
import { openUartTarget } from "../../core/uart/target.ts";
import { createVirtualCh341a, VirtualCh341a } from "../../emulator/ch341a.ts";
import {
  createFaultyChip,
  type FaultKind,
  type FaultPlan,
  FaultRecorder,
  FaultyUsbDevice,
  refuseSpiEntry,
} from "../../emulator/faults.ts";
import { FaultDice } from "../../emulator/faults/plan.ts";
import { defaultImage } from "../../emulator/image.ts";
import { NorFlash } from "../../emulator/nor.ts";
import { Rng } from "../../emulator/rng.ts";
import { baudsMatch } from "../../emulator/wire.ts";
import { loaderFamilyOf } from "../../core/chips/loaders.ts";

/** What fills one sector of the image. */
export type SectorFill = "same" | "random" | "blank" | "zero" | "near";

/** Everything that defines a scenario; plain data, so fast-check can generate and shrink it. */
export interface Scenario {
  /** Chip profile id. */
  chip: string;
  /** "default" = the profile's flash; "small" = a 512 KiB part (faster); "p25q16hbk" = the part that locks its SR after a no-op WRSR on BK7238. */
  flash: "default" | "small" | "p25q16hbk";
  /** Loader quirks: T/U ring-buffer size (0 = the family's), read-ahead forced on. */
  quirks?: { ring: number; readAhead: boolean };
  path: "uart" | "spi";
  /** Working baud rate of the UART path. */
  baud: number;
  op: "write" | "erase" | "read" | "verify";
  /** Where the range starts: 0..1000 across the flash above the bootloader. */
  at: number;
  /** Start inside the bootloader window (with --overwrite-bootloader). */
  low: boolean;
  /** Length of the range in sectors. */
  sectors: number;
  /** Per-sector content of the image, cycled. */
  fills: SectorFill[];
  /** Seed of the random image bytes. */
  contentSeed: number;
  backup: boolean;
  /** Initial status word of the flash. */
  protect: number;
  /** WP# held low. */
  wpLow: boolean;
  /** Inject faults while linking and identifying too. */
  faultsDuringOpen: boolean;
  /** After a failure: power on, reopen without faults, run again (resuming from the journal). */
  recover: boolean;
  plan: FaultPlan;
}

/** What running a scenario found. */
export interface ScenarioResult {
  /** "ok" or the error code of the first run. */
  outcome: string;
  /** Outcome of the recovery run, when there was one. */
  recovery?: string;
  violations: string[];
  /**
   * Findings that are not broken promises of the design: on SPI (no chip CRC) reads trust the
   * bus, so a flipped MISO bit can reach a read's output, or a backup sector that the job does
   * not erase (sectors about to be erased are read twice).
   */
  unverified: string[];
  /**
   * Changes no host could have seen: a request corrupted on the wire was carried out, its reply
   * never arrived (lost, or power failed first), the job failed, and no backup of the job
   * existed to compare with (or the job was not resumed). The protocol has no checksum; only a
   * backup helps.
   */
  undetectable: string[];
  /** Faults injected, by kind. */
  faults: Partial<Record<FaultKind, number>>;
  /** Loader quirks that acted in this scenario (core/chips/loaders.ts), by name. */
  quirks: Record<string, number>;
  /** Virtual milliseconds the scenario took on the chip's clock. */
  virtualMs: number;
}

const SMALL_FLASH = [0x85, 0x60, 0x13] as const;
/** `FUZZ_TRACE=1` logs every command, wire chunk and fault of the UART path to stderr. */
const trace = (() => {
  try {
    return Deno.env.get("FUZZ_TRACE") === "1";
  } catch {
    return false;
  }
})();

function hexBytes(b: Uint8Array | null, n: number): string {
  return b ? [...b.subarray(0, n)].map((x) => x.toString(16).padStart(2, "0")).join(" ") : "";
}
const CREATED_AT = new Date("2026-01-01T00:00:00Z");
/** Marks a first-run finding that only a resumed job can be held to. */
const DEFERRED = "deferred: ";
/** Virtual time after which a scenario counts as running away. */
const RUNAWAY_MS = 6 * 3600_000;

/** A recorder of host frames on the UART path, for the conformance and retry checks. */
class FrameLog {
  readonly parser = new RequestParser();
  readonly frames: {
    name: string;
    known: boolean;
    code: number;
    kind: string;
    addr?: number;
    size?: number;
  }[] = [];
  push(data: Uint8Array): void {
    this.parser.push(data);
    for (let f = this.parser.next(); f; f = this.parser.next()) {
      const spec = commandByKey(f.kind, f.code);
      if (!spec) {
        this.frames.push({ name: `0x${f.code.toString(16)}`, known: false, code: f.code, kind: f.kind });
        continue;
      }
      const v = decodeFields(spec.request, f.payload);
      const entry: FrameLog["frames"][number] = { name: spec.name, known: true, code: f.code, kind: f.kind };
      if (v && typeof v.addr === "number") entry.addr = v.addr;
      if (spec.name === "FlashErase" && v) entry.size = v.sizeCmd === 0xd8 ? 0x10000 : 0x1000;
      this.frames.push(entry);
    }
  }
}

interface Rig {
  profile: ChipProfile;
  nor: NorFlash;
  size: number;
  clock: { now(): number };
  recorder: FaultRecorder;
  /**
   * Open the target with faults on or off while opening (`openFaults`) and afterwards
   * (`runFaults`), returning it and the context.
   */
  open(
    openFaults: boolean,
    runFaults: boolean,
    log: FrameLog | null,
  ): Promise<{ target: FlashTarget; ctx: FlasherContext }>;
  /** Power-cycle the chip (what the remedies tell the user to do before trying again). */
  powerCycle(): void;
  /** Checks after a successful open (baud). */
  afterOpen: string[];
  /** Loader quirks that acted, gathered after the runs (UART rigs). */
  quirks(): Record<string, number>;
}

function buildImage(s: Scenario, pre: Uint8Array, addr: number): Uint8Array {
  const rng = new Rng(s.contentSeed);
  const out = new Uint8Array(s.sectors * SECTOR);
  for (let i = 0; i < s.sectors; i++) {
    const sec = out.subarray(i * SECTOR, (i + 1) * SECTOR);
    const fill = s.fills[i % s.fills.length] ?? "random";
    const old = pre.subarray(addr + i * SECTOR, addr + (i + 1) * SECTOR);
    switch (fill) {
      case "same":
        sec.set(old);
        break;
      case "blank":
        sec.fill(0xff);
        break;
      case "zero":
        sec.fill(0);
        break;
      case "near":
        sec.set(old);
        sec[rng.int(SECTOR)] ^= 1 << rng.int(8);
        break;
      default:
        rng.fill(sec);
    }
  }
  return out;
}

function flashIdOf(s: Scenario): readonly number[] | undefined {
  return s.flash === "small" ? SMALL_FLASH : s.flash === "p25q16hbk" ? [0x85, 0x20, 0x15] : undefined;
}

function uartRig(s: Scenario, profile: ChipProfile): Rig {
  const v = createFaultyChip({
    chip: profile.id,
    plan: s.plan,
    flashId: flashIdOf(s),
    protect: s.protect,
    wpHigh: !s.wpLow,
    loader: s.quirks?.ring && loaderFamilyOf(profile).busy.kind === "ring"
      ? { busy: { kind: "ring", size: s.quirks.ring, variants: [s.quirks.ring] } }
      : undefined,
  });
  if (trace) {
    v.chip.onCommand = (name, req, rep, at) =>
      console.error(`chip ${at.toFixed(1)} ${name} ${hexBytes(req, 9)} -> ${rep ? rep.length : "none"}`);
    v.recorder.onFault = (f) => console.error(`fault ${f.t.toFixed(1)} ${f.kind}: ${f.detail}`);
  }
  const fillers: { fillerBytes: number }[] = [];
  const rig: Rig = {
    profile,
    nor: v.nor,
    size: v.nor.size,
    clock: v.clock,
    recorder: v.recorder,
    afterOpen: [],
    quirks() {
      const q: Record<string, number> = {};
      const l = v.chip.loss;
      if (l.dropped) q["busy-drop"] = 1;
      if (l.overflowed) q["ring-overflow"] = 1;
      if (l.abandoned) q["frame-abandoned"] = 1;
      if (fillers.some((c) => c.fillerBytes > 0)) q["tu-filler-recovery"] = 1;
      const f = loaderFamilyOf(profile).forbidden;
      if (s.low && f.answer === "silence") q["silent-forbidden-range"] = 1;
      if (v.chip.srLockQuirk && s.flash === "p25q16hbk") q["sr-lock-part"] = 1;
      return q;
    },
    powerCycle() {
      v.rail.powerOn(v.clock.now());
    },
    async open(openFaults, runFaults, log) {
      const t0 = v.clock.now();
      const link = v.link({
        onWrite: (data, t) => {
          if (t - t0 > RUNAWAY_MS) {
            throw new Error(`runaway: ${Math.round((t - t0) / 1000)} s of virtual time`);
          }
          log?.push(data);
        },
      });
      link.dice.active = openFaults;
      v.dice.active = openFaults;
      const events: SessionEvent[] = [];
      let opened;
      try {
        opened = await openUartTarget(link, {
          chip: profile,
          readAhead: s.quirks?.readAhead ? true : undefined,
          baud: s.baud,
          linkTimeoutMs: 5000,
          onEvent: (e) => events.push(e),
          onWire: trace
            ? (w) =>
              console.error(`host ${w.dir} ${w.t.toFixed(1)} ${hexBytes(w.data, 16)} (${w.data.length})`)
            : undefined,
        });
      } catch (e) {
        await link.close();
        throw e;
      }
      const chipBaud = v.chip.baudAt(v.clock.now());
      if (!baudsMatch(link.inner.baud, chipBaud)) {
        rig.afterOpen.push(`the host runs at ${link.inner.baud} baud and the chip at ${chipBaud}`);
      }
      if (opened.baud !== s.baud) {
        if (opened.baud !== 115200) {
          rig.afterOpen.push(`opened at ${opened.baud}, neither ${s.baud} nor 115200`);
        }
        if (!events.some((e) => e.type === "baud-fallback")) {
          rig.afterOpen.push(`fell back to ${opened.baud} baud without saying so`);
        }
      }
      link.dice.active = runFaults;
      v.dice.active = runFaults;
      fillers.push(opened.client);
      const ctx = await createContext(opened.target, v.clock, {}).catch(async (e) => {
        await opened.target.close();
        throw e;
      });
      return { target: opened.target, ctx };
    },
  };
  return rig;
}

function spiRig(s: Scenario, profile: ChipProfile): Rig {
  const part = flashPartFor(flashIdOf(s) ?? profile.defaultFlashId);
  const nor = new NorFlash({ part, data: defaultImage(profile, part.size), sr: s.protect, wpHigh: !s.wpLow });
  // refusals come from the plan's spi-entry-refused fault, so that each one is counted
  const bench = createVirtualCh341a({ nor, seed: s.plan.seed, entry: { successProbability: 1 } });
  const recorder = new FaultRecorder();
  const entryDice = new FaultDice(s.plan, recorder, 301);
  if (bench.chip) refuseSpiEntry(bench.chip, entryDice, bench.clock);
  let plugs = 0;
  const rig: Rig = {
    profile,
    nor,
    size: nor.size,
    clock: bench.clock,
    recorder,
    afterOpen: [],
    quirks: () => ({}),
    powerCycle() {
      nor.powerCycle();
    },
    async open(openFaults, runFaults) {
      // every open is a fresh plug-in of the programmer: nothing stale in its FIFOs
      const device = plugs++ === 0 ? bench.device : new VirtualCh341a(bench.chip ?? nor, bench.clock);
      const usb = new FaultyUsbDevice(device, s.plan, { recorder, clock: bench.clock, salt: 200 + plugs });
      usb.dice.active = openFaults;
      entryDice.active = openFaults;
      const spi = await Ch341aSpi.open(usb, { clock: bench.clock });
      let target;
      try {
        target = await openSpiTarget(spi, { entry: { attempts: 10 } });
      } catch (e) {
        await spi.close().catch(() => {});
        throw e;
      }
      usb.dice.active = runFaults;
      entryDice.active = runFaults;
      const ctx = await createContext(target, bench.clock, {}).catch(async (e) => {
        await target.close().catch(() => {});
        throw e;
      });
      return { target, ctx };
    },
  };
  return rig;
}

interface RunOutcome {
  error: unknown;
  data?: Uint8Array;
}

async function runOp(
  rig: Rig,
  s: Scenario,
  store: MemoryStore,
  addr: number,
  image: Uint8Array,
  faults: { open: boolean; run: boolean },
  log: FrameLog | null,
  resume?: { journal: WriteJournal; name: string },
  attempt = 0,
): Promise<RunOutcome> {
  let opened;
  try {
    opened = await rig.open(faults.open, faults.run, log);
  } catch (e) {
    return { error: e };
  }
  const { target, ctx } = opened;
  const identity = {
    chip: rig.profile.name,
    flashId: formatJedecId(rig.nor.jedecId).replaceAll(" ", ""),
    key: null,
  };
  const common = {
    store: s.backup ? store : undefined,
    noBackup: !s.backup,
    identity,
    createdAt: new Date(CREATED_AT.getTime() + attempt * 3600_000),
    overwriteBootloader: s.low,
    resume,
    // the first run's unseen collateral is what the resume is held to repair: the user's
    // --restore-outside (without it a resume names the sectors and writes nothing)
    restoreOutside: resume !== undefined,
  };
  const out: RunOutcome = { error: null };
  try {
    switch (s.op) {
      case "write":
        await writeFlash(ctx, image, { addr, ...common });
        break;
      case "erase":
        await eraseRegion(ctx, { addr, size: image.length, ...common });
        break;
      case "read": {
        // where the chip has a CRC, the read maps erased regions first (sparse_read.ts), as read-flash does
        if (sparseAllowed(ctx)) {
          const data = new Uint8Array(image.length);
          await readSparseTo(ctx, { addr, size: image.length }, (chunk, o) => data.set(chunk, o));
          out.data = data;
        } else out.data = (await readFlash(ctx, { addr, size: image.length })).data;
        break;
      }
      case "verify":
        await verifyFlash(ctx, image, { addr });
        break;
    }
  } catch (e) {
    out.error = e;
  } finally {
    await target.close().catch(() => {});
  }
  return out;
}

function journalIn(store: MemoryStore): { journal: WriteJournal; name: string } | undefined {
  for (const [name, bytes] of store.entries) {
    if (!name.endsWith(".journal.json")) continue;
    const journal = parseJournal(new TextDecoder().decode(bytes));
    if (journal.state !== "verified") return { journal, name };
  }
  return undefined;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0 && a.length % 4 === 0) {
    const x = new Uint32Array(a.buffer, a.byteOffset, a.length / 4);
    const y = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The first address in [from, to) where `now` differs from `pre`, or -1. */
function firstChange(now: Uint8Array, pre: Uint8Array, from: number, to: number): number {
  for (let s = from; s < to; s += SECTOR) {
    const e = Math.min(to, s + SECTOR);
    if (!equalBytes(now.subarray(s, e), pre.subarray(s, e))) {
      for (let a = s; a < e; a++) if (now[a] !== pre[a]) return a;
    }
  }
  return -1;
}

/** Why a fault-free failure is nonetheless legitimate for this scenario, or null. */
function legitimateRefusal(s: Scenario, profile: ChipProfile, addr: number, e: unknown): string | null {
  if (!(e instanceof FlashError)) return null;
  const code = e.code === "WRITE_FAILED" && e.cause instanceof FlashError ? e.cause.code : e.code;
  if (code === "FLASH_LOCKED") return "locked status register";
  if (code === "BOOTLOADER_GUARD" && s.path === "uart" && addr < profile.loaderProtectedEnd) {
    return "the loader guards its window";
  }
  // a BK7236-class loader answers nothing there: the client refuses before sending
  const f = loaderFamilyOf(profile).forbidden;
  if (
    code === "BOOTLOADER_GUARD" && s.path === "uart" && f.answer === "silence" &&
    f.ranges.some((r) => addr < r.end)
  ) return "the loader ignores its forbidden range";
  if (s.op === "verify" && code === "VERIFY_FAILED") return "the image differs";
  return null;
}

/** Whether the status register start state can block writes in a way unprotect may not lift. */
function lockedStart(s: Scenario, nor: NorFlash): boolean {
  const part = nor.part;
  if (part.srCount === 0 || !needsUnprotect(part, s.protect)) return false;
  if (diagnoseLock(part, s.protect, s.wpLow ? "low" : "high").locked) return true;
  return (s.protect & protectClearMask(part) & part.layout.readOnlyMask) !== 0;
}

/** Run one scenario and check every invariant. */
export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const profile = chipById(s.chip);
  if (!profile) throw new Error(`unknown chip ${s.chip}`);
  const rig = s.path === "spi" ? spiRig(s, profile) : uartRig(s, profile);
  const t0 = rig.clock.now();
  const size = rig.size;
  const pre = rig.nor.read(0, size);
  const sectorsTotal = size / SECTOR;
  const lowEnd = 0x11000 / SECTOR;
  const sectors = Math.max(1, Math.min(s.sectors, sectorsTotal - lowEnd));
  const firstSector = s.low
    ? Math.min(Math.floor((s.at / 1000) * lowEnd), lowEnd - 1)
    : lowEnd + Math.floor((s.at / 1000) * (sectorsTotal - lowEnd - sectors));
  const addr = firstSector * SECTOR;
  const scenario = { ...s, sectors };
  const end = addr + sectors * SECTOR;
  const image = s.op === "erase"
    ? new Uint8Array(sectors * SECTOR).fill(0xff)
    : buildImage(scenario, pre, addr);
  const violations: string[] = [];
  const unverified: string[] = [];
  const undetectable: string[] = [];
  const store = new MemoryStore();
  const log = s.path === "uart" ? new FrameLog() : null;
  const changes = s.op === "write" || s.op === "erase";

  const first = await runOp(rig, scenario, store, addr, image, { open: s.faultsDuringOpen, run: true }, log);
  const faultCount = rig.recorder.events.length;
  violations.push(...rig.afterOpen.map((v) => `open: ${v}`));
  const after = rig.nor.read(0, size);
  const firstRun = checkRun("run", scenario, rig, first, pre, after, image, addr, store, changes, unverified);
  const deferred = firstRun.filter((v) => v.startsWith(DEFERRED)).map((v) => v.slice(DEFERRED.length));
  // a CheckCRC reply has no check of its own (uart.md: the frame carries no checksum), so one reply
  // corrupted into exactly the expected CRC reads as "this range already holds the image" to any
  // job that compares or verifies by chip CRC. A write or erase of blank sectors then stops short
  // saying it succeeded, a verify against blank sectors passes; a limit of the protocol, noted, not
  // a violation. A backup or a
  // read is held to the flash even then (the erased-region map confirms with a second reply).
  const lied = rig.recorder.events.some((f) => f.kind === "crc-erased");
  const shortByLie = (v: string) =>
    lied &&
    (v === `run: ${s.op} reported success but the range differs from the image` ||
      v === "run: verify passed on differing flash");
  unverified.push(
    ...firstRun.filter(shortByLie).map((v) => `${v} (one CheckCRC reply carried the CRC of 0xFF)`),
  );
  violations.push(...firstRun.filter((v) => !v.startsWith(DEFERRED) && !shortByLie(v)));
  if (log) violations.push(...checkFrames(log, profile, "run"));

  let recovery: string | undefined;
  const refusal = first.error ? legitimateRefusal(scenario, profile, addr, first.error) : null;
  if (first.error && faultCount === 0 && !refusal && !lockedStart(s, rig.nor)) {
    violations.push(`failed with no fault injected: ${describe(first.error)}`);
  }
  if (first.error && s.recover && !refusal && !lockedStart(s, rig.nor)) {
    rig.powerCycle();
    const resume = changes && s.backup ? journalIn(store) : undefined;
    const log2 = s.path === "uart" ? new FrameLog() : null;
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: false },
      log2,
      resume,
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    const final = rig.nor.read(0, size);
    // damage the first run left outside the range (and named) may be beyond repair: then the
    // recovery must say so, which the damage check below holds it to
    const damagedOutside = firstChange(after, pre, 0, addr) >= 0 || firstChange(after, pre, end, size) >= 0;
    if (second.error && !legitimateRefusal(scenario, profile, addr, second.error) && !damagedOutside) {
      violations.push(`recovery without faults failed: ${describe(second.error)}`);
    }
    violations.push(
      // the first run may have damaged flash (and said so): the recovery starts from the chip as it left it
      ...checkRun(
        "recovery",
        scenario,
        rig,
        second,
        after,
        final,
        image,
        addr,
        store,
        changes,
        unverified,
        pre,
      ),
    );
    if (log2) violations.push(...checkFrames(log2, profile, "recovery"));
    if (deferred.length && !resume) undetectable.push(...deferred);
  } else if (deferred.length) {
    undetectable.push(...deferred);
  }
  if (rig.quirks()["sr-lock-part"] && rig.nor.srWord === 0x7bfc && s.protect !== 0x7bfc) {
    violations.push(
      "the status register reads 0x7BFC: an unchanged value was written to the P25Q16HBK, which locks it",
    );
  }
  return {
    outcome: first.error ? codeOf(first.error) : "ok",
    recovery,
    violations,
    unverified,
    undetectable,
    faults: rig.recorder.counts(),
    quirks: rig.quirks(),
    virtualMs: rig.clock.now() - t0,
  };
}

function codeOf(e: unknown): string {
  return e instanceof FlashError ? e.code : e instanceof Error ? e.name : "thrown";
}

function describe(e: unknown): string {
  if (e instanceof FlashError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function checkRun(
  phase: string,
  s: Scenario,
  rig: Rig,
  run: RunOutcome,
  pre: Uint8Array,
  now: Uint8Array,
  image: Uint8Array,
  addr: number,
  store: MemoryStore,
  changes: boolean,
  notes: string[],
  original?: Uint8Array,
): string[] {
  const out: string[] = [];
  const end = addr + image.length;
  const e = run.error;
  if (e === null) {
    if (changes && !equalBytes(now.subarray(addr, end), image)) {
      out.push(`${phase}: ${s.op} reported success but the range differs from the image`);
    }
    if (s.op === "read" && run.data && !equalBytes(run.data, pre.subarray(addr, end))) {
      (s.path === "spi" ? notes : out).push(`${phase}: read returned bytes that differ from the flash`);
    }
    if (s.op === "verify" && !equalBytes(now.subarray(addr, end), image)) {
      out.push(`${phase}: verify passed on differing flash`);
    }
  } else if (!(e instanceof FlashError)) out.push(`${phase}: untyped failure ${describe(e)}`);
  else if (!e.message || !e.remedy) out.push(`${phase}: ${e.code} without cause or remedy`);
  const damage = e instanceof FlashError ? e.damage : undefined;
  // every changed byte must be the image's (inside the range of a write or erase) or be covered
  // by the damage range of the error
  for (let sec = 0; sec < rig.size; sec += SECTOR) {
    if (equalBytes(now.subarray(sec, sec + SECTOR), pre.subarray(sec, sec + SECTOR))) continue;
    for (let a = sec; a < sec + SECTOR; a++) {
      if (now[a] === pre[a]) continue;
      const inRange = a >= addr && a < end;
      if (changes && inRange && now[a] === image[a - addr]) continue;
      if (original && now[a] === original[a]) continue;
      if (e !== null && damage && a >= damage.start && a < damage.end) continue;
      const where = inRange ? "inside" : "outside";
      // a corrupted request whose reply never arrived (lost, or the chip lost power first) leaves no
      // trace a failing job could see before it stops; the resumed job, which compares the rest of
      // the chip with the backup, is held to it instead
      const unseen = !inRange && e !== null && phase === "run" &&
        rig.recorder.any("tx-drop", "tx-flip", "tx-garbage");
      const finding = e === null
        ? `${phase}: ${s.op} succeeded but changed ${hex(a)} (${where} ${hex(addr)}..${
          hex(end)
        }) to neither old nor image`
        : `${phase}: ${codeOf(e)} left ${hex(a)} (${where} ${hex(addr)}..${hex(end)}) changed, ${
          damage
            ? `but its damage range is ${hex(damage.start)}..${hex(damage.end)}`
            : "but names no damage range"
        }`;
      out.push((unseen ? DEFERRED : "") + finding);

      return out.concat(backupChecks(phase, s, store, pre, now, notes, original));
    }
  }
  return out.concat(backupChecks(phase, s, store, pre, now, notes, original));
}

/**
 * Every backup equals the chip before the job (or, after a damaging first run, before the
 * recovery). On SPI, sectors the job leaves as they were are read once by design: a difference
 * there is noted, not a violation (the chip still holds them).
 */
function backupChecks(
  phase: string,
  s: Scenario,
  store: MemoryStore,
  pre: Uint8Array,
  now: Uint8Array,
  notes: string[],
  original?: Uint8Array,
): string[] {
  const out: string[] = [];
  const size = now.length;
  for (const [name, bytes] of store.entries) {
    if (!name.endsWith(".bin") || equalBytes(bytes, pre) || (original && equalBytes(bytes, original))) {
      continue;
    }
    const base = original ?? pre;
    let worst = -1;
    for (let sec = 0; sec < size; sec += SECTOR) {
      const a = sec;
      if (equalBytes(bytes.subarray(a, a + SECTOR), pre.subarray(a, a + SECTOR))) continue;
      if (original && equalBytes(bytes.subarray(a, a + SECTOR), base.subarray(a, a + SECTOR))) continue;
      // the job did not change this sector: the chip still holds it (SPI reads it only once)
      if (s.path === "spi" && equalBytes(now.subarray(a, a + SECTOR), pre.subarray(a, a + SECTOR))) {
        notes.push(`${phase}: SPI backup ${name} differs at untouched sector ${hex(a)}`);
        continue;
      }
      worst = a;
      break;
    }
    if (worst >= 0) {
      out.push(
        `${phase}: backup ${name} differs from the flash before the job at ${
          hex(firstChange(bytes, pre, worst, worst + SECTOR))
        }`,
      );
    }
  }
  return out;
}

function checkFrames(log: FrameLog, profile: ChipProfile, phase: string): string[] {
  const out: string[] = [];
  const erases = new Map<string, number>();
  const writes = new Map<number, number>();
  for (const f of log.frames) {
    if (!f.known) {
      out.push(`${phase}: host sent unknown ${f.kind} command ${f.name}`);
      continue;
    }
    const spec = COMMANDS[f.name as keyof typeof COMMANDS];
    if (!spec.support.includes(profile.personality)) {
      out.push(`${phase}: host sent ${f.name}, which the ${profile.personality} loader lacks`);
    }
    if (f.name === "FlashErase" && f.addr !== undefined) {
      const k = `${f.size}@${f.addr}`;
      erases.set(k, (erases.get(k) ?? 0) + 1);
    }
    if (f.name === "FlashWrite4K" && f.addr !== undefined) writes.set(f.addr, (writes.get(f.addr) ?? 0) + 1);
  }
  for (const [k, n] of erases) {
    if (n > PROGRAM_ATTEMPTS) out.push(`${phase}: erase ${k} sent ${n} times (bound ${PROGRAM_ATTEMPTS})`);
  }
  for (const [a, n] of writes) {
    if (n > PROGRAM_ATTEMPTS) {
      out.push(`${phase}: program ${hex(a)} sent ${n} times (bound ${PROGRAM_ATTEMPTS})`);
    }
  }
  return [...new Set(out)];
}
