/**
 * The loader's CheckCRC over the flash model: the standard CRC-32 through the address wrap,
 * with whole turns of the flash folded by {@link crc32Combine} (zlib's crc32_combine method,
 * over GF(2)) so a garbled request for gigabytes costs no more than two turns.
 *
 * @module
 */

import { crc32 } from "../core/crc.ts";
import type { LoaderFlash } from "./loader_host.ts";

/** Bytes the CheckCRC handler reads from the flash model at a time. */
const CRC_PIECE = 0x10000;

/**
 * Standard CRC-32 of `len` bytes from `start` through the address wrap. A garbled request can
 * ask for gigabytes (the loader would then be busy for hours); whole turns of the flash are
 * folded with {@link crc32Combine} instead of being read again.
 */
export function wrappedCrc(flash: LoaderFlash, start: number, len: number): number {
  const size = flash.size;
  const from = start % size;
  const piece = (off: number, n: number, crc: number) => {
    for (let o = 0; o < n; o += CRC_PIECE) {
      crc = crc32(flash.read((from + off + o) % size, Math.min(CRC_PIECE, n - o)), crc);
    }
    return crc;
  };
  if (len <= 2 * size) return piece(0, len, 0);
  const turn = piece(0, size, 0);
  let turns = Math.floor(len / size);
  // binary method: acc = CRC of `done` whole turns, pow = CRC of `span` whole turns
  let acc = 0;
  let done = 0;
  let pow = turn;
  let span = 1;
  while (turns > 0) {
    if (turns % 2 === 1) {
      acc = done === 0 ? pow : crc32Combine(acc, pow, span * size);
      done += span;
    }
    turns = Math.floor(turns / 2);
    if (turns > 0) {
      pow = crc32Combine(pow, pow, span * size);
      span *= 2;
    }
  }
  const rest = len - done * size;
  return rest > 0 ? crc32Combine(acc, piece(0, rest, 0), rest) : acc;
}

function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i];
  return sum >>> 0;
}

function gf2Square(out: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) out[n] = gf2Times(mat, mat[n]);
}

/**
 * The CRC-32 of A followed by B from the CRC of A, the CRC of B and B's length: the CRC of A is
 * run through `len2` zero bytes (as a 32 × 32 matrix over GF(2), squared per bit of `len2`).
 */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  if (len2 <= 0) return crc1 >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // one zero bit
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row >>> 0;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let crc = crc1 >>> 0;
  let n = len2;
  for (;;) {
    gf2Square(even, odd); // one zero byte, then 4, 16, …
    if (n % 2 === 1) crc = gf2Times(even, crc);
    n = Math.floor(n / 2);
    if (n === 0) break;
    gf2Square(odd, even);
    if (n % 2 === 1) crc = gf2Times(odd, crc);
    n = Math.floor(n / 2);
    if (n === 0) break;
  }
  return (crc ^ crc2) >>> 0;
}
