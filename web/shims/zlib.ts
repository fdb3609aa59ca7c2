/**
 * The `node:zlib` functions the core uses, for the browser build: `web/build.ts` maps
 * `node:zlib` here. `crc32` is the standard CRC-32 (reflected 0xEDB88320), eight bytes per step
 * with eight tables, so a 2 MiB backup is checked in a few milliseconds; `gunzipSync` (gzip
 * RBL containers, when a dump is inspected) is fflate's.
 *
 * @module
 */

export { gunzipSync } from "fflate";

const TABLES: Uint32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k][n] = (t[k - 1][n] >>> 8) ^ t[0][t[k - 1][n] & 0xff];
  }
  return t;
})();

/** Standard CRC-32 of `data`, continuing from `previous` (zlib's `crc32(data, value)`). */
export function crc32(data: Uint8Array | string, previous = 0): number {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let c = ~previous >>> 0;
  let i = 0;
  const end8 = bytes.length - (bytes.length % 8);
  for (; i < end8; i += 8) {
    const a = (c ^ (bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24)) >>> 0;
    c = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[bytes[i + 4]] ^ t2[bytes[i + 5]] ^ t1[bytes[i + 6]] ^ t0[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
