/**
 * One fuzz scenario: a virtual chip (any profile, UART or SPI path), a fault plan, one user
 * operation (write, erase, read, verify) run through the real core, then the invariants
 * checked against the emulator's flash. A failed operation is followed, when the scenario
 * asks for it, by the user's recovery (power back on, port reopened, faults gone, the same
 * command again with the journal's `--resume`), which must end verified.
 *
 * Invariants (each breach is a violation string; every differing range is reported):
 * - success ⇒ the range holds exactly the expected bytes (read: the bytes returned are the flash);
 * - bytes outside the range never change;
 * - a failure is a typed FlashError; every byte that is neither the old nor the expected content
 *   lies inside the error's damage range;
 * - a job with a backup directory that changed the range took a backup first; every backup
 *   equals the flash as it was before its job, and its sidecar carries its CRC;
 * - a job's journal ends "verified" with every planned sector done, or "failed" with only
 *   sectors done that hold the image;
 * - FLASH_LOCKED only when the chip's real status register could not have been cleared;
 * - the host never sends a command outside the loader personality's table;
 * - erases and programs per address stay within the retry bounds;
 * - after opening, the host's real baud equals the chip's, and the rate is the requested one
 *   or 115200 with a fallback notice;
 * - without any injected fault, nothing fails except refusals the scenario calls for;
 * - a UART run whose only faults were a byte or two lost from its requests (and timing) does not
 *   fail either, on loaders that abandon or let the host complete a partial frame;
 * - recovery without faults always ends with the range verified and the rest of the chip as it
 *   was before the first run (compared with the original, not with what the failure left).
 *
 * The one exclusion left is a protocol limit, not a tolerance: the boot protocol has no
 * checksum on requests, so a request corrupted on the wire can make the chip erase or program
 * another address, and when its reply never reaches the host nothing a failing job hears says
 * so. The fault injector records which flash the chip changed for which request
 * (`FaultyFlash.onChange`), so only bytes of such a corrupted request, at its exact address, are
 * deferred to the resumed job; without one (no backup, no recovery) they count as undetectable.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { chipById, type ChipProfile, CHIPS } from "../../core/chips/profiles.ts";
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
import { type FlashPart, flashPartFor, formatJedecId } from "../../core/spi/jedec.ts";
import { needsUnprotect, srBytes, unprotectedValue } from "../../core/spi/status.ts";
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
import { baudWorks } from "../../core/uart/baud.ts";
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
  /** false: never write newer data into the range before a resume (see newerDataSector). */
  newerData?: boolean;
  /** Working baud rate of the UART path. */
  baud: number;
  op: "write" | "erase" | "read" | "verify";
  /** Where the range starts: 0..1000 across the flash above the bootloader. */
  at: number;
  /** Start inside the bootloader window. */
  low: boolean;
  /**
   * With `low`: whether the user passed --overwrite-bootloader (absent = true, as in older
   * fixtures). Without it the job must be refused and the window left alone.
   */
  allowLow?: boolean;
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
  /**
   * UART: ask for the sibling chip mode that shares this chip's ID but expects another eFuse
   * key (BK7231N ↔ BK7231M), as a user with the wrong `--chip` would. Absent in older fixtures.
   */
  wrongSibling?: boolean;
  /**
   * With a backup store and a write or erase: a second job, on a second chip of the same model
   * sharing the store, starts once the first is inside its job (its first look at the store)
   * and runs to its end before the first goes on. It must be refused (the store is held) and
   * leave its chip alone. Absent in older fixtures.
   */
  concurrent?: boolean;
  /**
   * When the failed run is resumed: a byte of its backup is flipped first (a disk or a user
   * changed it). The resume must refuse the backup and write nothing. Absent in older fixtures.
   */
  rotBackup?: boolean;
  /**
   * UART: the recovery meets the same cable: one of its first flash requests arrives for another
   * address (tx-retarget) and the reply is lost, and no other fault. It may then fail too; what it
   * leaves is checked like a first run's, with nothing after it to defer to. Absent in older
   * fixtures.
   */
  noisyRecovery?: boolean;
  /**
   * Write or erase with a backup store: the user interrupts the first run (its signal fires,
   * as Ctrl-C does) once its journal has been saved this many times after the first. Absent in
   * older fixtures: never.
   */
  interrupt?: number;
  plan: FaultPlan;
}

/**
 * A noisy TX line: corrupted requests (half of them with their reply lost) and only harmless
 * faults besides. With every kind at once most jobs die of something else before a corrupted
 * request reaches the erase and write phase, and few survive one whose reply was lost: those
 * are what the rest-of-chip check, the final verify and the backup's own comparison exist for.
 */
export const NOISY_TX: readonly FaultKind[] = ["tx-retarget", "crc-slow", "fragment", "delay"];

