/**
 * Beken's flash encryption: the flash controller XORs every 32-bit word with a pseudo-random
 * word derived from its (logical) address and the four efuse coefficient words. Rewritten from
 * the hardware description quoted in ltchiptool's `soc/bk72xx/util/crypto.py` (facts in
 * docs/dump-formats.md §3). For a fixed key the cipher is `P ^ pad(key, addr)`: encrypting and
 * decrypting are the same operation.
 *
 * @module
 */

/** Four 32-bit coefficient words, as `read-key` prints them. */
export type KeyWords = readonly [number, number, number, number];

/** The Tuya BK7231N key. */
export const TUYA_N_KEY: KeyWords = [0x510fb093, 0xa3cbeadc, 0x5993a17e, 0xc7adeb03];
/** The all-zero key of BK7231M / BL2028N (a bypass key). */
export const ZERO_KEY: KeyWords = [0, 0, 0, 0];

/** Whether `key` turns encryption off (coef3[31:24] is 0x00 or 0xFF, or coef3[3:0] is 0xF). */
export function isBypassKey(key: KeyWords): boolean {
  const top = key[3] >>> 24;
  return top === 0x00 || top === 0xff || (key[3] & 0xf) === 0xf;
}

function pn15(a: number): number {
  const x = ((a & 0x7f) << 9) | ((a >>> 7) & 0x1ff);
  return (x ^ (0x6371 & (((a >>> 5) & 0xf) * 0x1111))) & 0xffff;
}

function pn16(a: number): number {
  const x = ((a & 0x3ff) << 7) | ((a >>> 10) & 0x7f);
  const sel = ((a >>> 13) & 1) | (((a >>> 9) & 1) << 1) | (((a >>> 5) & 1) << 2) | (((a >>> 1) & 1) << 3);
  const mask = (((a >>> 4) & 1) << 16) | (sel * 0x1111);
  return (x ^ (0x13659 & mask)) & 0x1ffff;
}

function pn32(a: number): number {
  const x = (((a & 0x7fff) << 17) | ((a >>> 15) & 0x1ffff)) >>> 0;
  return (x ^ ((0xe519a4f1 & (((a >>> 2) & 0xf) * 0x11111111)) >>> 0)) >>> 0;
}

function swap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

/** A key prepared for encrypting and decrypting words. */
export class BekenCipher {
  /** No encryption with this key. */
  readonly bypass: boolean;
  readonly #c0: number;
  readonly #c1hi: number;
  readonly #c1mix: number;
  readonly #pn15Sel: number;
  readonly #pn16Sel: number;
  readonly #pn32Sel: number;
  readonly #random: number;

  /** Prepare `key`, the four efuse key words (coef0..coef3, as `read-key` prints them). */
  constructor(readonly key: KeyWords) {
    const [c0, c1, c2, c3] = key.map((w) => w >>> 0);
    this.bypass = isBypassKey(key);
    this.#c0 = c0;
    this.#c1hi = c1 >>> 16;
    this.#c1mix = (((c1 >>> 8) & 0xff) << 9) | (((c3 >>> 4) & 1) << 8) | (c1 & 0xff);
    this.#pn15Sel = c3 & 1 ? -1 : (c3 >>> 5) & 3;
    this.#pn16Sel = c3 & 2 ? -1 : (c3 >>> 8) & 3;
    this.#pn32Sel = c3 & 4 ? -1 : (c3 >>> 11) & 3;
    this.#random = c3 & 8 ? 0 : c2;
  }

  /** The word XORed onto the data word at logical address `addr`. */
  pad(addr: number): number {
    if (this.bypass) return 0;
    const a = addr >>> 0;
    let v15 = 0, v16 = 0, v32 = 0;
    if (this.#pn15Sel >= 0) {
      const hi = a >>> 16, lo = a & 0xffff;
      const s = this.#pn15Sel;
      const A = (s & 2 ? swap16(hi) : hi) ^ (s & 1 ? swap16(lo) : lo);
      v15 = pn15(A ^ this.#c1hi);
    }
    if (this.#pn16Sel >= 0) v16 = pn16(((a >>> this.#pn16Sel) & 0x1ffff) ^ this.#c1mix);
    if (this.#pn32Sel >= 0) {
      const r = this.#pn32Sel * 8;
      const A = r === 0 ? a : ((a >>> r) | (a << (32 - r))) >>> 0;
      v32 = pn32((A ^ this.#c0) >>> 0);
    }
    return (v32 ^ ((v15 << 16) | (v16 & 0xffff)) ^ this.#random) >>> 0;
  }

  /**
   * XOR `data` (little-endian words, starting at logical address `addr`, a multiple of 4) with
   * the key stream in place: encrypts plaintext and decrypts ciphertext. Returns `data`.
   */
  apply(data: Uint8Array, addr: number): Uint8Array {
    if (this.bypass) return data;
    const n = data.length & ~3;
    for (let i = 0; i < n; i += 4) {
      const p = this.pad(addr + i);
      data[i] ^= p & 0xff;
      data[i + 1] ^= (p >>> 8) & 0xff;
      data[i + 2] ^= (p >>> 16) & 0xff;
      data[i + 3] ^= p >>> 24;
    }
    return data;
  }
}
