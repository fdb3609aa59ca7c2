/**
 * Building stored images the way Beken's packagers do, for fixtures and tests: plain code is
 * encrypted with a key at its logical address, then CRC16-framed for its physical address.
 * The inverse of what `inspect` and the emulator's boot check read.
 *
 * @module
 */

import { BekenCipher, type KeyWords } from "./cipher.ts";
import { ARM_LDR_PC } from "./key_class.ts";
import { CHUNK_DATA, CHUNK_FLASH, frame } from "./framing.ts";

/** A plain (decrypted) code blob: an ARM vector table, then `body`. */
export function plainCode(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(32 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xea00000e, true);
  for (let i = 1; i < 8; i++) dv.setUint32(i * 4, ARM_LDR_PC, true);
  out.set(body, 32);
  return out;
}

/**
 * The flash bytes of `plain` stored at physical address `phys` (a multiple of 34) on a chip
 * whose efuse key is `key`: encrypted, padded with 0xFF to 32 bytes, CRC16-framed.
 */
export function storedImage(plain: Uint8Array, key: KeyWords, phys: number): Uint8Array {
  if (phys % CHUNK_FLASH !== 0) {
    throw new RangeError(`0x${phys.toString(16)} is not on a 34-byte chunk boundary`);
  }
  const padded = new Uint8Array(Math.ceil(plain.length / CHUNK_DATA) * CHUNK_DATA).fill(0xff);
  padded.set(plain);
  new BekenCipher(key).apply(padded, (phys / CHUNK_FLASH) * CHUNK_DATA);
  return frame(padded);
}
