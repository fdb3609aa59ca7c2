/**
 * Hexadecimal text for messages, traces and diffs: the one formatter every layer uses.
 *
 * @example
 * ```ts
 * import { hex, hexByte, toHex } from "./hex.ts";
 * hex(0x11000); // "0x11000"
 * hex(0x11000, 6); // "0x011000"
 * hexByte(0xd2); // "d2"
 * toHex(Uint8Array.of(1, 0xe0, 0xfc)); // "01e0fc"
 * ```
 *
 * @module
 */

/** `0x` and the unsigned 32-bit value in lowercase hex, zero-padded to `digits` digits. */
export function hex(n: number, digits = 0): string {
  return `0x${(n >>> 0).toString(16).padStart(digits, "0")}`;
}

/** One byte as two lowercase hex digits, no prefix. */
export function hexByte(n: number): string {
  return (n & 0xff).toString(16).padStart(2, "0");
}

/** Lowercase hex of bytes, two digits each, joined by `separator` (none by default). */
export function toHex(bytes: ArrayLike<number>, separator = ""): string {
  return Array.from(bytes, hexByte).join(separator);
}
