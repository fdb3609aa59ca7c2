/**
 * CRC-16/CMS (poly 0x8005, init 0xFFFF, not reflected, no final XOR): the check Beken's flash
 * controller keeps after every 32 bytes of a stored image (docs/dump-formats.md §2).
 *
 * @module
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
    t[n] = c;
  }
  return t;
})();

/**
 * CRC-16/CMS of `data`.
 *
 * @example
 * ```ts
 * crc16cms(new TextEncoder().encode("123456789")) === 0xaee7; // true
 * ```
 */
export function crc16cms(data: Uint8Array): number {
  let c = 0xffff;
  for (let i = 0; i < data.length; i++) c = ((c << 8) & 0xffff) ^ TABLE[((c >> 8) ^ data[i]) & 0xff];
  return c;
}
