/**
 * Pure status-register logic: field decode per part layout, the protected range (flashrom's
 * `decode_range_spi25` rule, docs/spi-ch341.md C.4), the unprotected value, and lock diagnosis.
 * Status registers are handled as one word `SR1 | SR2 << 8 | SR3 << 16`.
 *
 * @example
 * ```ts
 * import { lookupFlash } from "./jedec.ts";
 * const part = lookupFlash([0xeb, 0x60, 0x15])!;
 * protectedRange(part, 0x4004); // { start: 0, end: 0x1f0000 }
 * unprotectedValue(part, 0x4204); // 0x0200 (QE kept)
 * ```
 *
 * @module
 */

import { hex } from "../hex.ts";
import type { FlashPart, SrLayout } from "./jedec.ts";

/** Decoded fields. Absent fields read as 0/false. */
export interface StatusFields {
  /** Write in progress. */
  wip: boolean;
  /** Write-enable latch. */
  wel: boolean;
  /** Block-protect bits as an integer (BP0 = LSB). */
  bp: number;
  /** Top/bottom: the protected range starts at the bottom when set. */
  tb: boolean;
  /** Sector granularity (4 KiB) instead of blocks. */
  sec: boolean;
  /** Complement: the range outside the BP range is protected. */
  cmp: boolean;
  /** Status register protect 0. */
  srp0: boolean;
  /** Status register protect 1 (lock). */
  srp1: boolean;
  /** Quad enable. */
  qe: boolean;
}

/** A byte range `[start, end)`; empty when `start === end`. */
export interface ByteRange {
  /** First byte. */
  start: number;
  /** End, exclusive. */
  end: number;
}

function bit(sr: number, index: number | null): boolean {
  return index !== null && ((sr >>> index) & 1) === 1;
}

function mask(index: number | null): number {
  return index === null ? 0 : 1 << index;
}

/** Decode a status word per the part's layout. */
export function decodeStatus(part: FlashPart, sr: number): StatusFields {
  const l = part.layout;
  return {
    wip: (sr & 1) === 1,
    wel: (sr & 2) === 2,
    bp: (sr >>> l.bpShift) & ((1 << l.bpBits) - 1),
    tb: bit(sr, l.tbBit),
    sec: bit(sr, l.secBit),
    cmp: bit(sr, l.cmpBit),
    srp0: bit(sr, l.srp0Bit),
    srp1: bit(sr, l.srp1Bit),
    qe: bit(sr, l.qeBit),
  };
}

/** Bits of the protection field in the layout: BP, TB, SEC, CMP. */
export function layoutProtectBits(layout: SrLayout): number {
  return (((1 << layout.bpBits) - 1) << layout.bpShift) | mask(layout.tbBit) | mask(layout.secBit) |
    mask(layout.cmpBit);
}

/**
 * Bits an unprotect clears: the layout's protection field plus the part's Beken protect mask,
 * minus QE, read-only and sticky bits.
 */
export function protectClearMask(part: FlashPart): number {
  const l = part.layout;
  const keep = mask(l.qeBit) | l.readOnlyMask | l.stickyMask;
  const width = part.srCount === 0 ? 0 : 2 ** (8 * part.srCount) - 1;
  return ((layoutProtectBits(l) | part.protectMask) & ~keep & width) >>> 0;
}

/**
 * The protected byte range of a `flashSize`-byte array, decoded like flashrom:
 * BP = 0 → nothing, BP = all ones → everything, else `2^(BP-1)` units of 4 KiB (SEC = 1,
 * at most 32 KiB) or of `max(64 KiB, size / 2 / 2^(bpMax-2))`; TB = 0 → at the top; CMP
 * complements the range. Empty ranges start at 0.
 *
 * @example
 * ```ts
 * import { lookupFlash } from "./jedec.ts";
 * const part = lookupFlash([0xeb, 0x60, 0x15])!;
 * // 2 MiB, SR1 = 0x04: the top 64 KiB
 * protectedRange(part, 0x04); // { start: 0x1f0000, end: 0x200000 }
 * ```
 */
export function protectedRange(part: FlashPart, sr: number, flashSize = part.size): ByteRange {
  const l = part.layout;
  const f = decodeStatus(part, sr);
  const bpMax = (1 << l.bpBits) - 1;
  let len: number;
  if (l.bpBits === 0 || f.bp === 0) len = 0;
  else if (f.bp === bpMax) len = flashSize;
  else {
    const coeff = 2 ** (f.bp - 1);
    if (f.sec) len = Math.min(4096 * coeff, 32768);
    else {
      const block = Math.max(65536, flashSize / 2 / 2 ** Math.max(0, bpMax - 2));
      len = block * coeff;
    }
    len = Math.min(len, flashSize);
  }
  let top = l.tbBit === null ? true : !f.tb;
  if (f.cmp) {
    len = flashSize - len;
    top = !top;
  }
  const start = top && len > 0 ? flashSize - len : 0;
  return { start, end: start + len };
}

