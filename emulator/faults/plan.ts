/**
 * What a fault injector may do and what it did: the {@link FaultPlan} (a seed plus a rate per
 * fault kind) and the {@link FaultRecorder} every decorator reports to. Same plan, same
 * seed, same calls → the same faults at the same virtual times.
 *
 * @module
 */

import { Rng } from "../rng.ts";

/** Faults of a byte link (host side of a UART). `rx-` act on received chunks, `tx-` on writes. */
export type LinkFaultKind =
  /** A received byte vanishes. */
  | "rx-drop"
  /** One bit of a received byte flips. */
  | "rx-flip"
  /** A stretch of received bytes arrives twice. */
  | "rx-duplicate"
  /** A burst of random bytes appears in the received stream. */
  | "rx-garbage"
  /**
   * A short reply is held back (adapter buffering) and arrives only after the host has given
   * up on it and sent its next request: a stale reply in front of the new one.
   */
  | "rx-stale"
  /** A received chunk is handed over in several smaller pieces. */
  | "fragment"
  /** A read waits a little before anything arrives (USB latency spike). */
  | "delay"
  /** A read gets nothing for a long time (adapter or driver stall). */
  | "stall"
  /** A written byte is lost on the way to the chip. */
  | "tx-drop"
  /** One bit of a written byte flips on the way to the chip. */
  | "tx-flip"
  /** Random bytes precede a write (line noise, another program on the port). */
  | "tx-garbage"
  /**
   * A flash request is corrupted where it hurts: one bit of the address of an erase or write
   * flips (bits 12..20: another sector), or (for one read in 16 that draws it) the one bit that
   * makes a FlashRead4K (0x09) a FlashErase4K (0x0B). A tx-flip that happens to land there; the
   * protocol has no checksum.
   */
  | "tx-retarget"
  /** The first bytes after a host baud change are garbled. */
  | "baud-glitch"
  /**
   * The adapter cannot do a rate and silently stays where it was (drawn once per rate; the
   * rate the port was opened at always works).
   */
  | "baud-ignored"
  /** The adapter goes away: every later call throws LinkClosedError. */
  | "disconnect";

/** Faults of the CH341A's USB device. */
export type UsbFaultKind =
  /** An IN transfer returns fewer bytes than asked, or an OUT writes fewer. */
  | "usb-short"
  /** A transfer throws (LIBUSB_ERROR_IO). */
  | "usb-fail"
  /** A transfer ends with status "stall". */
  | "usb-stall"
  /** One bit of an IN transfer flips. */
  | "usb-flip";

/** Faults of the chip itself. */
export type ChipFaultKind =
  /** Power is lost in the middle of an erase, leaving the unit partly erased. */
  | "power-loss-erase"
  /** Power is lost in the middle of a page program, leaving the page partly programmed. */
  | "power-loss-program"
  /** The chip's CRC engine runs slower (still within the host's documented budget). */
  | "crc-slow"
  /** Firmware-style re-protection: block-protect bits reappear in the status register. */
  | "reprotect"
  /**
   * A CheckCRC reply over flash that is not all 0xFF arrives carrying the CRC of 0xFF over the
   * same length (as a corrupted or misattributed reply might): at most once per chip.
   */
  | "crc-erased"
  /** The chip does not enter SPI mode on this CEN release. */
  | "spi-entry-refused";

/** Every kind of fault. */
export type FaultKind = LinkFaultKind | UsbFaultKind | ChipFaultKind;

/** All link fault kinds, in documentation order. */
export const LINK_FAULT_KINDS: readonly LinkFaultKind[] = [
  "rx-drop",
  "rx-flip",
  "rx-duplicate",
  "rx-garbage",
  "rx-stale",
  "fragment",
  "delay",
  "stall",
  "tx-drop",
  "tx-flip",
  "tx-garbage",
  "tx-retarget",
  "baud-glitch",
  "baud-ignored",
  "disconnect",
];

/** All USB fault kinds. */
export const USB_FAULT_KINDS: readonly UsbFaultKind[] = ["usb-short", "usb-fail", "usb-stall", "usb-flip"];

/** All chip fault kinds. */
export const CHIP_FAULT_KINDS: readonly ChipFaultKind[] = [
  "power-loss-erase",
  "power-loss-program",
  "crc-slow",
  "reprotect",
  "crc-erased",
  "spi-entry-refused",
];

