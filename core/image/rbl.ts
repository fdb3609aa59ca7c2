/**
 * RBL containers ("RBL\0" headers): at the end of a flash partition, CRC16-framed, describing
 * the (encrypted) partition data before them; or at the start of an OTA file, describing the
 * (compressed) data after them. Layout and checks: docs/dump-formats.md §4.
 *
 * @module
 */

import { crc32 } from "../crc.ts";
import { CHUNK_FLASH, unframe } from "./framing.ts";

/** Size of the header, its CRC-32 included. */
export const RBL_HEADER_SIZE = 96;
/** Compression names by code. */
export const RBL_COMPRESSION = ["none", "gzip", "quicklz", "fastlz"] as const;
/** Encryption names by code. */
export const RBL_ENCRYPTION = ["none", "xor", "aes256"] as const;

/** A decoded RBL header. */
export interface RblHeader {
  /** Encryption of the data: "none", "xor", "aes256" (byte +4; "code <n>" when unknown). */
  encryption: string;
  /** Compression of the data: "none", "gzip", "quicklz", "fastlz" (byte +5; "code <n>" when unknown). */
  compression: string;
  /** Packaging time in Unix seconds (u32 at +8). */
  timestamp: number;
  /** Partition or firmware name (16 bytes at +12). */
  name: string;
  /** Firmware version string (24 bytes at +28). */
  version: string;
  /** Serial-number string (24 bytes at +52). */
  sn: string;
  /** CRC-32 of the `dataSize` data bytes (u32 at +76; in flash, padding as {@link rblDataCrc} counts it). */
  dataCrc: number;
  /** FNV-1a-32 of the first `rawSize` (uncompressed, unencrypted) bytes (u32 at +80). */
  dataHash: number;
  /** Bytes of the raw image, before padding (u32 at +84). */
  rawSize: number;
  /** Bytes of the data as stored: raw plus padding, or compressed (u32 at +88). */
  dataSize: number;
  /** The CRC-32 at +92 matches the first 92 bytes. */
  headerCrcValid: boolean;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function cstr(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end)).replace(/[^\x20-\x7e]/g, "?");
}

/** Decode a 96-byte header (without framing); null when the magic is absent. */
export function parseRblHeader(h: Uint8Array): RblHeader | null {
  if (h.length < RBL_HEADER_SIZE || h[0] !== 0x52 || h[1] !== 0x42 || h[2] !== 0x4c || h[3] !== 0) {
    return null;
  }
  return {
    encryption: RBL_ENCRYPTION[h[4]] ?? `code ${h[4]}`,
    compression: RBL_COMPRESSION[h[5]] ?? `code ${h[5]}`,
    timestamp: u32(h, 8),
    name: cstr(h.subarray(12, 28)),
    version: cstr(h.subarray(28, 52)),
    sn: cstr(h.subarray(52, 76)),
    dataCrc: u32(h, 76),
    dataHash: u32(h, 80),
    rawSize: u32(h, 84),
    dataSize: u32(h, 88),
    headerCrcValid: crc32(h.subarray(0, 92)) === u32(h, 92),
  };
}

/** Encode a header (the inverse of {@link parseRblHeader}), its CRC-32 computed. */
export function buildRblHeader(h: Omit<RblHeader, "headerCrcValid">): Uint8Array {
  const b = new Uint8Array(RBL_HEADER_SIZE);
  const w32 = (o: number, v: number) => new DataView(b.buffer).setUint32(o, v >>> 0, true);
  b.set([0x52, 0x42, 0x4c, 0]);
  b[4] = Math.max(0, RBL_ENCRYPTION.indexOf(h.encryption as typeof RBL_ENCRYPTION[number]));
  b[5] = Math.max(0, RBL_COMPRESSION.indexOf(h.compression as typeof RBL_COMPRESSION[number]));
  w32(8, h.timestamp);
  const enc = new TextEncoder();
  b.set(enc.encode(h.name).subarray(0, 16), 12);
  b.set(enc.encode(h.version).subarray(0, 24), 28);
  b.set(enc.encode(h.sn).subarray(0, 24), 52);
  w32(76, h.dataCrc);
  w32(80, h.dataHash);
  w32(84, h.rawSize);
  w32(88, h.dataSize);
  w32(92, crc32(b.subarray(0, 92)));
  return b;
}

