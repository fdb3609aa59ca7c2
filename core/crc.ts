/**
 * The chip's CRC (docs/uart.md §4.6): CRC-32, reflected polynomial 0xEDB88320, initial value
 * 0xFFFFFFFF, **no final XOR**. It is the standard CRC-32 XOR 0xFFFFFFFF.
 *
 * @module
 */

import { crc32 as zcrc32 } from "node:zlib";

/** Standard CRC-32 (as zlib, `crc32` tools and the JSON `crc32` fields report it). */
export function crc32(data: Uint8Array, previous = 0): number {
  return zcrc32(data, previous) >>> 0;
}

/**
 * The raw register value the chip's CheckCRC returns for `data`.
 *
 * @example
 * ```ts
 * chipCrc(new Uint8Array(4096).fill(0xff)); // 0x0eab98f5
 * chipCrc(new Uint8Array(257)); // 0xb7bfa0ce ^ 0xffffffff
 * ```
 */
export function chipCrc(data: Uint8Array): number {
  return (crc32(data) ^ 0xffffffff) >>> 0;
}

/** Convert between the chip's raw value and the standard CRC-32 (the map is its own inverse). */
export function chipToStandard(raw: number): number {
  return (raw ^ 0xffffffff) >>> 0;
}

/** Incremental CRC over several chunks, yielding both forms. */
export class Crc32 {
  #value = 0;
  /** Add bytes. */
  update(data: Uint8Array): this {
    this.#value = crc32(data, this.#value);
    return this;
  }
  /** Standard CRC-32 so far. */
  get standard(): number {
    return this.#value;
  }
  /** The chip's raw register value so far. */
  get chip(): number {
    return chipToStandard(this.#value);
  }
}
