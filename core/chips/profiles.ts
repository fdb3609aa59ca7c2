/**
 * Chip profiles as data (docs/uart.md §5.1, §4.16, §4.17). A new chip mode is mostly a new entry
 * here: the flasher, the emulator and the HIL matrix all iterate over {@link CHIPS}.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { Personality } from "./personality.ts";

/** A flash partition. */
export interface Region {
  /** First byte of the partition. */
  start: number;
  /** Exclusive end. */
  end: number;
}

/** Everything the tool knows about one chip mode. */
export interface ChipProfile {
  /** Lower-case id used on the command line (`--chip bk7231n`, `virtual:bk7231n`). */
  id: string;
  /** Display name ("BK7231N"). */
  name: string;
  /** Other names this chip is sold under. */
  aliases: readonly string[];
  /** Boot-UART loader personality. */
  personality: Personality;
  /** CheckCRC end address is inclusive (BootROM) or exclusive (2nd-stage bootloaders). */
  crcEndInclusive: boolean;
  /**
   * Raw addresses below this are refused by the loader (T/U/BK7252 bootloaders), or 0 when
   * the loader protects nothing. Reads go through the address wrap (`A + flashSize`).
   */
  loaderProtectedEnd: number;
  /** After CheckCRC the loader re-protects flash until the next LinkCheck (docs/uart.md §5.4). */
  crcProtectLock: boolean;
  /** Value of SCTRL_CHIP_ID (0x00800000), where the loader can read registers. */
  chipId: number | null;
  /** Value of the device-ID register 0x44010004 on newer chips. */
  deviceId: number | null;
  /** Expected efuse key (four words), and how strictly it is checked. */
  key: { words: readonly [number, number, number, number]; check: "enforce" | "warn" | "none" } | null;
  /** eFuse bytes per chip (32 on BK7231N/M, BK7238, BK7252N); 0 when unreadable. */
  efuseSize: number;
  /** JEDEC ID (wire order M T C) of the flash most modules carry: the emulator's default. */
  defaultFlashId: readonly [number, number, number];
  /** Default flash size in bytes. */
  flashSize: number;
  /** Flash layout. */
  layout: {
    bootloader: Region;
    app: Region;
    /** RF calibration / MAC TLV sector. */
    rf: Region;
    /** OpenBeken config sector. */
    config: Region;
  };
  /** The bootloader the emulator's default image carries (a name from KNOWN_BOOTLOADERS), if known. */
  bootloader: string | null;
  /** ASCII answer to ReadBootVersion (Tuya loaders only). */
  bootVersion: string | null;
  /** Chip is served over the boot UART (false only for the pure SPI modes). */
  uart: boolean;
}

/** The eFuse key Tuya's BK7231N chips carry (docs/uart.md §4.16). */
export const TUYA_KEY: readonly [number, number, number, number] = [
  0x510fb093,
  0xa3cbeadc,
  0x5993a17e,
  0xc7adeb03,
];
const ZERO_KEY = [0, 0, 0, 0] as const;
const MiB = 1024 * 1024;

/** Bootloader window every Beken chip reserves (0x0..0x10FFF). */
export const BOOTLOADER_END = 0x11000;

function layout(size: number, rf: number, config: number) {
  return {
    bootloader: { start: 0, end: BOOTLOADER_END },
    app: { start: BOOTLOADER_END, end: rf },
    rf: { start: rf, end: rf + 0x1000 },
    config: { start: config, end: config + 0x1000 },
    size,
  };
}

function profile(
  p: Omit<ChipProfile, "layout" | "flashSize"> & { l: ReturnType<typeof layout> },
): ChipProfile {
  const { l, ...rest } = p;
  return {
    ...rest,
    flashSize: l.size,
    layout: { bootloader: l.bootloader, app: l.app, rf: l.rf, config: l.config },
  };
}