/** What running a scenario found. */
export interface ScenarioResult {
  /** "ok" or the error code of the first run. */
  outcome: string;
  /** Outcome of the recovery run, when there was one. */
  recovery?: string;
  /** The recovery resumed the first run's journal. */
  resumed?: boolean;
  violations: string[];
  /**
   * Changes no host could have seen: bytes at the exact address of a request the wire corrupted
   * (recorded by the fault injector), the job failed before it could compare, and no backup of
   * the job existed to compare with (or the job was not resumed). The protocol has no checksum
   * on requests; only a backup helps.
   */
  undetectable: string[];
  /**
   * Runs that stopped short because one CheckCRC reply carried the CRC of 0xFF (`crc-erased`):
   * the reply has no checksum, so no host can tell it from erased flash. Noted, not violations.
   */
  protocolLimits: string[];
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
  /** Every request as the host meant it (name and CRC of its payload), with the time it was written. */
  readonly sends: { key: string; t: number }[] = [];
  /** Status-register writes, with the chip's real status word when the host sent them. */
  readonly srWrites: { t: number; sr: number }[] = [];
  readonly #sr: () => number;
  /** `sr` reads the chip's real status word (white box). */
  constructor(sr: () => number) {
    this.#sr = sr;
  }
  push(data: Uint8Array, t: number): void {
    this.parser.push(data);
    for (let f = this.parser.next(); f; f = this.parser.next()) {
      const spec = commandByKey(f.kind, f.code);
      this.sends.push({ key: requestKey(spec?.name ?? `0x${f.code.toString(16)}`, f.payload), t });
      if (!spec) {
        this.frames.push({ name: `0x${f.code.toString(16)}`, known: false, code: f.code, kind: f.kind });
        continue;
      }
      const v = decodeFields(spec.request, f.payload);
      const entry: FrameLog["frames"][number] = { name: spec.name, known: true, code: f.code, kind: f.kind };
      if (v && typeof v.addr === "number") entry.addr = v.addr;
      if (spec.name === "FlashErase" && v) entry.size = v.sizeCmd === 0xd8 ? 0x10000 : 0x1000;
      if (spec.name === "FlashWriteSR") this.srWrites.push({ t, sr: this.#sr() });
      this.frames.push(entry);
    }
  }
}

/** A request as a comparable key (the chip's and the host's parsers see the same payload). */
function requestKey(name: string, payload: Uint8Array): string {
  return `${name}:${payload.length}:${crc32(payload)}`;
}

/** A flash change the chip carried out, with the request that caused it. */
interface ChipChange {
  request: string;
  /** Which request the chip carried out (changes of one request share it), and when. */
  seq: number;
  at: number;
  name: string;
  start: number;
  len: number;
  /** The reply the chip sent for the request (null: none, e.g. power failed first). */
  reply: Uint8Array | null;
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
  /** Replace the fault plan's rates and limits from now on (UART rigs; its seed and streams stay). */
  replan?(p: Pick<FaultPlan, "rates" | "skip" | "maxFaults" | "retargetUnheard">): void;
  /** Loader quirks that acted, gathered after the runs (UART rigs). */
  quirks(): Record<string, number>;
  /** Flash changes the chip carried out, by request (UART path; empty on SPI). */
  changes: ChipChange[];
  /** Bytes the host's client took in, in order (UART path). */
  heard: Uint8Array[];
  /** Host clock time each chunk of `heard` arrived. */
  heardAt: number[];
  /** The chip mode the host asks for (the chip's own, or its sibling for `wrongSibling`). */
  requested: ChipProfile;
}

/**
 * For `wrongSibling` on the UART path: the chip mode sharing this chip's ID whose expected key
 * differs (BK7231N ↔ BK7231M), or undefined.
 */
function siblingFor(s: Scenario, profile: ChipProfile): ChipProfile | undefined {
  if (!s.wrongSibling || s.path !== "uart" || !profile.key) return undefined;
  const words = profile.key.words;
  return CHIPS.find((c) =>
    c.id !== profile.id && c.uart && c.personality === profile.personality && c.chipId === profile.chipId &&
    c.key !== null && c.key.words.some((w, i) => w !== words[i])
  );
}

/**
 * Whether the key guard of the requested chip mode must refuse this chip, both ways: an
 * enforcing mode (BK7231N) refuses any other key; a warning mode (BK7231M) still refuses a key
 * that is exactly one sibling's expected key (the Tuya key on a BK7231N), since that key says
 * which chip it is (docs/uart.md, the N/M guard).
 */
function keyGuardMustRefuse(rig: Rig): boolean {
  const want = rig.requested.key;
  const have = rig.profile.key?.words;
  if (rig.requested === rig.profile || !want || !have || want.words.every((w, i) => w === have[i])) {
    return false;
  }
  if (want.check === "enforce") return true;
  const owners = CHIPS.filter((c) =>
    c.uart && c.personality === rig.profile.personality && c.chipId === rig.profile.chipId &&
    c.key !== null &&
    c.key.words.every((w, i) => w === have[i])
  );
  return want.check === "warn" && owners.length === 1 && owners[0].id !== rig.requested.id;
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
  // every injector of the chip shares this plan object, so its rates can change between runs
  const plan: FaultPlan = { ...s.plan, rates: { ...s.plan.rates } };
  const v = createFaultyChip({
    chip: profile.id,
    plan,
    flashId: flashIdOf(s),
    protect: s.protect,
    wpHigh: !s.wpLow,
    loader: s.quirks?.ring && loaderFamilyOf(profile).busy.kind === "ring"
      ? { busy: { kind: "ring", size: s.quirks.ring, variants: [s.quirks.ring] } }
      : undefined,
  });
  const changes: ChipChange[] = [];
  const heard: Uint8Array[] = [];
  const heardAt: number[] = [];
  let seq = 0;
  // the loader changes flash while it handles a request and reports the request right after
  let pending: { start: number; len: number }[] = [];
  v.flash.onChange = (c) => void pending.push({ start: c.start, len: c.len });
  v.chip.onCommand = (name, req, rep, at) => {
    if (trace) {
      console.error(`chip ${at.toFixed(1)} ${name} ${hexBytes(req, 9)} -> ${rep ? rep.length : "none"}`);
    }
    const request = requestKey(name, req ?? new Uint8Array(0));
    seq++;
    for (const c of pending) changes.push({ request, seq, at, name, reply: rep ? rep.slice() : null, ...c });
    pending = [];
  };
  if (trace) v.recorder.onFault = (f) => console.error(`fault ${f.t.toFixed(1)} ${f.kind}: ${f.detail}`);
  const fillers: { fillerBytes: number }[] = [];
  const rig: Rig = {
    profile,
    nor: v.nor,
    size: v.nor.size,
    clock: v.clock,
    recorder: v.recorder,
    afterOpen: [],
    replan(p) {
      for (const k of Object.keys(plan.rates)) delete plan.rates[k as FaultKind];
      Object.assign(plan.rates, p.rates);
      plan.skip = p.skip;
      plan.maxFaults = p.maxFaults;
      plan.retargetUnheard = p.retargetUnheard;
    },
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
    changes,
    heard,
    heardAt,
    requested: siblingFor(s, profile) ?? profile,
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
          log?.push(data, t);
        },
      });
      link.dice.active = openFaults;
      v.dice.active = openFaults;
      const events: SessionEvent[] = [];
      let opened;
      try {
        opened = await openUartTarget(link, {
          chip: rig.requested,
          readAhead: s.quirks?.readAhead ? true : undefined,
          baud: s.baud,
          linkTimeoutMs: 5000,
          onEvent: (e) => events.push(e),
          onWire: (w) => {
            if (w.dir === "in") {
              heard.push(w.data.slice());
              heardAt.push(w.t);
            }
            if (trace) {
              console.error(`host ${w.dir} ${w.t.toFixed(1)} ${hexBytes(w.data, 16)} (${w.data.length})`);
            }
          },
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
      // a quarter of UART runs as with --no-sparse (chosen by the plan's seed, so the draw of
      // scenarios stays the same): every byte read and checked by window CRC, the whole-flash
      // CRC around a backup, every changed sector erased
      const sparse = s.plan.seed % 4 !== 3;
      const ctx = await createContext(opened.target, v.clock, { sparse }).catch(async (e) => {
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
    changes: [],
    heard: [],
    heardAt: [],
    requested: profile,
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
        target = await openSpiTarget(spi, { entry: { attempts: SPI_ENTRY_ATTEMPTS } });
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
  /** Read-ahead was turned off during the run but no notice said so. */
  silentReadAheadOff?: boolean;
}

async function runOp(
  rig: Rig,
  s: Scenario,
  store: FuzzStore,
  addr: number,
  image: Uint8Array,
  faults: { open: boolean; run: boolean },
  log: FrameLog | null,
  resume?: { journal: WriteJournal; name: string },
  attempt = 0,
  interrupt?: number,
): Promise<RunOutcome> {
  let opened;
  try {
    opened = await rig.open(faults.open, faults.run, log);
  } catch (e) {
    return { error: e };
  }
  const { target, ctx } = opened;
  if (interrupt !== undefined) {
    const user = new AbortController();
    ctx.signal = user.signal;
    let saves = 0;
    store.onPut = (name) => {
      if (name.endsWith(".journal.json") && saves++ === interrupt) user.abort();
    };
  }
  const notices: string[] = [];
  ctx.onEvent = (e) => {
    if (e.type === "notice") notices.push(e.message);
  };
  const identity = {
    chip: rig.requested.name,
    flashId: formatJedecId(rig.nor.jedecId).replaceAll(" ", ""),
    key: null,
  };
  const common = {
    store: s.backup ? store : undefined,
    noBackup: !s.backup,
    identity,
    createdAt: new Date(CREATED_AT.getTime() + attempt * 3600_000),
    overwriteBootloader: s.low && s.allowLow !== false,
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
    store.onPut = null;
    await target.close().catch(() => {});
  }
  // the README promises that read-ahead turns itself off *saying so*
  out.silentReadAheadOff = ctx.readAhead === false && typeof target.readSectors === "function" &&
    !notices.some((m) => m.startsWith("read-ahead off"));
  return out;
}

/**
 * For one resumable run in three (chosen by the plan's seed, so the draw of scenarios stays the
 * same): a sector inside the range, outside the block the journal says was in flux, and data for
 * it that neither the found content, nor the image, nor programming over either can explain (a
 * set bit where each has a cleared one). Null when the run is not chosen or no sector fits.
 */
function newerDataSector(
  s: Scenario,
  store: MemoryStore,
  pre: Uint8Array,
  after: Uint8Array,
  image: Uint8Array,
  addr: number,
): { sector: number; data: Uint8Array } | null {
  if (s.newerData === false || s.plan.seed % 3 !== 1) return null;
  const j = journalIn(store)?.journal;
  if (!j || j.version < 2 || !j.fingerprint) return null;
  const left = j.planned.filter((p) => !j.done.includes(p));
  const inFlux = left.length ? Math.floor(Math.min(...left) / 0x10000) * 0x10000 : -1;
  for (let sec = addr; sec + SECTOR <= addr + image.length; sec += SECTOR) {
    if (Math.floor(sec / 0x10000) * 0x10000 === inFlux) continue;
    const data = new Uint8Array(SECTOR).fill(0xff);
    let ok = false;
    for (let k = 0; k < SECTOR; k++) {
      const cleared = ~pre[sec + k] & ~image[sec - addr + k] & 0xff;
      if (cleared !== 0) {
        data[k] = 0xff;
        ok = true;
      } else data[k] = 0x00;
    }
    // a set bit where both have a cleared one exists, and the sector is neither blank nor as found
    if (ok && data.some((b) => b !== 0xff) && !equalBytes(data, after.subarray(sec, sec + SECTOR))) {
      return { sector: sec, data };
    }
  }
  return null;
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

/** A byte range `[start, end)`. */
interface Range {
  start: number;
  end: number;
}

const inRanges = (ranges: readonly Range[], a: number) => ranges.some((r) => a >= r.start && a < r.end);

/**
 * Whether `now` differs from `ref` anywhere in [from, to), leaving out bytes in `except` (flash a
 * corrupted request changed, which no job did on purpose).
 */
function differsIn(
  now: Uint8Array,
  ref: Uint8Array,
  from: number,
  to: number,
  except: Range[] = [],
): boolean {
  if (from >= to || equalBytes(now.subarray(from, to), ref.subarray(from, to))) return false;
  for (let a = from; a < to; a++) if (now[a] !== ref[a] && !inRanges(except, a)) return true;
  return false;
}

/**
 * Whether some status write the part accepts would clear its protection, starting from status
 * word `sr` with WP# at the given level: tried on a scratch copy of the emulated flash, so the
 * answer is the chip's, not the host's idea of it.
 */
function canUnprotect(part: FlashPart, sr: number, wpHigh: boolean): boolean {
  if (part.srCount === 0 || !needsUnprotect(part, sr)) return true;
  const probe = new NorFlash({ part, sr, wpHigh });
  const want = () => srBytes(part, unprotectedValue(part, probe.srWord));
  probe.writeSr(0x01, Uint8Array.from(want()), 0);
  for (const [op, reg] of [[0x01, 0], [0x31, 1], [0x11, 2]] as const) {
    if (!needsUnprotect(part, probe.srWord)) break;
    if (reg < part.srCount && part.srWriteOpcodes.includes(op)) {
      probe.writeSr(op, Uint8Array.of(want()[reg]), 0);
    }
  }
  return !needsUnprotect(part, probe.srWord);
}

/** The chip's protection could not be cleared, at the start of the run or as the run left it. */
function chipLocked(s: Scenario, nor: NorFlash): boolean {
  return !canUnprotect(nor.part, s.protect, !s.wpLow) || !canUnprotect(nor.part, nor.srWord, nor.wpHigh);
}

/** Why a failure is nonetheless legitimate for this scenario, or null. Each reason is exact. */
function legitimateRefusal(
  s: Scenario,
  rig: Rig,
  addr: number,
  image: Uint8Array,
  before: Uint8Array,
  e: unknown,
): string | null {
  if (!(e instanceof FlashError)) return null;
  const code = e.code === "WRITE_FAILED" && e.cause instanceof FlashError ? e.cause.code : e.code;
  // the status register really is locked (SRP, WP#, read-only bits): no host can write around it
  if (code === "FLASH_LOCKED" && chipLocked(s, rig.nor)) return "locked status register";
  // the chip carries another eFuse key than the chip mode asked for: refusing is the key guard
  if (code === "WRONG_KEY" && rig.requested !== rig.profile) return "the chip carries another key";
  // a rate the chip's 26 MHz UART divisor cannot make closely enough: refused before linking
  if (code === "USAGE" && s.path === "uart" && !baudWorks(s.baud)) {
    return "the chip cannot make the baud rate";
  }
  // the boot loader itself refuses its own window over the UART (only SPI can write it)
  if (code === "BOOTLOADER_GUARD" && s.path === "uart" && addr < rig.profile.loaderProtectedEnd) {
    return "the loader guards its window";
  }
  // a BK7236-class loader answers nothing there: the client refuses before sending
  const f = loaderFamilyOf(rig.profile).forbidden;
  if (
    code === "BOOTLOADER_GUARD" && s.path === "uart" && f.answer === "silence" &&
    f.ranges.some((r) => addr < r.end)
  ) return "the loader ignores its forbidden range";
  // the user did not pass --overwrite-bootloader: refusing is the tool's own guard
  if (code === "BOOTLOADER_GUARD" && s.low && s.allowLow === false) return "no --overwrite-bootloader";
  // a resume asked to write the first run's collateral back (--restore-outside) refuses where it
  // lies in the bootloader window and --overwrite-bootloader was not given; its error names the
  // sectors (checked like any damage range)
  if (
    code === "BOOTLOADER_GUARD" && !(s.low && s.allowLow !== false) && e.damage !== undefined &&
    e.damage.start < 0x11000
  ) return "the collateral to write back lies in the bootloader window";
  if (
    s.op === "verify" && code === "VERIFY_FAILED" &&
    !equalBytes(before.subarray(addr, addr + image.length), image)
  ) return "the image differs";
  return null;
}

/** Whether `needle` occurs in the concatenation of `chunks`. */
function occursIn(chunks: readonly Uint8Array[], needle: Uint8Array): boolean {
  const hay = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    hay.set(c, o);
    o += c.length;
  }
  outer: for (
    let i = hay.indexOf(needle[0]);
    i >= 0 && i + needle.length <= hay.length;
    i = hay.indexOf(needle[0], i + 1)
  ) {
    for (let k = 1; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

/**
 * Flash a run changed at its exact address for a request the host never sent (corrupted on the
 * wire) and whose reply never reached the host's parser intact (lost, cut off by a power
 * failure, or flushed as stale before the next request), or is identical to the reply of a
 * request the host did send earlier. Any other reply that arrived names the change, and the host
 * must report it: that one is not deferrable.
 */
function corruptedChanges(rig: Rig, logs: (FrameLog | null)[], unheardOnly = true, fromChange = 0): Range[] {
  // the same bytes may also be a request the host sent at another time: in time order, a request
  // the chip carries out is the host's only while the host had sent it more often than the chip
  // has carried it out on the host's behalf so far
  const sends = new Map<string, number[]>();
  for (const log of logs) {
    for (const x of log?.sends ?? []) sends.set(x.key, [...(sends.get(x.key) ?? []), x.t]);
  }
  const honoured = new Map<string, number>();
  const verdict = new Map<number, boolean>();
  const out: Range[] = [];
  for (const [i, c] of rig.changes.entries()) {
    if (!verdict.has(c.seq)) {
      const sent = (sends.get(c.request) ?? []).filter((t) => t <= c.at).length;
      const done = honoured.get(c.request) ?? 0;
      verdict.set(c.seq, done < sent);
      if (done < sent) honoured.set(c.request, done + 1);
    }
    if (verdict.get(c.seq) || i < fromChange) continue;
    // a reply the host heard names the change, unless it is the very reply of a request the host
    // itself sent before (a late duplicate of its own, as far as any host can tell)
    const echoesOwn = (sends.get(c.request) ?? []).some((t) => t <= c.at);
    // nor is a reply byte for byte equal to one the host had already heard before the change (the
    // reply of another request to the same address: a FlashWrite4K reply echoes no data), which
    // no host can tell from a late duplicate of that one
    const before = rig.heard.filter((_, i) => rig.heardAt[i] < c.at);
    const since = rig.heard.filter((_, i) => rig.heardAt[i] >= c.at);
    if (
      unheardOnly && !echoesOwn && c.reply && c.reply.length > 0 && occursIn(since, c.reply) &&
      !occursIn(before, c.reply)
    ) continue;
    const end = c.start + c.len;
    out.push({ start: c.start, end: Math.min(end, rig.size) });
    // a unit that runs past the end of the flash wraps to its start
    if (end > rig.size) out.push({ start: 0, end: end - rig.size });
  }
  return out;
}

/** What one run is checked against. */
interface RunCheck {
  phase: "run" | "recovery";
  run: RunOutcome;
  /** The flash when this run started (what a read must return). */
  before: Uint8Array;
  /** The flash before the first run: what everything outside the job must still hold. */
  original: Uint8Array;
  now: Uint8Array;
  /** Flash changed for corrupted requests whose finding may wait for the resumed job. */
  deferrable: Range[];
  /**
   * Damage the first run named (and, without a backup to restore from, could not undo): a
   * recovery that is not a resume starts from there and is not held to it.
   */
  named: Range[];
  /** Deferred findings of the first run that no resumed job checked: undetectable. */
  unseen: Range[];
  /** Ranges a `crc-erased` reply covered during this run (see {@link crcLies}). */
  lied: Range[];
}

/**
 * The ranges whose CheckCRC reply the `crc-erased` fault replaced by the CRC of 0xFF, from the
 * fault events `events` (emulator/faults/crc_lie.ts names the range in its detail).
 */
function crcLies(events: readonly { kind: string; detail: string }[]): Range[] {
  const out: Range[] = [];
  for (const f of events) {
    if (f.kind !== "crc-erased") continue;
    const m = /CheckCRC 0x([0-9a-f]+)\+0x([0-9a-f]+)/.exec(f.detail);
    if (!m) throw new Error(`crc-erased event without its range: ${f.detail}`);
    const start = parseInt(m[1], 16);
    out.push({ start, end: start + parseInt(m[2], 16) });
  }
  return out;
}

/**
 * Whether every byte of the range that differs from the image lies where a `crc-erased` reply
 * said "all 0xFF" and the image is 0xFF there. A CheckCRC reply carries no checksum of its own
 * (docs: the boot protocol's frames have none), so such a reply is, to any host, proof that the
 * range already holds a blank image: a write or erase that skips it, or a verify that passes,
 * stopped short because of that one reply, a limit of the protocol and not of the tool. Any
 * other differing byte still counts.
 */
function shortByCrcLie(now: Uint8Array, image: Uint8Array, addr: number, lied: readonly Range[]): boolean {
  if (lied.length === 0) return false;
  for (let i = 0; i < image.length; i++) {
    if (now[addr + i] === image[i]) continue;
    if (image[i] !== 0xff || !inRanges(lied, addr + i)) return false;
  }
  return true;
}

/** Findings of one run: violations, and (first run only) findings deferred to the resumed job. */
function checkRun(
  c: RunCheck,
  s: Scenario,
  rig: Rig,
  image: Uint8Array,
  addr: number,
  changes: boolean,
): { violations: string[]; deferred: Range[]; undetectable: Range[]; limits: string[] } {
  const { phase, run, now, original } = c;
  const out: string[] = [];
  const limits: string[] = [];
  const deferred: Range[] = [];
  const undetectable: Range[] = [];
  const end = addr + image.length;
  const e = run.error;
  if (run.silentReadAheadOff) out.push(`${phase}: read-ahead was turned off without a notice`);
  if (e === null) {
    if (changes && !equalBytes(now.subarray(addr, end), image)) {
      const v = `${phase}: ${s.op} reported success but the range differs from the image`;
      if (shortByCrcLie(now, image, addr, c.lied)) {
        limits.push(`${v} (one CheckCRC reply carried the CRC of 0xFF)`);
      } else out.push(v);
    }
    if (s.op === "read" && run.data && !equalBytes(run.data, c.before.subarray(addr, end))) {
      out.push(`${phase}: read returned bytes that differ from the flash`);
    }
    if (s.op === "verify" && !equalBytes(now.subarray(addr, end), image)) {
      const v = `${phase}: verify passed on differing flash`;
      if (shortByCrcLie(now, image, addr, c.lied)) {
        limits.push(`${v} (one CheckCRC reply carried the CRC of 0xFF)`);
      } else out.push(v);
    }
  } else if (!(e instanceof FlashError)) out.push(`${phase}: untyped failure ${describe(e)}`);
  else if (!e.message || !e.remedy) out.push(`${phase}: ${e.code} without cause or remedy`);
  const damage = e instanceof FlashError ? e.damage : undefined;
  // every byte that differs from the original must be the image's (inside the range of a write or
  // erase) or be covered by the damage range of the error; every offending run is reported
  let open: { start: number; end: number; where: string; bytes: number } | null = null;
  const runs: { start: number; end: number; where: string; bytes: number }[] = [];
  for (let sec = 0; sec < rig.size; sec += SECTOR) {
    if (equalBytes(now.subarray(sec, sec + SECTOR), original.subarray(sec, sec + SECTOR))) continue;
    for (let a = sec; a < sec + SECTOR; a++) {
      if (now[a] === original[a]) continue;
      const inRange = a >= addr && a < end;
      if (changes && inRange && now[a] === image[a - addr]) continue;
      if (e !== null && damage && a >= damage.start && a < damage.end) continue;
      if (inRanges(c.named, a)) continue;
      if (e !== null && inRanges(c.deferrable, a)) {
        // a corrupted request changed this very byte and its reply never reached the host, and the
        // failing job stopped before its final comparisons (the rest of the chip with the backup,
        // the range with the image): the next job, which makes both, is held to it instead
        if (!deferred.length || deferred[deferred.length - 1].end !== a) {
          deferred.push({ start: a, end: a + 1 });
        } else deferred[deferred.length - 1].end = a + 1;
        continue;
      }
      if (inRanges(c.unseen, a)) {
        if (!undetectable.length || undetectable[undetectable.length - 1].end !== a) {
          undetectable.push({ start: a, end: a + 1 });
        } else undetectable[undetectable.length - 1].end = a + 1;
        continue;
      }
      const where = inRange ? "inside" : "outside";
      if (open && open.where === where && a - open.end < SECTOR) {
        open.end = a + 1;
        open.bytes++;
      } else {
        open = { start: a, end: a + 1, where, bytes: 1 };
        runs.push(open);
      }
    }
  }
  for (const r of runs) {
    const span = `${hex(r.start)}..${hex(r.end - 1)} (${r.bytes} byte(s), ${r.where} ${hex(addr)}..${
      hex(end)
    })`;
    out.push(
      e === null
        ? `${phase}: ${s.op} succeeded but changed ${span} to neither old nor image`
        : `${phase}: ${codeOf(e)} left ${span} changed, ${
          damage
            ? `but its damage range is ${hex(damage.start)}..${hex(damage.end)}`
            : "but names no damage range"
        }`,
    );
  }
  return { violations: out, deferred, undetectable, limits };
}

/** The backups (full-flash images read before a job) a run of attempt `attempt` saved. */
function backupsOf(store: MemoryStore, attempt: number): string[] {
  const stamp = backupStamp(attempt);
  return [...store.entries.keys()].filter((n) =>
    n.endsWith(".bin") && !n.endsWith(".after.bin") && !n.includes(".overwritten-") && n.includes(`_${stamp}`)
  );
}

/** Copies of sectors saved before a write-back (`*.overwritten-*.bin`) in the store. */
function sectorCopiesOf(store: MemoryStore): string[] {
  return [...store.entries.keys()].filter((n) => n.endsWith(".bin") && n.includes(".overwritten-"));
}

/**
 * The changes of requests the host sent itself (the complement of {@link corruptedChanges}),
 * from `rig.changes[from]` on.
 */
function hostChanges(rig: Rig, logs: (FrameLog | null)[], from: number): ChipChange[] {
  const sends = new Map<string, number[]>();
  for (const log of logs) {
    for (const x of log?.sends ?? []) sends.set(x.key, [...(sends.get(x.key) ?? []), x.t]);
  }
  const honoured = new Map<string, number>();
  const verdict = new Map<number, boolean>();
  const out: ChipChange[] = [];
  for (const [i, c] of rig.changes.entries()) {
    if (!verdict.has(c.seq)) {
      const sent = (sends.get(c.request) ?? []).filter((t) => t <= c.at).length;
      const done = honoured.get(c.request) ?? 0;
      verdict.set(c.seq, done < sent);
      if (done < sent) honoured.set(c.request, done + 1);
    }
    if (verdict.get(c.seq) && i >= from) out.push(c);
  }
  return out;
}

/**
 * Every sector outside the job that the host itself erased or programmed (a write-back from
 * the backup) was saved first in a copy made by this run (`earlier`: the copies there before),
 * and each copy holds what its sectors held then: the flash as the run found it, except bytes
 * a corrupted request changed (which is why they were written back). Its sidecar carries its
 * CRC and its sectors.
 */
function sectorCopyChecks(
  phase: string,
  store: MemoryStore,
  earlier: ReadonlySet<string>,
  written: readonly ChipChange[],
  before: Uint8Array,
  addr: number,
  end: number,
  stray: Range[],
): string[] {
  const out: string[] = [];
  const saved = new Set<number>();
  for (const name of sectorCopiesOf(store).filter((n) => !earlier.has(n))) {
    const bytes = store.entries.get(name)!;
    const side = store.entries.get(name.replace(/\.bin$/, ".json"));
    const sidecar = side
      ? JSON.parse(new TextDecoder().decode(side)) as { kind?: string; crc32?: string; sectors?: number[] }
      : null;
    const crc = (crc32(bytes) >>> 0).toString(16).padStart(8, "0");
    if (sidecar?.kind !== "sectors" || sidecar.crc32 !== crc || !Array.isArray(sidecar.sectors)) {
      out.push(`${phase}: sector copy ${name} has no sidecar with its CRC ${crc} and sectors`);
      continue;
    }
    if (sidecar.sectors.length * SECTOR !== bytes.length) {
      out.push(
        `${phase}: sector copy ${name} holds ${bytes.length} bytes for ${sidecar.sectors.length} sectors`,
      );
    }
    for (const [i, sec] of sidecar.sectors.entries()) {
      saved.add(sec);
      const copy = bytes.subarray(i * SECTOR, (i + 1) * SECTOR);
      for (let k = 0; k < SECTOR; k++) {
        if (copy[k] !== before[sec + k] && !inRanges(stray, sec + k)) {
          out.push(`${phase}: sector copy ${name} holds at ${hex(sec + k)} what the flash never held`);
          break;
        }
      }
    }
  }
  const unsaved = new Set<number>();
  for (const c of written) {
    for (let a = c.start - (c.start % SECTOR); a < c.start + c.len; a += SECTOR) {
      if ((a < addr || a >= end) && !saved.has(a)) unsaved.add(a);
    }
  }
  if (unsaved.size) {
    out.push(
      `${phase}: ${[...unsaved].map(hex).join(", ")} outside the job written back without a saved copy`,
    );
  }
  return out;
}

function backupStamp(attempt: number): string {
  return new Date(CREATED_AT.getTime() + attempt * 3600_000).toISOString().replace(/\.\d+Z$/, "Z")
    .replace(/[-:]/g, "");
}

/**
 * A job that changed its range with a backup directory took a backup first; every backup a run
 * saved equals the flash as that run found it, and its sidecar carries its CRC.
 */
function backupChecks(
  phase: string,
  s: Scenario,
  store: MemoryStore,
  attempt: number,
  before: Uint8Array,
  now: Uint8Array,
  addr: number,
  end: number,
  changes: boolean,
  resumed: boolean,
  corrupted: Range[],
): string[] {
  const out: string[] = [];
  const names = backupsOf(store, attempt);
  // an earlier backup the chip still matched may stand in for a new one (it is reused only then)
  const standIn = () => backupsOf(store, attempt - 1).some((n) => equalBytes(store.entries.get(n)!, before));
  if (
    s.backup && changes && !resumed && names.length === 0 && differsIn(now, before, addr, end, corrupted) &&
    !(attempt > 0 && standIn())
  ) {
    out.push(`${phase}: the ${s.op} changed ${hex(addr)}..${hex(end)} without a backup`);
  }
  for (const name of names) {
    const bytes = store.entries.get(name)!;
    const bad: string[] = [];
    for (let a = 0; a < before.length && bad.length < 8; a += SECTOR) {
      if (differsIn(bytes, before, a, a + SECTOR)) bad.push(hex(a));
    }
    if (bad.length) {
      out.push(`${phase}: backup ${name} differs from the flash before the job at ${bad.join(", ")}`);
    }
    const side = store.entries.get(name.replace(/\.bin$/, ".json"));
    const sidecar = side ? JSON.parse(new TextDecoder().decode(side)) as { crc32?: string } : null;
    const crc = (crc32(bytes) >>> 0).toString(16).padStart(8, "0");
    if (sidecar?.crc32 !== crc) out.push(`${phase}: backup ${name} has no sidecar with its CRC ${crc}`);
  }
  return out;
}

/**
 * The journal of a job ends "verified" with every planned sector done after a success, and
 * "failed" with only sectors done that hold the image after a failure (except bytes the error
 * names as damage or a corrupted request changed).
 */
function journalChecks(
  phase: string,
  s: Scenario,
  store: MemoryStore,
  journalName: string | null,
  run: RunOutcome,
  before: Uint8Array,
  now: Uint8Array,
  image: Uint8Array,
  addr: number,
  excused: Range[],
): string[] {
  const end = addr + image.length;
  if (!s.backup || (s.op !== "write" && s.op !== "erase")) return [];
  const bytes = journalName ? store.entries.get(journalName) : undefined;
  if (!bytes) {
    // flash in the range changed: the job got past its first erase, which the journal precedes
    return differsIn(now, before, addr, end, excused)
      ? [`${phase}: the ${s.op} changed its range without a journal`]
      : [];
  }
  const j = parseJournal(new TextDecoder().decode(bytes));
  const out: string[] = [];
  if (run.error === null) {
    if (j.state !== "verified") out.push(`${phase}: the job succeeded but its journal says "${j.state}"`);
    const missing = j.planned.filter((p) => !j.done.includes(p));
    if (missing.length) out.push(`${phase}: the journal never marked ${missing.map(hex).join(", ")} done`);
  } else {
    if (j.state !== "failed") out.push(`${phase}: the job failed but its journal says "${j.state}"`);
    // a sector is marked done only once verified: after that only a corrupted request can change it
    for (const d of j.done) {
      if (d < addr || d >= end) {
        out.push(`${phase}: the journal marks ${hex(d)}, outside the job, done`);
        continue;
      }
      for (let a = d; a < d + SECTOR; a++) {
        if (now[a] === image[a - addr] || inRanges(excused, a)) continue;
        out.push(`${phase}: the journal marks ${hex(d)} done but ${hex(a)} does not hold the image`);
        break;
      }
    }
  }
  return out;
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
  const undetectable: string[] = [];
  const log = s.path === "uart" ? new FrameLog(() => rig.nor.srWord) : null;
  const changes = s.op === "write" || s.op === "erase";
  let rival: { rig: Rig; pre: Uint8Array; out: RunOutcome } | null = null;
  const store = new FuzzStore();
  if (s.concurrent && changes && s.backup) {
    store.gate = async () => {
      // the first job is inside its job (it looks at the store to name its backup): a second
      // chip of the same model, other content, no faults, the same job on the same store
      const s2: Scenario = {
        ...scenario,
        plan: { seed: s.plan.seed ^ 0x2545, rates: {} },
        faultsDuringOpen: false,
        protect: 0,
        wpLow: false,
        wrongSibling: false,
        concurrent: false,
      };
      const rig2 = s.path === "spi" ? spiRig(s2, profile) : uartRig(s2, profile);
      const snap = rig2.nor.snapshot();
      new Rng(s.contentSeed ^ 0x9e37).fill(snap.data.subarray(size - SECTOR, size));
      rig2.nor.restore(snap);
      const pre2 = rig2.nor.read(0, rig2.size);
      const out = await runOp(rig2, s2, store, addr, image, { open: false, run: false }, null);
      rival = { rig: rig2, pre: pre2, out };
    };
  }
  const journalOf = (attempt: number) =>
    [...store.entries.keys()].find((n) =>
      n.endsWith(".journal.json") && n.includes(`_${backupStamp(attempt)}`)
    ) ??
      null;

  const first = await runOp(
    rig,
    scenario,
    store,
    addr,
    image,
    { open: s.faultsDuringOpen, run: true },
    log,
    undefined,
    0,
    changes && s.backup ? s.interrupt : undefined,
  );
  // the user stopped the job: a failure no fault has to explain, and one to resume from
  const interrupted = s.interrupt !== undefined && first.error instanceof FlashError &&
    (first.error.code === "CANCELLED" ||
      (first.error.cause instanceof FlashError && first.error.cause.code === "CANCELLED"));
  const changesAfterFirst = rig.changes.length;
  const copiesAfterFirst = new Set(sectorCopiesOf(store));
  const faultCount = rig.recorder.events.length;
  violations.push(...rig.afterOpen.map((v) => `open: ${v}`));
  const after = rig.nor.read(0, size);
  if (rival !== null) violations.push(...rivalChecks(rival));
  if (!baudWorks(s.baud) && s.path === "uart" && codeOf(first.error) !== "USAGE") {
    violations.push(
      `run: --baud ${s.baud}, which the chip's UART cannot make, ${
        first.error ? `failed with ${describe(first.error)}` : "went ahead"
      } instead of being refused`,
    );
  }
  const corrupted = corruptedChanges(rig, [log]);
  // flash changed for any corrupted request, heard or not: no job changed it on purpose
  const stray = corruptedChanges(rig, [log], false);
  const firstRun = checkRun(
    {
      phase: "run",
      run: first,
      before: pre,
      original: pre,
      now: after,
      deferrable: corrupted,
      named: [],
      unseen: [],
      lied: crcLies(rig.recorder.events),
    },
    scenario,
    rig,
    image,
    addr,
    changes,
  );
  violations.push(...firstRun.violations);
  const protocolLimits = [...firstRun.limits];
  violations.push(
    ...backupChecks("run", scenario, store, 0, pre, after, addr, end, changes, false, stray),
  );
  violations.push(
    ...journalChecks("run", scenario, store, journalOf(0), first, pre, after, image, addr, stray),
  );
  violations.push(
    ...sectorCopyChecks("run", store, new Set(), hostChanges(rig, [log], 0), pre, addr, end, stray),
  );
  if (log) violations.push(...checkFrames(log, profile, "run"), ...srWriteChecks(log, rig, "run"));
  if (keyGuardMustRefuse(rig) && (first.error === null || differsIn(after, pre, addr, end))) {
    violations.push(
      `run: the ${rig.requested.name} key guard let a ${profile.name} (another eFuse key) through`,
    );
  }
  violations.push(...spiEntryChecks(s, rig, first));
  if (
    s.low && s.allowLow === false && changes &&
    (first.error === null || differsIn(after, pre, 0, Math.min(end, 0x11000)))
  ) {
    violations.push(
      `run: the bootloader guard let a ${s.op} into ${hex(addr)}.. through without --overwrite-bootloader`,
    );
  }

  let recovery: string | undefined;
  let resumed: boolean | undefined;
  const refusal = first.error ? legitimateRefusal(scenario, rig, addr, image, pre, first.error) : null;
  // a status register no status write can clear (SRP, WP# low, read-only bits) makes the flash
  // refuse erases and programs whatever the host does: a failure is then the chip's answer
  const locked = chipLocked(s, rig.nor);
  if (first.error && faultCount === 0 && !refusal && !locked && !interrupted) {
    violations.push(`failed with no fault injected: ${describe(first.error)}`);
  }
  if (first.error && !refusal && !locked && fewTruncatedRequests(s, rig, faultCount)) {
    violations.push(`failed when only a byte or two of its requests were lost: ${describe(first.error)}`);
  }
  const deferred = firstRun.deferred;
  const newer = first.error && s.recover && !refusal && !locked && changes && s.backup && s.path === "uart"
    ? newerDataSector(s, store, pre, after, image, addr)
    : null;
  const rotten = first.error && s.rotBackup && s.recover && !refusal && !locked && changes && s.backup &&
      newer === null
    ? journalIn(store)
    : undefined;
  if (rotten?.journal.backup) {
    // a byte of the interrupted job's backup changes before the resume (disk, or a user): the
    // resume must refuse that backup before it uses a byte of it, and write nothing
    rig.powerCycle();
    const kept = store.entries.get(rotten.journal.backup);
    if (!kept) throw new Error(`the journal names a backup ${rotten.journal.backup} the store lacks`);
    const at = new Rng(s.plan.seed ^ 0x70f).int(kept.length);
    kept[at] ^= 0x5a;
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: false },
      null,
      rotten,
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    if (codeOf(second.error) !== "BACKUP_FAILED") {
      violations.push(
        `recovery: a resume whose backup changed at ${hex(at)} ${
          second.error ? `failed with ${describe(second.error)}` : "went ahead"
        } instead of refusing the backup`,
      );
    } else if (!equalBytes(rig.nor.read(0, size), after)) {
      violations.push("recovery: a resume that refused its backup changed the flash");
    }
    undetectable.push(...deferred.map((r) => `run: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`));
  } else if (newer !== null) {
    // one run in three of those that could resume instead finds the range rewritten since the
    // failure (newer data, as another tool would leave it): the resume must refuse (WRONG_CHIP)
    // and write nothing
    rig.powerCycle();
    const snap = rig.nor.snapshot();
    snap.data.set(newer.data, newer.sector);
    rig.nor.restore(snap);
    const tampered = rig.nor.read(0, size);
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: false },
      null,
      journalIn(store),
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    if (codeOf(second.error) !== "WRONG_CHIP") {
      violations.push(
        `recovery: a resume over newer data at ${hex(newer.sector)} ${
          second.error ? `failed with ${describe(second.error)}` : "went ahead"
        } instead of refusing the chip`,
      );
    } else if (!equalBytes(rig.nor.read(0, size), tampered)) {
      violations.push("recovery: a resume that refused the chip changed its flash");
    }
  } else if (first.error && s.recover && !refusal && !locked) {
    rig.powerCycle();
    const resume = changes && s.backup ? journalIn(store) : undefined;
    const log2 = s.path === "uart" ? new FrameLog(() => rig.nor.srWord) : null;
    const noisy = s.noisyRecovery === true && rig.replan !== undefined;
    if (noisy) {
      // one corrupted request, early in the recovery and unheard: what it changes only the job's
      // own comparisons (the range with the image, the rest of the chip with the backup) can find
      rig.replan!({
        rates: { "tx-retarget": 1 },
        skip: { "tx-retarget": new Rng(s.plan.seed ^ 0x51).int(12) },
        maxFaults: rig.recorder.events.length + 1,
        retargetUnheard: 1,
      });
    }
    const faultsBefore = rig.recorder.events.length;
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: noisy },
      log2,
      resume,
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    resumed = resume !== undefined;
    const final = rig.nor.read(0, size);
    const noisyFaults = rig.recorder.events.length > faultsBefore;
    // what corrupted requests of a noisy recovery changed: unseen ones may be left by a failing
    // recovery (nothing comes after it to find them: undetectable); any, for the store checks
    const recDeferrable = noisy ? corruptedChanges(rig, [log, log2], true, changesAfterFirst) : [];
    const recStray = noisy ? corruptedChanges(rig, [log, log2], false, changesAfterFirst) : [];
    const firstDamage = first.error instanceof FlashError ? first.error.damage : undefined;
    // the loader refuses to erase or program its own window over the UART: damage the first run
    // left there outside the job can only be written back over SPI, and the resume must say so
    const loaderWindowDamaged = s.path === "uart" &&
      differsIn(after, pre, 0, Math.min(addr, profile.loaderProtectedEnd));
    if (
      second.error && !legitimateRefusal(scenario, rig, addr, image, after, second.error) &&
      !(loaderWindowDamaged && resume) && !noisyFaults
    ) {
      violations.push(`recovery without faults failed: ${describe(second.error)}`);
    }
    const rec = checkRun(
      {
        phase: "recovery",
        run: second,
        before: after,
        original: pre,
        now: final,
        deferrable: recDeferrable,
        // without a resume there is no backup from before the first run to restore from: what
        // the first run named as damage (its error told the user the range and the backup) and
        // what no host could see stays as the first run left it
        named: !resume && firstDamage ? [{ start: firstDamage.start, end: firstDamage.end }] : [],
        unseen: resume ? [] : deferred,
        lied: crcLies(rig.recorder.events.slice(faultCount)),
      },
      scenario,
      rig,
      image,
      addr,
      changes,
    );
    violations.push(...rec.violations);
    protocolLimits.push(...rec.limits);
    if (keyGuardMustRefuse(rig) && (second.error === null || differsIn(final, after, addr, end))) {
      violations.push(
        `recovery: the ${rig.requested.name} key guard let a ${profile.name} (another eFuse key) through`,
      );
    }
    undetectable.push(
      ...rec.undetectable.map((r) => `run: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`),
      ...rec.deferred.map((r) => `recovery: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`),
    );
    violations.push(
      ...backupChecks(
        "recovery",
        scenario,
        store,
        1,
        after,
        final,
        addr,
        end,
        changes,
        resume !== undefined,
        recStray,
      ),
    );
    violations.push(
      ...journalChecks(
        "recovery",
        scenario,
        store,
        resume?.name ?? journalOf(1),
        second,
        after,
        final,
        image,
        addr,
        // a resumed journal still carries the first run's done sectors: a corrupted request of
        // the first run may have changed one after it was marked, and a resume refused before
        // its compare left it so
        resume ? [...stray, ...recStray] : recStray,
      ),
    );
    violations.push(
      ...sectorCopyChecks(
        "recovery",
        store,
        copiesAfterFirst,
        hostChanges(rig, [log, log2], changesAfterFirst),
        after,
        addr,
        end,
        [...stray, ...recStray],
      ),
    );
    if (log2) {
      violations.push(...checkFrames(log2, profile, "recovery"), ...srWriteChecks(log2, rig, "recovery"));
    }
  } else {
    undetectable.push(...deferred.map((r) => `run: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`));
  }
  if (rig.quirks()["sr-lock-part"] && rig.nor.srWord === 0x7bfc && s.protect !== 0x7bfc) {
    violations.push(
      "the status register reads 0x7BFC: an unchanged value was written to the P25Q16HBK, which locks it",
    );
  }
  return {
    outcome: first.error ? codeOf(first.error) : "ok",
    recovery,
    resumed,
    violations,
    undetectable,
    protocolLimits,
    faults: rig.recorder.counts(),
    quirks: rig.quirks(),
    virtualMs: rig.clock.now() - t0,
  };
}

/**
 * The scenario's backup store: a {@link MemoryStore} that can run `gate` to its end before its
 * first `list` (a job naming its backup: it is inside its job by then), and tells `onPut` of
 * every entry saved.
 */
class FuzzStore extends MemoryStore {
  gate: (() => Promise<void>) | null = null;
  onPut: ((name: string) => void) | null = null;
  override put(name: string, data: Uint8Array): Promise<string> {
    this.onPut?.(name);
    return super.put(name, data);
  }
  override async list() {
    const gate = this.gate;
    this.gate = null;
    if (gate) await gate();
    return await super.list();
  }
}

/**
 * The second job of a `concurrent` scenario ran while the first held the store: it must have
 * been refused as "in use" and left its chip as it was. Had it gone ahead, both jobs would pick
 * the same backup name and journal in the same second and one would overwrite the other's.
 */
function rivalChecks(rival: { rig: Rig; pre: Uint8Array; out: RunOutcome }): string[] {
  const out: string[] = [];
  const e = rival.out.error;
  if (!(e instanceof FlashError && e.code === "PORT" && /in use by another/.test(e.message))) {
    out.push(
      `run: a second job on the same backup store, started while the first held it, ${
        e ? `failed with ${describe(e)}` : "went ahead"
      } instead of being refused`,
    );
  }
  if (!equalBytes(rival.rig.nor.read(0, rival.rig.size), rival.pre)) {
    out.push("run: the second job on the same backup store changed its chip's flash");
  }
  return out;
}

function codeOf(e: unknown): string {
  return e instanceof FlashError ? e.code : e instanceof Error ? e.name : "thrown";
}

function describe(e: unknown): string {
  if (e instanceof FlashError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Fault kinds that can change a byte the host hears (and so its idea of the status register). */
const CORRUPTING: readonly FaultKind[] = [
  "rx-drop",
  "rx-flip",
  "rx-duplicate",
  "rx-garbage",
  "rx-stale",
  "baud-glitch",
  "baud-ignored",
  "tx-drop",
  "tx-flip",
  "tx-garbage",
  "tx-retarget",
];

/**
 * No status-register write when nothing needs clearing (each write wears the register and risks
 * a lock-up on power loss): a host may only be misled by a corrupted byte before it wrote.
 */
function srWriteChecks(log: FrameLog, rig: Rig, phase: string): string[] {
  const out: string[] = [];
  for (const w of log.srWrites) {
    if (needsUnprotect(rig.nor.part, w.sr)) continue;
    if (rig.recorder.events.some((e) => e.t <= w.t && CORRUPTING.includes(e.kind))) continue;
    out.push(
      `${phase}: wrote the status register at ${w.t.toFixed(1)} ms with nothing to clear (SR ${hex(w.sr)})`,
    );
  }
  return out;
}

/** Faults that only slow the line down or cut what the host reads into pieces. */
const TIMING_ONLY: readonly FaultKind[] = ["fragment", "delay"];

/**
 * Whether the first run's only faults were one or two dropped TX bytes (truncated requests) and
 * timing, on a loader that gets rid of a partial frame: one with a frame timeout abandons it,
 * and the T/U loader, which refuses its low window, has it completed by the client's filler
 * without harm. Each costs a retry, and every request gets three attempts at least: such a run
 * must succeed. The BootROM loader does neither and refuses no address, so a frame it was left
 * eating may complete as any request: not promised there.
 */
function fewTruncatedRequests(s: Scenario, rig: Rig, faultCount: number): boolean {
  if (s.path !== "uart" || s.faultsDuringOpen) return false;
  const events = rig.recorder.events.slice(0, faultCount);
  const drops = events.filter((e) => e.kind === "tx-drop").length;
  if (drops < 1 || drops > 2) return false;
  if (events.some((e) => e.kind !== "tx-drop" && !TIMING_ONLY.includes(e.kind))) return false;
  const f = loaderFamilyOf(rig.profile);
  return f.frameTimeoutMs !== null ||
    (f.forbidden.answer === "status6" && f.forbidden.ranges.some((r) => r.start === 0));
}

/** Attempts the scenario allows SPI-mode entry (see `spiRig`). */
const SPI_ENTRY_ATTEMPTS = 10;

/**
 * SPI-mode entry gives up only after its attempts: every failed attempt needs a refusal or a
 * corrupted USB transfer to explain it.
 */
function spiEntryChecks(s: Scenario, rig: Rig, run: RunOutcome): string[] {
  if (s.path !== "spi" || !(run.error instanceof FlashError) || run.error.code !== "SPI_ENTRY") return [];
  const excuses =
    rig.recorder.events.filter((e) =>
      e.kind === "spi-entry-refused" || e.kind === "usb-flip" || e.kind === "usb-short"
    ).length;
  return excuses >= SPI_ENTRY_ATTEMPTS
    ? []
    : [`run: SPI-mode entry gave up after ${excuses} refusal(s) with ${SPI_ENTRY_ATTEMPTS} attempts allowed`];
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
