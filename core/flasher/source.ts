/**
 * Where expected bytes come from: an image in memory or a file read piece by piece, so a
 * write never needs the whole image in memory. {@link FlashContent} places a source at a flash
 * address and pads it with 0xFF to whole sectors.
 *
 * @module
 */

import { Crc32 } from "../crc.ts";
import { SECTOR } from "../target.ts";

/** Random-access bytes: an image in memory, a file, a backup in a store. */
export interface ByteSource {
  /** Length in bytes. */
  readonly size: number;
  /** `length` bytes at `offset`; fewer only past the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Chunk size for streaming passes over a source. */
export const STREAM_CHUNK = 0x10000;

/** A source over bytes in memory (no copy). */
export function bytesSource(data: Uint8Array): ByteSource {
  return {
    size: data.length,
    read: (offset, length) => Promise.resolve(data.subarray(offset, Math.min(data.length, offset + length))),
  };
}

/** Whether `x` is a {@link ByteSource} rather than bytes. */
export function isByteSource(x: Uint8Array | ByteSource): x is ByteSource {
  return !(x instanceof Uint8Array);
}

/** Bytes or a source, as a source. */
export function toSource(x: Uint8Array | ByteSource): ByteSource {
  return isByteSource(x) ? x : bytesSource(x);
}

/**
 * The content a sector-aligned range of flash should hold: `source` at `addr`, followed by
 * 0xFF up to the next sector boundary.
 *
 * @example
 * ```ts
 * declare const app: Uint8Array;
 * const c = new FlashContent(0x11000, bytesSource(app));
 * const first = await c.bytes(0x11000, 0x1000);
 * ```
 */
export class FlashContent {
  /** Flash address of the first byte. */
  readonly addr: number;
  /** Bytes that come from the source (the unpadded image length). */
  readonly length: number;
  /** Length rounded up to whole sectors. */
  readonly size: number;
  readonly #src: ByteSource;

  /** The bytes of `source`, placed at flash address `addr`. */
  constructor(addr: number, source: ByteSource) {
    this.addr = addr;
    this.#src = source;
    this.length = source.size;
    this.size = Math.ceil(source.size / SECTOR) * SECTOR;
  }

  /** The end address (exclusive) of the padded range. */
  get end(): number {
    return this.addr + this.size;
  }

  /** `len` expected bytes at flash address `at` (inside the padded range). */
  async bytes(at: number, len: number): Promise<Uint8Array> {
    const off = at - this.addr;
    if (off < 0 || off + len > this.size) {
      throw new RangeError(`0x${at.toString(16)}+${len} outside the content`);
    }
    const real = Math.max(0, Math.min(len, this.length - off));
    const got = real > 0 ? await this.#src.read(off, real) : new Uint8Array(0);
    if (got.length === len) return got;
    if (got.length !== real) {
      throw new RangeError(`source gave ${got.length} bytes at ${off}, expected ${real}`);
    }
    const out = new Uint8Array(len).fill(0xff);
    out.set(got);
    return out;
  }

  /** Standard CRC-32 of `len` expected bytes at `at`, read in chunks. */
  async crc(at: number, len: number): Promise<number> {
    const c = new Crc32();
    for (let o = 0; o < len; o += STREAM_CHUNK) {
      c.update(await this.bytes(at + o, Math.min(STREAM_CHUNK, len - o)));
    }
    return c.standard;
  }

  /** Standard CRC-32 of each sector of the padded range, in order (one pass over the source). */
  async sectorCrcs(): Promise<Uint32Array> {
    const out = new Uint32Array(this.size / SECTOR);
    for (let o = 0; o < this.size; o += STREAM_CHUNK) {
      const chunk = await this.bytes(this.addr + o, Math.min(STREAM_CHUNK, this.size - o));
      for (let s = 0; s < chunk.length; s += SECTOR) {
        out[(o + s) / SECTOR] = new Crc32().update(chunk.subarray(s, s + SECTOR)).standard;
      }
    }
    return out;
  }
}

/**
 * One pass over a source: its standard CRC-32 and that of each 4 KiB piece (the last piece may
 * be shorter).
 */
export async function scanSource(source: ByteSource): Promise<{ crc32: number; sectorCrcs: Uint32Array }> {
  const whole = new Crc32();
  const sectorCrcs = new Uint32Array(Math.ceil(source.size / SECTOR));
  for (let o = 0; o < source.size; o += STREAM_CHUNK) {
    const chunk = await source.read(o, Math.min(STREAM_CHUNK, source.size - o));
    whole.update(chunk);
    for (let s = 0; s < chunk.length; s += SECTOR) {
      sectorCrcs[(o + s) / SECTOR] = new Crc32().update(chunk.subarray(s, s + SECTOR)).standard;
    }
  }
  return { crc32: whole.standard, sectorCrcs };
}

/** A source of `size` bytes of 0xFF (an erased range), without a buffer of that size. */
export function blankSource(size: number): ByteSource {
  const chunk = new Uint8Array(Math.min(size, STREAM_CHUNK)).fill(0xff);
  return {
    size,
    read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      return Promise.resolve(n <= chunk.length ? chunk.subarray(0, n) : new Uint8Array(n).fill(0xff));
    },
  };
}
