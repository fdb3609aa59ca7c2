/**
 * The images scenarios write: deterministic per chip mode and variant, so a run on the
 * emulator, a run on a bench board and a replayed trace all send the same bytes.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { SECTOR } from "../core/target.ts";
import type { KeyWords } from "../core/image/cipher.ts";
import { plainCode, storedImage } from "../core/image/encode.ts";

/** Size of the application image the write scenarios use (32 sectors). */
export const APP_IMAGE_SIZE = 0x20000;

function seedOf(text: string): number {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0 || 1;
}

/** Bytes from a xorshift32 stream seeded by `key`. */
export function pseudoRandom(key: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seedOf(key);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * An application image for `profile`: pseudo-random sectors with a readable tag at the
 * start and one all-0xFF sector (sector 5), which the write path must skip programming.
 */
export function appImage(profile: ChipProfile, variant = 0, size = APP_IMAGE_SIZE): Uint8Array {
  const img = pseudoRandom(`${profile.id}/app/${variant}`, size);
  img.set(new TextEncoder().encode(`bekenlab-hil ${profile.id} v${variant}\0`), 0);
  if (size > 6 * SECTOR) img.fill(0xff, 5 * SECTOR, 6 * SECTOR);
  return img;
}

/** `image` with the given sectors changed, as an incremental re-flash would have them. */
export function withChangedSectors(image: Uint8Array, sectors: readonly number[], salt: string): Uint8Array {
  const out = image.slice();
  for (const s of sectors) out.set(pseudoRandom(`${salt}/${s}`, SECTOR), s * SECTOR);
  return out;
}

/** A bootloader for a chip whose efuse key is `key`, as stored at 0x0 (encrypted, CRC16-framed). */
export function bootableBootloader(key: KeyWords): Uint8Array {
  return storedImage(plainCode(pseudoRandom("boot/bootloader", 0x3000)), key, 0);
}

/** An application for `profile` built for `key`, as stored at 0x11000. */
export function bootableApp(profile: ChipProfile, key: KeyWords): Uint8Array {
  return storedImage(plainCode(pseudoRandom(`${profile.id}/boot/app`, 0x8000)), key, 0x11000);
}
