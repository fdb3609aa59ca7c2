/**
 * Which efuse key a stored (CRC16-framed) image was built for, with the evidence: the ARM
 * exception vector table every BK72xx bootloader and application starts with is known
 * plaintext (seven `ldr pc, [pc, #0x14]` words, 0xE59FF014, after a branch), so decrypting the
 * first chunk with a candidate key and finding it proves the key (docs/dump-formats.md §3).
 *
 * @module
 */

import { BekenCipher, isBypassKey, type KeyWords, TUYA_N_KEY } from "./cipher.ts";
import { CHUNK_DATA, CHUNK_FLASH, unframe } from "./framing.ts";

/** `ldr pc, [pc, #0x14]`: words 1..7 of an ARM vector table. */
export const ARM_LDR_PC = 0xe59ff014;

/** The key classes a user acts on. */
export type KeyClass = "tuya-n" | "bypass" | "other" | "unknown";

/** A classification and why. */
export interface KeyClassification {
  /**
   * "tuya-n" or "bypass" (zero key) when the vector table shows with that key; "other" for valid
   * framing and another key (in `key` when it differs from the N key in coef2 only); "unknown"
   * when there is no framed image (erased, too short, unframed, off a chunk boundary).
   */
  class: KeyClass;
  /** The key as four hex words when it is identified. */
  key: string | null;
  /** One sentence: what was found where. */
  evidence: string;
  /** CRC16 framing of the examined chunks: valid or not (null when nothing was there). */
  framingValid: boolean | null;
}

/** Format four key words as `read-key` prints them. */
export function keyText(k: KeyWords): string {
  return k.map((w) => (w >>> 0).toString(16).padStart(8, "0")).join(" ");
}

/** Parse four hex words ("510fb093 a3cbeadc …" or one 32-digit string). */
export function parseKeyText(text: string): KeyWords | null {
  const hex = text.replace(/0x/gi, "").replace(/[\s,:]/g, "");
  if (!/^[0-9a-f]{32}$/i.test(hex)) return null;
  const w = [0, 1, 2, 3].map((i) => parseInt(hex.slice(i * 8, i * 8 + 8), 16) >>> 0);
  return [w[0], w[1], w[2], w[3]];
}

/**
 * Whether two keys encrypt identically. The pad is linear over GF(2) in coef0 and coef2 for a
 * fixed settings word, so different key words can be the same cipher; comparing pads over
 * addresses that exercise every address bit decides it.
 */
export function sameCipher(a: KeyWords, b: KeyWords): boolean {
  const ca = new BekenCipher(a), cb = new BekenCipher(b);
  if (ca.bypass || cb.bypass) return ca.bypass === cb.bypass;
  for (let bit = -1; bit < 32; bit++) {
    for (const base of [0, 0x10000, 0x5a5a5a58]) {
      const addr = (bit < 0 ? base : base ^ (1 << bit)) & ~3;
      if (ca.pad(addr >>> 0) !== cb.pad(addr >>> 0)) return false;
    }
  }
  return true;
}

/** The class of a chip's efuse key. */
export function classOfKey(k: KeyWords): KeyClass {
  if (isBypassKey(k)) return "bypass";
  if (k.every((w, i) => (w >>> 0) === TUYA_N_KEY[i])) return "tuya-n";
  return "other";
}

function words(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i += 4) {
    out.push((b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0);
  }
  return out;
}

function isVectorTable(w: number[]): boolean {
  return (w[0] >>> 24) === 0xea && w.slice(1, 8).every((x) => x === ARM_LDR_PC);
}

/** Whether `data` (framed flash bytes whose first byte is at physical `phys`) decrypts to code with `key`. */
export function decryptsWith(framed: Uint8Array, phys: number, key: KeyWords): boolean {
  const u = unframe(framed.subarray(0, CHUNK_FLASH));
  if (u.valid !== 1) return false;
  const plain = new BekenCipher(key).apply(u.data.slice(0, CHUNK_DATA), (phys / CHUNK_FLASH) * CHUNK_DATA);
  return isVectorTable(words(plain));
}

/**
 * Classify the image stored at physical flash address `phys` (a multiple of 34, e.g. 0x0 or
 * 0x11000), given its framed bytes from `phys` on.
 */
export function classifyImage(framed: Uint8Array, phys: number): KeyClassification {
  if (phys % CHUNK_FLASH !== 0) {
    return {
      class: "unknown",
      key: null,
      evidence: `0x${phys.toString(16)} is not on a 34-byte chunk boundary`,
      framingValid: null,
    };
  }
  const head = framed.subarray(0, CHUNK_FLASH * 32);
  if (head.length < CHUNK_FLASH) {
    return { class: "unknown", key: null, evidence: "image too short", framingValid: null };
  }
  const u = unframe(head);
  if (u.erased === Math.floor(head.length / CHUNK_FLASH)) {
    return { class: "unknown", key: null, evidence: "erased (all 0xFF)", framingValid: null };
  }
  const framingValid = u.invalid === 0;
  const first = unframe(framed.subarray(0, CHUNK_FLASH));
  const raw = words(first.data);
  if (first.valid === 1 && isVectorTable(raw)) {
    return {
      class: "bypass",
      key: null,
      evidence:
        "ARM vector table (7× ldr pc,[pc,#0x14]) readable as stored: built for a bypass key (no encryption)",
      framingValid,
    };
  }
  if (first.valid !== 1) {
    // no framing: perhaps a raw (unframed) build or foreign data
    const rawHead = words(framed.subarray(0, CHUNK_DATA));
    return {
      class: "unknown",
      key: null,
      evidence: isVectorTable(rawHead)
        ? "plain ARM code without CRC16 framing: a raw build, not an image the flash controller can run"
        : "no valid CRC16 framing in the first chunk: not a stored Beken image",
      framingValid: false,
    };
  }
  const logical = (phys / CHUNK_FLASH) * CHUNK_DATA;
  const n = new BekenCipher(TUYA_N_KEY);
  const dec = words(n.apply(first.data.slice(0, CHUNK_DATA), logical));
  if (isVectorTable(dec)) {
    return {
      class: "tuya-n",
      key: keyText(TUYA_N_KEY),
      evidence: "ARM vector table (7× ldr pc,[pc,#0x14]) after decryption with the Tuya N key",
      framingValid,
    };
  }
  // E(K, P) = P ^ pad(K, addr) and pad's last term is coef2: a key that differs from the N key
  // only in coef2 leaves a constant difference on every word
  const delta = (dec[1] ^ ARM_LDR_PC) >>> 0;
  if (
    delta !== 0 && dec.slice(1, 8).every((w) => ((w ^ ARM_LDR_PC) >>> 0) === delta) &&
    (dec[0] >>> 24) === (0xea ^ (delta >>> 24))
  ) {
    const k: KeyWords = [TUYA_N_KEY[0], TUYA_N_KEY[1], (TUYA_N_KEY[2] ^ delta) >>> 0, TUYA_N_KEY[3]];
    return {
      class: "other",
      key: keyText(k),
      evidence:
        `ARM vector table after decryption with a key that differs from the Tuya N key in coef2 by 0x${
          delta.toString(16).padStart(8, "0")
        }`,
      framingValid,
    };
  }
  return {
    class: "other",
    key: null,
    evidence:
      "CRC16 framing valid, but neither as stored nor with the Tuya N key does it start with an ARM vector table",
    framingValid,
  };
}