/**
 * Which faults to inject and how often. A rate is the probability that one opportunity of
 * that kind turns into a fault: per received chunk for `rx-*` (`rx-stale`: per short reply) and `fragment`, per write for
 * `tx-*` (`tx-retarget`: per flash read, erase or write request), per read for `delay` and `stall`, per baud change for `baud-glitch`, per distinct rate for `baud-ignored`, per call for
 * `disconnect`, per transfer for `usb-*`, per erase or program for `power-loss-*`, per
 * request for `crc-slow` and `reprotect`, per CEN release for `spi-entry-refused`.
 *
 * @example
 * ```ts
 * const plan: FaultPlan = { seed: 7, rates: { "rx-flip": 0.02, fragment: 0.5, "power-loss-erase": 0.01 } };
 * ```
 */
export interface FaultPlan {
  /** Seed of every random choice the injectors make. */
  seed: number;
  /** Probability per opportunity, 0..1; absent kinds never fire. */
  rates: Partial<Record<FaultKind, number>>;
  /** Longest `delay`, ms (default 20). */
  delayMs?: number;
  /** Length of a `stall`, ms (default 3000). */
  stallMs?: number;
  /**
   * Share of `tx-retarget` faults whose reply the line also loses (default 0.5): at 1 every
   * corrupted request goes unheard, and only a host's own comparisons can find what it changed.
   */
  retargetUnheard?: number;
  /** Stop injecting after this many faults in total (default: no limit). */
  maxFaults?: number;
  /**
   * Opportunities of a kind to let pass before its rate applies: with rate 1,
   * `skip: { "power-loss-program": 7 }` cuts power in the 8th page program exactly.
   */
  skip?: Partial<Record<FaultKind, number>>;
}

/** One injected fault. */
export interface InjectedFault {
  /** The kind of fault. */
  kind: FaultKind;
  /** Clock time (ms) it was injected at. */
  t: number;
  /** What exactly happened ("flipped bit 3 of byte 17 of 4111"). */
  detail: string;
}

/**
 * Collects what the decorators injected. One recorder may be shared by several injectors
 * so that a scenario reports all of its faults together.
 */
export class FaultRecorder {
  /** Every fault, in order. */
  readonly events: InjectedFault[] = [];
  /** Called for each fault as it is injected. */
  onFault?: (fault: InjectedFault) => void;

  /** Record a fault. */
  record(kind: FaultKind, t: number, detail: string): void {
    const fault = { kind, t, detail };
    this.events.push(fault);
    this.onFault?.(fault);
  }

  /** Number of faults by kind (kinds that never fired are absent). */
  counts(): Partial<Record<FaultKind, number>> {
    const out: Partial<Record<FaultKind, number>> = {};
    for (const e of this.events) out[e.kind] = (out[e.kind] ?? 0) + 1;
    return out;
  }

  /** Whether any fault of these kinds was injected. */
  any(...kinds: FaultKind[]): boolean {
    return this.events.some((e) => kinds.includes(e.kind));
  }
}

/**
 * The random source and bookkeeping shared by the decorators: rolls the dice for a kind,
 * honours the plan's limit, and can be paused (a harness pauses injection while it sets up
 * or recovers).
 */
export class FaultDice {
  /** The plan the dice follow. */
  readonly plan: FaultPlan;
  /** Where injected faults are recorded. */
  readonly recorder: FaultRecorder;
  /** Injection happens only while true. */
  active = true;
  readonly #rng: Rng;
  readonly #seen = new Map<FaultKind, number>();

  /** `salt` separates the streams of several injectors built from one plan. */
  constructor(plan: FaultPlan, recorder: FaultRecorder, salt: number) {
    this.plan = plan;
    this.recorder = recorder;
    this.#rng = new Rng((plan.seed ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }

  /** Whether a fault of `kind` fires at this opportunity. Draws a number either way. */
  roll(kind: FaultKind): boolean {
    const rate = this.plan.rates[kind] ?? 0;
    if (rate <= 0) return false;
    const skip = this.plan.skip?.[kind];
    if (skip !== undefined && this.active) {
      const seen = this.#seen.get(kind) ?? 0;
      this.#seen.set(kind, seen + 1);
      if (seen < skip) return false;
    }
    const hit = this.#rng.float() < rate;
    if (!hit || !this.active) return false;
    const limit = this.plan.maxFaults ?? Infinity;
    return this.recorder.events.length < limit;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return this.#rng.int(n);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.#rng.float();
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    return this.#rng.fill(new Uint8Array(n));
  }
}
