/**
 * The fuzz rigs: a virtual chip of any profile behind fault injectors, on the UART path (the
 * boot loader over a faulty link) or the SPI path (a virtual CH341A behind a faulty USB device),
 * opened through the real core, with what the oracle needs to see: every flash change the chip
 * carried out and the request that caused it, every byte the host heard, the frames it sent.
 *
 * They are not the HIL bench's rigs (hil/virtual_bench.ts): those serve fault-free chips to
 * scenarios written against the Bench interface, while these wrap every layer in seeded fault
 * injectors and record per-request changes; both build on the same emulator factories.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { type ChipProfile, CHIPS } from "../../core/chips/profiles.ts";
import { createContext, type FlasherContext, type FlashTarget } from "../../core/flasher/mod.ts";
import { Ch341aSpi } from "../../core/io/ch341a.ts";
import { flashPartFor } from "../../core/spi/jedec.ts";
import { openSpiTarget } from "../../core/spi/target.ts";
import { decodeFields } from "../../core/uart/codec.ts";
import { RequestParser } from "../../core/uart/parser.ts";
import type { SessionEvent } from "../../core/uart/session.ts";
import { commandByKey } from "../../core/uart/table.ts";
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
import { baudsMatch } from "../../emulator/wire.ts";
import { loaderFamilyOf } from "../../core/chips/loaders.ts";
import type { Scenario } from "./scenario.ts";
import { SPI_ENTRY_ATTEMPTS } from "./oracle.ts";

export const SMALL_FLASH = [0x85, 0x60, 0x13] as const;

/** `FUZZ_TRACE=1` logs every command, wire chunk and fault of the UART path to stderr. */
export const trace = (() => {
  try {
    return Deno.env.get("FUZZ_TRACE") === "1";
  } catch {
    return false;
  }
})();

export function hexBytes(b: Uint8Array | null, n: number): string {
  return b ? [...b.subarray(0, n)].map((x) => x.toString(16).padStart(2, "0")).join(" ") : "";
}

/** Virtual time after which a scenario counts as running away. */
export const RUNAWAY_MS = 6 * 3600_000;

/** A recorder of host frames on the UART path, for the conformance and retry checks. */
export class FrameLog {
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
export function requestKey(name: string, payload: Uint8Array): string {
  return `${name}:${payload.length}:${crc32(payload)}`;
}

/** A flash change the chip carried out, with the request that caused it. */
export interface ChipChange {
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

export interface Rig {
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
export function siblingFor(s: Scenario, profile: ChipProfile): ChipProfile | undefined {
  if (!s.wrongSibling || s.path !== "uart" || !profile.key) return undefined;
  const words = profile.key.words;
  return CHIPS.find((c) =>
    c.id !== profile.id && c.uart && c.personality === profile.personality && c.chipId === profile.chipId &&
    c.key !== null && c.key.words.some((w, i) => w !== words[i])
  );
}

export function flashIdOf(s: Scenario): readonly number[] | undefined {
  return s.flash === "small" ? SMALL_FLASH : s.flash === "p25q16hbk" ? [0x85, 0x20, 0x15] : undefined;
}

export function uartRig(s: Scenario, profile: ChipProfile): Rig {
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

export function spiRig(s: Scenario, profile: ChipProfile): Rig {
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