/** Whether `[addr, addr + len)` intersects the range. */
export function intersects(range: ByteRange, addr: number, len: number): boolean {
  return len > 0 && range.end > range.start && addr < range.end && addr + len > range.start;
}

/**
 * The status word with BP/TB/SEC/CMP (and the rest of the part's protect mask) cleared; QE,
 * SRP and every other bit preserved.
 */
export function unprotectedValue(part: FlashPart, sr: number): number {
  return (sr & ~protectClearMask(part)) >>> 0;
}

/** Whether any protection bit is set (even CMP alone, which protects the whole array). */
export function needsUnprotect(part: FlashPart, sr: number): boolean {
  return (sr & protectClearMask(part)) !== 0;
}

/** How the SRP bits lock the status registers (flashrom's `get_wp_mode`). */
export type LockMode = "none" | "hardware" | "power-cycle" | "permanent";

/** Whether the status registers can be rewritten, and why not. */
export interface LockDiagnosis {
  /** How the register is locked. */
  mode: LockMode;
  /** True when a status write will certainly be ignored. */
  locked: boolean;
  /** One line for the user; empty when nothing stands in the way. */
  reason: string;
}

/**
 * Diagnose a status-register lock. `wp` is the WP# pin level when the host knows it
 * ("unknown" over Beken SPI mode, where WP# is inside the package).
 *
 * @example
 * ```ts
 * import { lookupFlash } from "./jedec.ts";
 * const part = lookupFlash([0xeb, 0x60, 0x15])!;
 * diagnoseLock(part, 0x0100).mode; // "power-cycle"
 * diagnoseLock(part, 0x0080, "low").locked; // true
 * ```
 */
export function diagnoseLock(
  part: FlashPart,
  sr: number,
  wp: "high" | "low" | "unknown" = "unknown",
): LockDiagnosis {
  const f = decodeStatus(part, sr);
  const srHex = hex(sr, 2 * Math.max(1, part.srCount));
  if (f.srp1 && f.srp0) {
    return {
      mode: "permanent",
      locked: true,
      reason:
        `status registers permanently locked (SRP1=1, SRP0=1, SR ${srHex}): protection cannot be cleared`,
    };
  }
  if (f.srp1) {
    return {
      mode: "power-cycle",
      locked: true,
      reason: `status registers locked until power-off (SRP1=1, SR ${srHex})`,
    };
  }
  if (f.srp0) {
    const low = wp === "low";
    return {
      mode: "hardware",
      locked: low,
      reason: low
        ? `status registers locked by the WP# pin (SRP0=1 and WP# low, SR ${srHex})`
        : `SRP0=1 (SR ${srHex}): status writes work only while WP# is high`,
    };
  }
  return { mode: "none", locked: false, reason: "" };
}

/** Split a status word into the part's register bytes. */
export function srBytes(part: FlashPart, sr: number): number[] {
  return Array.from({ length: part.srCount }, (_, i) => (sr >>> (8 * i)) & 0xff);
}

/** Join register bytes into a status word. */
export function srWordOf(bytes: readonly number[]): number {
  return bytes.reduce((w, b, i) => (w | ((b & 0xff) << (8 * i))) >>> 0, 0);
}

/** Human-readable summary, e.g. "BP=1 CMP=1 → 0x000000..0x1effff protected". */
export function describeStatus(part: FlashPart, sr: number, flashSize = part.size): string {
  const f = decodeStatus(part, sr);
  const flags = [`BP=${f.bp}`];
  if (part.layout.tbBit !== null) flags.push(`TB=${+f.tb}`);
  if (part.layout.secBit !== null) flags.push(`SEC=${+f.sec}`);
  if (part.layout.cmpBit !== null) flags.push(`CMP=${+f.cmp}`);
  if (part.layout.srp0Bit !== null) flags.push(`SRP0=${+f.srp0}`);
  if (part.layout.srp1Bit !== null) flags.push(`SRP1=${+f.srp1}`);
  if (part.layout.qeBit !== null) flags.push(`QE=${+f.qe}`);
  const r = protectedRange(part, sr, flashSize);
  const what = r.end > r.start ? `${hex(r.start, 6)}..${hex(r.end - 1, 6)} protected` : "nothing protected";
  return `${flags.join(" ")} → ${what}`;
}
