/**
 * Known bootloaders by the standard CRC-32 of flash 0..256 (docs/uart.md §5.6): 257 bytes on
 * BootROM ("FULL") chips, whose CheckCRC end is inclusive, 256 bytes on the others.
 *
 * @module
 */

import type { Personality } from "./personality.ts";

/** A bootloader recognised by the CRC of its first bytes. */
export interface KnownBootloader {
  /** Standard CRC-32 of the first 257 (FULL) or 256 (BASIC) bytes. */
  crc: number;
  /** Bootloader name as bk7231tools lists it. */
  name: string;
  /** Profile id of the chip it ships on. */
  chip: string;
  /** The loader protocol it speaks. */
  personality: Personality;
}

/** The table from bk7231tools' enums (docs/uart.md §5.6). */
export const KNOWN_BOOTLOADERS: readonly KnownBootloader[] = [
  { crc: 0xe14191ba, name: "bl_bk7231n_1.0.1", chip: "bk7231n", personality: "FULL" },
  { crc: 0xf42f8c32, name: "bl_t1_2.0.0", chip: "bk7238", personality: "FULL" },
  { crc: 0x6beb0924, name: "bootloader_bk7238_uart1_v1.0.14", chip: "bk7238", personality: "FULL" },
  { crc: 0xf0231ef6, name: "bl_bk7231q (a)", chip: "bk7231q", personality: "BASIC_BEKEN" },
  { crc: 0xff5a3eac, name: "bl_bk7231q (b)", chip: "bk7231q", personality: "BASIC_BEKEN" },
  { crc: 0xc1eca871, name: "bl_bk7231s_1.0.1", chip: "bk7231t", personality: "BASIC_TUYA" },
  { crc: 0x4b31e44d, name: "bl_bk7231s_1.0.3", chip: "bk7231t", personality: "BASIC_TUYA" },
  { crc: 0xba54c1b8, name: "bl_bk7231s_1.0.5", chip: "bk7231t", personality: "BASIC_TUYA" },
  { crc: 0xe5cbc953, name: "bl_bk7231s_1.0.6", chip: "bk7231t", personality: "BASIC_TUYA" },
  { crc: 0x2739019f, name: "bl_bk7231u_1.0.6", chip: "bk7231u", personality: "BASIC_BEKEN" },
  { crc: 0x39f9b50c, name: "bl_bk7252_0.1.3", chip: "bk7252", personality: "BASIC_BEKEN" },
  // not in bk7231tools' table: measured on a public BL2028N (BK7231M-class, all-zero key) readout;
  // with the bypass key the bootloader is stored in the clear, so it cannot share the Tuya-key
  // build's CRC (docs/bootloaders.md)
  { crc: 0x698e014a, name: "bl2028n_zero_key", chip: "bk7231m", personality: "FULL" },
  {
    crc: 0xe3a27c26,
    name: "bootloader_7252_2M_uart1_log_20190828",
    chip: "bk7252",
    personality: "BASIC_BEKEN",
  },
];

/** Find a bootloader by CRC. */
export function bootloaderByCrc(crc: number): KnownBootloader | undefined {
  return KNOWN_BOOTLOADERS.find((b) => b.crc === crc >>> 0);
}
