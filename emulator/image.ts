/**
 * Default flash contents of a virtual chip: a bootloader region whose first bytes carry the
 * CRC of the chip's real bootloader (so clients that identify bootloaders by CRC recognise
 * it), an application, an RF sector, and erased flash elsewhere. Deterministic per chip.
 *
 * @module
 */

import { crc32 } from "../core/crc.ts";
import type { ChipProfile } from "../core/chips/profiles.ts";
import { KNOWN_BOOTLOADERS } from "../core/chips/bootloaders.ts";
import { Rng } from "./rng.ts";

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

const BY_TOP = (() => {
  const m = new Uint8Array(256);
  for (let k = 0; k < 256; k++) m[TABLE[k] >>> 24] = k;
  return m;
})();

/**
 * Overwrite the last four bytes of `data` so that its standard CRC-32 becomes `target`.
 * CRC-32 is linear, so four free bytes can steer it to any value.
 *
 * @example
 * ```ts
 * import { crc32 } from "../core/crc.ts";
 * const d = new Uint8Array(257);
 * forgeCrc(d, 0xe14191ba);
 * crc32(d) === 0xe14191ba; // true
 * ```
 */
export function forgeCrc(data: Uint8Array, target: number): Uint8Array {
  const n = data.length;
  if (n < 4) throw new RangeError("need at least 4 bytes to steer a CRC");
  const idx: number[] = [];
  let r = ~target >>> 0;
  for (let i = 0; i < 4; i++) {
    const k = BY_TOP[r >>> 24];
    idx.unshift(k);
    r = ((r ^ TABLE[k]) << 8) >>> 0;
  }
  let s = ~crc32(data.subarray(0, n - 4)) >>> 0;
  for (let i = 0; i < 4; i++) {
    const b = (s ^ idx[i]) & 0xff;
    data[n - 4 + i] = b;
    s = ((s >>> 8) ^ TABLE[(s ^ b) & 0xff]) >>> 0;
  }
  return data;
}

/** Length of the bootloader-identification window: 257 bytes on FULL chips, 256 otherwise. */
export function bootloaderProbeLength(profile: ChipProfile): number {
  return profile.crcEndInclusive ? 257 : 256;
}

/** Size of the synthetic application the default image carries. */
export const DEFAULT_APP_SIZE = 0x60000;

/** Build the default flash image of `profile` for a flash of `size` bytes. */
export function defaultImage(profile: ChipProfile, size: number): Uint8Array {
  const img = new Uint8Array(size).fill(0xff);
  const rng = new Rng(seedOf(profile.id));
  const boot = profile.layout.bootloader;
  // a bootloader that fills most of its window, followed by erased bytes
  const bootUsed = Math.min(size, boot.end - 0x2000);
  rng.fill(img.subarray(boot.start, bootUsed));
  const known = KNOWN_BOOTLOADERS.find((b) => b.name === profile.bootloader);
  if (known) forgeCrc(img.subarray(0, bootloaderProbeLength(profile)), known.crc);
  const app = profile.layout.app;
  if (app.start < size) rng.fill(img.subarray(app.start, Math.min(size, app.start + DEFAULT_APP_SIZE)));
  const rf = profile.layout.rf;
  if (rf.end <= size) {
    // a small TLV-looking blob at the start of the RF sector
    const tlv = rng.fill(new Uint8Array(64));
    tlv.set([0x54, 0x4c, 0x56, 0x00], 0);
    img.set(tlv, rf.start);
  }
  return img;
}

function seedOf(id: string): number {
  let h = 2166136261;
  for (const ch of id) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}
