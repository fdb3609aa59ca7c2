/**
 * Chip-level faults: power lost in the middle of an erase or a page program (leaving the
 * unit partly erased or the page partly programmed, and the chip dark until power returns),
 * a slow CRC engine, and firmware-style re-protection of the flash. {@link createFaultyChip}
 * builds a virtual chip with these wired in, reachable through fresh links (a reopened port)
 * that carry the link faults of the same plan.
 *
 * @module
 */

import { VirtualClock } from "../../core/clock.ts";
import { chipById, type ChipProfile, CHIPS } from "../../core/chips/profiles.ts";
import { FlashError } from "../../core/errors.ts";
import { flashPartFor } from "../../core/spi/jedec.ts";
import { DEFAULT_TIMING, type TimingModel } from "../../core/timing.ts";
import { BekenChip } from "../chip.ts";
import { defaultImage } from "../image.ts";
import type { LoaderFlash } from "../loader.ts";
import type { LoaderFamily } from "../../core/chips/loaders.ts";
import { type EraseKind, NorFlash } from "../nor.ts";
import type { TxChunk, UartDevice } from "../uart_device.ts";
import { efuseFromKey } from "../virtual.ts";
import { VirtualWire } from "../wire.ts";
import { FaultyLink, type FaultyLinkOptions } from "./link.ts";
import { FaultDice, type FaultPlan, FaultRecorder } from "./plan.ts";
import { installCrcLie } from "./crc_lie.ts";

const PAGE = 256;
const UNIT: Record<Exclude<EraseKind, "chip">, number> = { "4k": 4096, "32k": 32768, "64k": 65536 };

/** The slowest CRC engine the host budgets for (bytes/s; client.ts, after bk7231tools). */
export const SLOWEST_CRC_BYTES_PER_SEC = 400_000;

/**
 * The chip's power supply, seen from its UART: while off the chip hears nothing and says
 * nothing, and a reply the chip would have sent after the moment power failed never leaves.
 */
export class PowerRail implements UartDevice {
  /** The chip the faults act on. */
  readonly chip: BekenChip;
  /** Its flash. */
  readonly nor: NorFlash;
  /** The seeded dice deciding each fault. */
  readonly dice: FaultDice;
  /** False between a power cut and {@link powerOn}. */
  powered = true;
  #cutAt: number | null = null;
  #slowCrcLeft = 0;
  readonly #crcSpeed: number;
  /** Called when power fails (after the partial effect is in the flash). */
  onCut?: (at: number) => void;

  /** A power rail for `chip` and `nor`, failing as `dice` decide. */
  constructor(chip: BekenChip, nor: NorFlash, dice: FaultDice) {
    this.chip = chip;
    this.nor = nor;
    this.dice = dice;
    this.#crcSpeed = chip.timing.crcBytesPerSec;
  }

  /** Power fails at `at`: the chip goes dark. */
  cut(at: number): void {
    if (!this.powered) return;
    this.powered = false;
    this.#cutAt = at;
    this.chip.silent = true;
    this.onCut?.(at);
  }

  /** Power returns at `now`: the flash forgets volatile state, the chip boots (boot window open). */
  powerOn(now: number): void {
    this.powered = true;
    this.#cutAt = null;
    this.chip.silent = false;
    this.nor.powerCycle();
    this.chip.reset(now);
  }

  baudAt(t: number): number {
    return this.chip.baudAt(t);
  }

  receive(data: Uint8Array, now: number): TxChunk[] {
    if (!this.powered) return [];
    this.#maybeReprotect(now);
    this.#maybeSlowCrc(now);
    const out = this.chip.receive(data, now);
    if (this.#slowCrcLeft > 0 && --this.#slowCrcLeft === 0) this.chip.timing.crcBytesPerSec = this.#crcSpeed;
    const cutAt = this.#cutAt;
    return cutAt === null ? out : out.filter((c) => c.at < cutAt);
  }

  reset(now: number): void {
    if (this.powered) this.chip.reset(now);
  }

  signals(lines: { dtr: boolean; rts: boolean }, now: number): void {
    if (this.powered) this.chip.signals(lines, now);
  }

  #maybeReprotect(now: number): void {
    const part = this.nor.part;
    if (part.srCount === 0 || !this.dice.roll("reprotect")) return;
    const { bpShift, bpBits } = part.layout;
    const bp = (((1 << bpBits) - 1) << bpShift) & 0xff;
    const before = this.nor.srWord;
    // firmware protects with an ordinary WRSR, so a locked register stays as it is
    this.nor.writeSr(0x01, Uint8Array.of((before & 0xff) | bp), now);
    this.dice.recorder.record(
      "reprotect",
      now,
      `WRSR 0x${((before & 0xff) | bp).toString(16)}: status register 0x${before.toString(16)} → 0x${
        this.nor.srWord.toString(16)
      }`,
    );
  }

  #maybeSlowCrc(now: number): void {
    if (this.#slowCrcLeft > 0 || !this.dice.roll("crc-slow")) return;
    this.#slowCrcLeft = 1 + this.dice.int(8);
    this.chip.timing.crcBytesPerSec = SLOWEST_CRC_BYTES_PER_SEC;
    this.dice.recorder.record(
      "crc-slow",
      now,
      `CRC engine at ${SLOWEST_CRC_BYTES_PER_SEC} B/s for ${this.#slowCrcLeft} request(s)`,
    );
  }
}

