/**
 * The CRC16 framing of stored images: every 32 bytes of data are followed by their
 * CRC-16/CMS, big-endian, so 34 bytes of flash hold 32 bytes the CPU sees (docs/dump-formats.md §2).
 *
 * @module
 */

import { crc16cms } from "./crc16.ts";

/** Data bytes per framed chunk. */
export const CHUNK_DATA = 32;
/** Flash bytes per framed chunk (data + CRC16). */
export const CHUNK_FLASH = 34;

/** The logical (CPU) address of a physical flash address on a framed chip. */
export function logicalAddress(physical: number): number {
  return Math.floor(physical / CHUNK_FLASH) * CHUNK_DATA + (physical % CHUNK_FLASH);
}

/** Add CRC16 framing to `data`, padded with 0xFF to a multiple of 32 bytes. */
export function frame(data: Uint8Array): Uint8Array {
  const chunks = Math.ceil(data.length / CHUNK_DATA);
  const out = new Uint8Array(chunks * CHUNK_FLASH);
  const block = new Uint8Array(CHUNK_DATA);
  for (let i = 0; i < chunks; i++) {
    block.fill(0xff);
    block.set(data.subarray(i * CHUNK_DATA, Math.min(data.length, (i + 1) * CHUNK_DATA)));
    const crc = crc16cms(block);
    out.set(block, i * CHUNK_FLASH);
    out[i * CHUNK_FLASH + 32] = crc >> 8;
    out[i * CHUNK_FLASH + 33] = crc & 0xff;
  }
  return out;
}

/** What {@link unframe} found. */
export interface Unframed {
  /** The data bytes, CRCs removed (32 per whole chunk). */
  data: Uint8Array;
  /** Chunks whose CRC matched. */
  valid: number;
  /** Chunks entirely 0xFF (erased: no CRC to check). */
  erased: number;
  /** Chunks with data whose CRC did not match. */
  invalid: number;
  /** Offset (in `framed`) of the first invalid chunk, or -1. */
  firstInvalid: number;
}

/** Strip CRC16 framing from `framed` (whole 34-byte chunks), counting valid, erased and bad chunks. */
export function unframe(framed: Uint8Array): Unframed {
  const chunks = Math.floor(framed.length / CHUNK_FLASH);
  const data = new Uint8Array(chunks * CHUNK_DATA);
  let valid = 0, erased = 0, invalid = 0, firstInvalid = -1;
  for (let i = 0; i < chunks; i++) {
    const c = framed.subarray(i * CHUNK_FLASH, (i + 1) * CHUNK_FLASH);
    data.set(c.subarray(0, CHUNK_DATA), i * CHUNK_DATA);
    if (c.every((b) => b === 0xff)) erased++;
    else if (crc16cms(c.subarray(0, CHUNK_DATA)) === ((c[32] << 8) | c[33])) valid++;
    else {
      invalid++;
      if (firstInvalid < 0) firstInvalid = i * CHUNK_FLASH;
    }
  }
  return { data, valid, erased, invalid, firstInvalid };
}