/** FNV-1a 32-bit hash. */
export function fnv1a32(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193) >>> 0;
  return h >>> 0;
}

/**
 * The data CRC of a partition container. The data size exceeds the raw size by a padding of
 * `n = dataSize - rawSize` bytes, which the flash holds as 0xFF but the packager counted as
 * `n` bytes of value `n` (PKCS#7-style; docs/dump-formats.md §4).
 */
export function rblDataCrc(data: Uint8Array, rawSize = data.length): number {
  const pad = data.length - rawSize;
  if (pad <= 0 || pad > 0xff) return crc32(data);
  const copy = data.slice();
  copy.fill(pad, rawSize);
  return crc32(copy);
}

/** A container found in flash. */
export interface RblInFlash extends RblHeader {
  /** Physical offset of the header. */
  offset: number;
  /** Physical start of the partition the header closes (its data start), when it was found. */
  partitionStart: number | null;
  /** CRC-32 of `dataSize` bytes of the unframed partition data matched, or null when not checked. */
  dataCrcValid: boolean | null;
  /** FNV-1a of the first `rawSize` of them matched, or null when not checked. */
  hashValid: boolean | null;
}

/**
 * Find every RBL header stored in flash (`dump` from address 0): each starts a 34-byte chunk,
 * framed. `partitionStarts` are candidate partition starts (the bootloader's 0x0, the app's
 * 0x11000): the data CRC is checked from the nearest one below the header.
 */
export function findRblInFlash(dump: Uint8Array, partitionStarts: readonly number[]): RblInFlash[] {
  const out: RblInFlash[] = [];
  for (let i = 0; i + 3 * CHUNK_FLASH <= dump.length; i++) {
    if (dump[i] !== 0x52 || dump[i + 1] !== 0x42 || dump[i + 2] !== 0x4c || dump[i + 3] !== 0) continue;
    const u = unframe(dump.subarray(i, i + 3 * CHUNK_FLASH));
    const h = u.valid === 3 ? parseRblHeader(u.data) : null;
    if (!h) continue;
    const start = [...partitionStarts].filter((s) =>
      s < i && (i - s) % CHUNK_FLASH === 0
    ).sort((a, b) => b - a)[0];
    let dataCrcValid: boolean | null = null, hashValid: boolean | null = null;
    if (start !== undefined) {
      const framedLen = Math.ceil(h.dataSize / 32) * CHUNK_FLASH;
      if (start + framedLen <= i) {
        const data = unframe(dump.subarray(start, start + framedLen)).data.subarray(0, h.dataSize);
        dataCrcValid = rblDataCrc(data, h.rawSize) === h.dataCrc;
        hashValid = fnv1a32(data.subarray(0, Math.min(h.rawSize, data.length))) === h.dataHash;
      }
    }
    out.push({ ...h, offset: i, partitionStart: start ?? null, dataCrcValid, hashValid });
    i += 3 * CHUNK_FLASH - 1;
  }
  return out;
}

/** An OTA file's container: the header at offset 0, unframed, the data after it. */
export interface RblOta extends RblHeader {
  /** Offset of the header in the file: always 0. */
  offset: 0;
  /** CRC-32 of the `dataSize` bytes after the header matched (null when the file is shorter). */
  dataCrcValid: boolean | null;
  /** FNV-1a of the raw (uncompressed) data matched; null when the data could not be unpacked here. */
  hashValid: boolean | null;
}

/** Decode an OTA file that starts with an RBL header; null when it does not. */
export function parseRblOta(file: Uint8Array, gunzip?: (data: Uint8Array) => Uint8Array): RblOta | null {
  const h = parseRblHeader(file.subarray(0, RBL_HEADER_SIZE));
  if (!h || !h.headerCrcValid) return null;
  const data = file.subarray(RBL_HEADER_SIZE, RBL_HEADER_SIZE + h.dataSize);
  const whole = data.length === h.dataSize;
  let hashValid: boolean | null = null;
  if (whole && h.encryption === "none") {
    if (h.compression === "none") hashValid = fnv1a32(data.subarray(0, h.rawSize)) === h.dataHash;
    else if (h.compression === "gzip" && gunzip) {
      try {
        hashValid = fnv1a32(gunzip(data)) === h.dataHash;
      } catch {
        hashValid = false;
      }
    }
  }
  return { ...h, offset: 0, dataCrcValid: whole ? crc32(data) === h.dataCrc : null, hashValid };
}