/**
 * The flash as the loader sees it, with power-loss faults: an erase or program that draws
 * one stops part-way, leaves partial content, and cuts the chip's power through the
 * {@link PowerRail}. Until power returns every flash-changing call does nothing.
 */
export class FaultyFlash implements LoaderFlash {
  /** The flash underneath. */
  readonly nor: NorFlash;
  /** The seeded dice deciding each fault. */
  readonly dice: FaultDice;
  /** The rail whose failures cut operations short. */
  rail?: PowerRail;
  /**
   * Sees every erase or program the loader carries out (also one cut short by power loss),
   * with the bytes it may have touched, before the loader replies: a harness ties it to the
   * request that caused it.
   */
  onChange?: (change: FlashChange) => void;

  /** A faulty view of `nor`. */
  constructor(nor: NorFlash, dice: FaultDice) {
    this.nor = nor;
    this.dice = dice;
  }

  /** Flash size in bytes. */
  get size(): number {
    return this.nor.size;
  }
  /** JEDEC ID, wire order. */
  get jedecId(): Uint8Array {
    return this.nor.jedecId;
  }
  get part(): NorFlash["part"] {
    return this.nor.part;
  }
  get srWord(): number {
    return this.nor.srWord;
  }
  set srWord(value: number) {
    this.nor.srWord = value;
  }
  #dark(): boolean {
    return this.rail !== undefined && !this.rail.powered;
  }

  /** Read bytes (wrapping at the flash size). */
  read(addr: number, len: number): Uint8Array {
    return this.nor.read(addr, len);
  }
  /** Read a status register by opcode (at `now`, with WIP/WEL). */
  readSr(opcode: number, now?: number): number {
    return this.nor.readSr(opcode, now);
  }
  protectedRange(): { start: number; end: number } {
    return this.nor.protectedRange();
  }

  /** Write status registers by opcode; may fail or re-protect as the dice decide. */
  writeSr(opcode: number, bytes: Uint8Array, now: number): { doneAt: number; accepted: boolean } {
    if (this.#dark()) return { doneAt: now, accepted: false };
    return this.nor.writeSr(opcode, bytes, now);
  }

  /** Erase; power may fail midway and leave the range partly erased. */
  eraseRange(addr: number, kind: EraseKind, now: number): { changed: boolean; doneAt: number } {
    if (this.#dark()) return { changed: false, doneAt: now };
    const len = kind === "chip" ? this.nor.size : UNIT[kind];
    const start = kind === "chip" ? 0 : addr - (addr % len);
    const range = this.nor.protectedRange();
    const blocked = range.end > range.start && start < range.end && start + len > range.start;
    if (!blocked) this.onChange?.({ kind: "erase", start: start % this.nor.size, len, at: now });
    if (blocked || !this.dice.roll("power-loss-erase")) return this.nor.eraseRange(addr, kind, now);
    const progress = this.dice.float();
    const snap = this.nor.snapshot();
    const unit = snap.data.subarray(start, start + len);
    let erased = 0;
    for (let i = 0; i < unit.length; i++) {
      const r = this.dice.float();
      if (r < progress) {
        unit[i] = 0xff;
        erased++;
      } else if (r < progress + 0.1) unit[i] |= this.dice.int(256);
    }
    this.nor.restore(snap);
    const busy = this.nor.timing;
    const full = kind === "4k"
      ? busy.sector4kMs
      : kind === "32k"
      ? busy.block32kMs
      : kind === "64k"
      ? busy.block64kMs
      : busy.chipEraseMs;
    const at = Math.max(now, 0) + progress * full;
    this.dice.recorder.record(
      "power-loss-erase",
      now,
      `power lost ${(progress * 100).toFixed(0)}% into a ${kind} erase at 0x${
        start.toString(16)
      } (${erased} of ${len} bytes blank)`,
    );
    this.rail?.cut(at);
    return { changed: true, doneAt: at };
  }

  /** Program; power may fail midway and leave the page partly programmed. */
  program(addr: number, data: Uint8Array, now: number): { doneAt: number } {
    if (this.#dark()) return { doneAt: now };
    if (data.length > 0) {
      const page = addr - (addr % PAGE);
      const len = Math.min(this.nor.size, Math.ceil((addr % PAGE + data.length) / PAGE) * PAGE);
      this.onChange?.({ kind: "program", start: page % this.nor.size, len, at: now });
    }
    if (data.length === 0 || !this.dice.roll("power-loss-program")) return this.nor.program(addr, data, now);
    const first = addr - (addr % PAGE);
    const span = Math.min(this.nor.size - first, (Math.ceil((addr % PAGE + data.length) / PAGE)) * PAGE);
    const before = this.nor.read(first, span);
    const r = this.nor.program(addr, data, now);
    const after = this.nor.read(first, span);
    const progress = this.dice.float();
    const snap = this.nor.snapshot();
    for (let i = 0; i < span; i++) {
      if (after[i] === before[i] || this.dice.float() < progress) continue;
      snap.data[first + i] = before[i] & (after[i] | this.dice.int(256));
    }
    this.nor.restore(snap);
    const at = now + progress * Math.max(0, r.doneAt - now);
    this.dice.recorder.record(
      "power-loss-program",
      now,
      `power lost ${(progress * 100).toFixed(0)}% into programming ${data.length} bytes at 0x${
        addr.toString(16)
      }`,
    );
    this.rail?.cut(at);
    return { doneAt: at };
  }
}

/** One erase or program carried out on the flash. */
export interface FlashChange {
  /** What the flash did. */
  kind: "erase" | "program";
  /** First byte that may have changed. */
  start: number;
  /** Bytes that may have changed from `start` on (wrapping at the end of the flash). */
  len: number;
  /** Clock time of the operation. */
  at: number;
}

/** Options of {@link createFaultyChip}. */
export interface FaultyChipOptions {
  /** Profile id or alias. */
  chip: string;
  /** Faults to inject (chip-level and, on every link, link-level). */
  plan: FaultPlan;
  /** Shared recorder (default: a new one). */
  recorder?: FaultRecorder;
  /** JEDEC ID of the flash, wire order (default: the profile's). */
  flashId?: readonly number[];
  /** Initial flash content (default: the profile's default image). */
  image?: Uint8Array;
  /** Initial status word. */
  protect?: number;
  /** Level of the flash's WP# pin (default high). */
  wpHigh?: boolean;
  /** Overrides of the timing model. */
  timing?: Partial<TimingModel>;
  /** Changes to the loader family (a smaller ring buffer, say). */
  loader?: Partial<LoaderFamily>;
}

/** A virtual chip with chip-level faults, and a way to open faulty links to it. */
export interface FaultyChip {
  /** The chip's profile. */
  readonly profile: ChipProfile;
  /** The chip. */
  readonly chip: BekenChip;
  /** Its flash. */
  readonly nor: NorFlash;
  /** The faulty view of the flash the loader uses. */
  readonly flash: FaultyFlash;
  /** The power rail. */
  readonly rail: PowerRail;
  /** The clock everything runs on. */
  readonly clock: VirtualClock;
  /** What was injected. */
  readonly recorder: FaultRecorder;
  /** Dice of the chip-level faults (`active = false` pauses them). */
  readonly dice: FaultDice;
  /**
   * Open a new port to the chip (each call is a fresh {@link VirtualWire}, as after closing
   * and reopening a serial port), wrapped in a {@link FaultyLink} of the same plan.
   */
  link(options?: Omit<FaultyLinkOptions, "recorder">): FaultyLink;
}

/**
 * Build a virtual chip whose flash and power can fail.
 *
 * @example
 * ```ts
 * const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 1, rates: { "power-loss-erase": 0.05 } } });
 * const link = v.link();
 * // … after a power cut:
 * v.rail.powerOn(v.clock.now());
 * ```
 */
export function createFaultyChip(opts: FaultyChipOptions): FaultyChip {
  const profile = chipById(opts.chip);
  if (!profile) {
    throw new FlashError(
      "USAGE",
      `unknown chip "${opts.chip}"`,
      `use one of: ${CHIPS.map((c) => c.id).join(", ")}`,
    );
  }
  const recorder = opts.recorder ?? new FaultRecorder();
  const timing = { ...DEFAULT_TIMING, ...opts.timing };
  const part = flashPartFor(opts.flashId ?? profile.defaultFlashId);
  const data = new Uint8Array(part.size).fill(0xff);
  data.set((opts.image ?? defaultImage(profile, part.size)).subarray(0, part.size));
  const nor = new NorFlash({
    part,
    data,
    sr: opts.protect ?? 0,
    wpHigh: opts.wpHigh ?? true,
    timing: {
      pageProgramMs: timing.pageProgramMs,
      sector4kMs: timing.sectorEraseMs,
      block32kMs: timing.block32EraseMs,
      block64kMs: timing.blockEraseMs,
      chipEraseMs: timing.chipEraseMs,
      wrsrMs: timing.srWriteMs,
    },
  });
  const dice = new FaultDice(opts.plan, recorder, 101);
  const flash = new FaultyFlash(nor, dice);
  const efuse = efuseFromKey(profile.key?.words ?? [0, 0, 0, 0], Math.max(profile.efuseSize, 16));
  const chip = new BekenChip({ profile, flash, efuse, timing, loader: opts.loader });
  const rail = new PowerRail(chip, nor, dice);
  installCrcLie(chip, nor, dice);
  flash.rail = rail;
  const clock = new VirtualClock();
  let opened = 0;
  return {
    profile,
    chip,
    nor,
    flash,
    rail,
    clock,
    recorder,
    dice,
    link(options = {}) {
      opened++;
      const wire = new VirtualWire(rail, {
        name: `virtual:${profile.id}`,
        clock,
        timing,
        seed: (opts.plan.seed + opened) >>> 0,
      });
      return new FaultyLink(wire, opts.plan, { salt: opened, ...options, recorder });
    },
  };
}