/** The chip profiles, in the order help text lists them. */
export const CHIPS: readonly ChipProfile[] = [
  profile({
    id: "bk7231t",
    name: "BK7231T",
    aliases: ["bk7231s", "wb2s", "wb3s"],
    personality: "BASIC_TUYA",
    crcEndInclusive: false,
    loaderProtectedEnd: BOOTLOADER_END,
    crcProtectLock: true,
    chipId: 0x7231a,
    deviceId: null,
    key: null,
    efuseSize: 0,
    defaultFlashId: [0x1c, 0x70, 0x15],
    l: layout(2 * MiB, 0x1e0000, 0x1e1000),
    bootloader: "bl_bk7231s_1.0.6",
    bootVersion: "BK7231S_1.0.6",
    uart: true,
  }),
  profile({
    id: "bk7231u",
    name: "BK7231U",
    aliases: ["bk7231q"],
    personality: "BASIC_BEKEN",
    crcEndInclusive: false,
    loaderProtectedEnd: BOOTLOADER_END,
    crcProtectLock: true,
    chipId: 0x0001,
    deviceId: null,
    key: null,
    efuseSize: 0,
    defaultFlashId: [0x1c, 0x70, 0x15],
    l: layout(2 * MiB, 0x1e0000, 0x1e1000),
    bootloader: "bl_bk7231u_1.0.6",
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7231n",
    name: "BK7231N",
    aliases: ["cb2s", "cb3s", "bl2028n_tuya"],
    personality: "FULL",
    crcEndInclusive: true,
    loaderProtectedEnd: 0,
    crcProtectLock: false,
    chipId: 0x7231c,
    deviceId: null,
    key: { words: TUYA_KEY, check: "enforce" },
    efuseSize: 32,
    defaultFlashId: [0xeb, 0x60, 0x15],
    l: layout(2 * MiB, 0x1d0000, 0x1d1000),
    bootloader: "bl_bk7231n_1.0.1",
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7231m",
    name: "BK7231M",
    aliases: ["bl2028n"],
    personality: "FULL",
    crcEndInclusive: true,
    loaderProtectedEnd: 0,
    crcProtectLock: false,
    chipId: 0x7231c,
    deviceId: null,
    key: { words: ZERO_KEY, check: "warn" },
    efuseSize: 32,
    defaultFlashId: [0xeb, 0x60, 0x15],
    l: layout(2 * MiB, 0x1d0000, 0x1d1000),
    bootloader: "bl2028n_zero_key",
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7252",
    name: "BK7252",
    aliases: ["bk7252u"],
    personality: "BASIC_BEKEN",
    crcEndInclusive: false,
    loaderProtectedEnd: BOOTLOADER_END,
    crcProtectLock: true,
    chipId: 0x7252,
    deviceId: null,
    key: null,
    efuseSize: 0,
    defaultFlashId: [0x0b, 0x40, 0x16],
    l: layout(4 * MiB, 0x1e0000, 0x1e1000),
    bootloader: "bl_bk7252_0.1.3",
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7252n",
    name: "BK7252N",
    aliases: ["t4"],
    personality: "FULL",
    crcEndInclusive: true,
    loaderProtectedEnd: 0,
    crcProtectLock: false,
    chipId: 0x7252a,
    deviceId: null,
    key: null,
    efuseSize: 32,
    defaultFlashId: [0x0b, 0x40, 0x16],
    l: layout(4 * MiB, 0x1e0000, 0x1e1000),
    bootloader: null,
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7238",
    name: "BK7238",
    aliases: ["t1"],
    personality: "FULL",
    crcEndInclusive: true,
    loaderProtectedEnd: 0,
    crcProtectLock: false,
    chipId: 0x7238,
    deviceId: null,
    key: null,
    efuseSize: 32,
    defaultFlashId: [0x85, 0x42, 0x15],
    l: layout(2 * MiB, 0x1e0000, 0x1e1000),
    bootloader: "bootloader_bk7238_uart1_v1.0.14",
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7236",
    name: "BK7236",
    aliases: ["t3"],
    personality: "FULL",
    crcEndInclusive: true,
    loaderProtectedEnd: 0,
    crcProtectLock: false,
    chipId: null,
    deviceId: 0x7236,
    key: null,
    efuseSize: 0,
    defaultFlashId: [0xc8, 0x40, 0x16],
    l: layout(4 * MiB, 0x3e0000, 0x3e1000),
    bootloader: null,
    bootVersion: null,
    uart: true,
  }),
  profile({
    id: "bk7258",
    name: "BK7258",
    aliases: ["t5"],
    personality: "FULL",
    crcEndInclusive: true,
    loaderProtectedEnd: 0,
    crcProtectLock: false,
    chipId: null,
    deviceId: 0x7236,
    key: null,
    efuseSize: 0,
    defaultFlashId: [0xc8, 0x40, 0x17],
    l: layout(8 * MiB, 0x7e0000, 0x7e1000),
    bootloader: null,
    bootVersion: null,
    uart: true,
  }),
];

/** Find a profile by id or alias (case-insensitive). */
export function chipById(id: string): ChipProfile | undefined {
  const k = id.toLowerCase();
  return CHIPS.find((c) => c.id === k || c.aliases.includes(k));
}

/**
 * The profile `id` names (or an alias of it), for a chip the user typed.
 *
 * @throws {FlashError} code "USAGE" naming every chip mode, or `remedy` when given.
 */
export function requireChip(id: string, remedy?: string): ChipProfile {
  const p = chipById(id);
  if (!p) {
    throw new FlashError(
      "USAGE",
      `unknown chip "${id}"`,
      remedy ?? `use one of: ${CHIPS.map((c) => c.id).join(", ")}`,
    );
  }
  return p;
}

/** Format a key as four 8-digit lowercase hex words separated by spaces. */
export function formatKey(words: readonly number[]): string {
  return words.map((w) => (w >>> 0).toString(16).padStart(8, "0")).join(" ");
}
