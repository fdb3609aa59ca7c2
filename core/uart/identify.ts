/**
 * Finding out what chip answers: identification by bootloader CRC, chip ID, JEDEC ID and eFuse
 * key (docs/uart.md §4.16, §4.17, §5.2, §5.6, §5.7); the N/M key guard it applies is in
 * `key_guard.ts`.
 *
 * @module
 */

import { bootloaderByCrc, type KnownBootloader } from "../chips/bootloaders.ts";
import { BOOTLOADER_END, chipById, type ChipProfile, CHIPS } from "../chips/profiles.ts";
import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import { formatJedecId, lookupFlash, sizeFromId } from "../spi/jedec.ts";
import { SPI_OP } from "../spi/opcodes.ts";
import type { UartClient } from "./client.ts";
import { chipToStandard, crc32 } from "../crc.ts";
import type { SessionEvent } from "./events.ts";
import { readKey } from "./efuse.ts";
import { COMMANDS, type Personality } from "./table.ts";
import { checkKey, type KeyGuardContext, sameKey } from "./key_guard.ts";

/** What {@link detect} found out. */
export interface ChipIdentity {
  /** The chip mode the session runs in. */
  profile: ChipProfile;
  /** Loader personality actually answering. */
  personality: Personality;
  /** Name of the recognised bootloader, or null when its CRC is not in the table. */
  bootloader: string | null;
  /** Standard CRC-32 of the bootloader's first 257 (FULL) or 256 bytes. */
  bootloaderCrc: number;
  /** SCTRL_CHIP_ID (0x800000) or, on the BK7236/BK7258 family, the device ID; null on BASIC loaders. */
  chipId: number | null;
  /** JEDEC ID in wire order, FULL loaders only. */
  flashId: Uint8Array | null;
  /** Flash size in bytes. */
  flashSize: number;
  /** eFuse key as four little-endian words, where the chip has one. */
  key: [number, number, number, number] | null;
  /** Non-fatal findings, one line each. */
  warnings: string[];
  /**
   * The chip the efuse key names when it names exactly one chip of this chip ID (the Tuya key:
   * BK7231N; all zeros: BK7231M), else null. It differs from `profile` only when the user
   * overrode the key check; backups are then named for this chip, not the mode asked for.
   */
  keyChip?: ChipProfile | null;
}

/** Options of {@link detect}. */
export interface DetectOptions {
  /** The chip mode the user asked for; detected from the chip when absent. */
  chip?: ChipProfile;
  /** Turn key and chip-ID mismatches into warnings (the GUI's "skip key check"). */
  overrideKeyCheck?: boolean;
  /** Warnings as they are found. */
  onEvent?: (event: SessionEvent) => void;
}

/** SCTRL chip-ID register (docs/uart.md §4.17). */
export const CHIP_ID_REG = 0x00800000;
/** Device-ID register of the BK7236/BK7258 family. */
export const DEVICE_ID_REG = 0x44010004;
/**
 * Identify the chip on a linked client and set the client's personality. Order as BT/GUI
 * (docs/uart.md §4.18): CheckCRC(0, 256) names the bootloader (a LinkCheck follows in case the
 * loader has the CRC protect lock); an unknown CRC is settled by the 257/256-byte probe at
 * 0x11000; FULL loaders then give chip ID, JEDEC ID and (where the profile has an eFuse) the
 * key; BASIC loaders get their flash size from the address wrap.
 *
 * Throws {@link FlashError} `WRONG_CHIP` or `WRONG_KEY` when the chip contradicts
 * `options.chip`; `overrideKeyCheck` turns key, chip-ID and bootloader-chip mismatches into
 * warnings, but not a loader of another protocol.
 */
export async function detect(client: UartClient, options: DetectOptions = {}): Promise<ChipIdentity> {
  // identification only reads, so a lost or garbled reply is simply asked for again
  const saved = client.attempts;
  client.attempts = Math.max(saved, DETECT_ATTEMPTS);
  try {
    return await identify(client, options);
  } finally {
    client.attempts = saved;
  }
}

/** Attempts per identification command on a timeout. */
const DETECT_ATTEMPTS = 3;

async function identify(client: UartClient, options: DetectOptions): Promise<ChipIdentity> {
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    options.onEvent?.({ type: "warning", message });
  };
  const requested = options.chip;
  const override = options.overrideKeyCheck ?? false;
  client.personality = null;

  const bootCrc = await measureBootCrc(client);
  const known = bootloaderByCrc(bootCrc);
  let personality: Personality;
  if (known) personality = known.personality;
  else {
    personality = await probePersonality(client, requested);
    warn(
      `unknown bootloader (CRC ${hex(bootCrc)}): ${personality === "FULL" ? "BootROM" : "basic"} protocol`,
    );
  }
  client.personality = personality;

  const wrongChip = (cause: string, remedy: string) => {
    if (override) warn(`${cause} (ignored: key check overridden)`);
    else throw new FlashError("WRONG_CHIP", cause, remedy);
  };

  if (requested && !samePersonality(requested, personality, known)) {
    // a different protocol cannot be talked past, so this one is not overridable
    const right = profileForLoader(personality, known);
    throw new FlashError(
      "WRONG_CHIP",
      `this chip runs ${loaderName(personality, known)}, not the ${requested.name} loader`,
      right ? `use --chip ${right.id}` : `use a --chip whose loader is ${personality}`,
    );
  } else if (requested && known && personality !== "FULL") {
    const blChip = chipById(known.chip);
    if (blChip && blChip.id !== requested.id) {
      wrongChip(
        `this chip's bootloader ${known.name} belongs to a ${blChip.name}, not a ${requested.name}`,
        `use --chip ${blChip.id}`,
      );
    }
  }

  if (personality === "FULL") {
    return await identifyFull(client, { requested, known, bootCrc, warn, wrongChip, override, warnings });
  }
  let profile = requested ?? profileForLoader(personality, known);
  if (!profile) {
    profile = CHIPS.find((c) => c.personality === personality)!;
    warn(`assuming ${profile.name}; pass --chip to be explicit`);
  }
  let flashSize = await probeWrapSize(client, bootCrc, personality);
  if (!flashSize) {
    flashSize = profile.flashSize;
    warn(`could not measure the flash size by address wrap; assuming ${flashSize / 0x100000} MiB`);
  }
  return {
    profile,
    personality,
    bootloader: known?.name ?? null,
    bootloaderCrc: bootCrc,
    chipId: null,
    flashId: null,
    flashSize,
    key: null,
    warnings,
  };
}

async function linkCheck(client: UartClient): Promise<void> {
  await client.command(COMMANDS.LinkCheck, {});
}

/** docs/uart.md §5.6: CRC of 0x11000..0x11100 against 257 (inclusive end) or 256 bytes read locally. */
async function probePersonality(client: UartClient, requested?: ChipProfile): Promise<Personality> {
  const raw = (await client.command(COMMANDS.CheckCRC, { start: BOOTLOADER_END, end: BOOTLOADER_END + 256 }))
    .crc;
  await linkCheck(client);
  const page = (await client.command(COMMANDS.FlashRead4K, { addr: BOOTLOADER_END })).data;
  const crc = chipToStandard(raw);
  if (crc === crc32(page.subarray(0, 257))) return "FULL";
  if (crc === crc32(page.subarray(0, 256))) {
    return requested && requested.personality !== "FULL" ? requested.personality : "BASIC_BEKEN";
  }
  throw new FlashError(
    "BAD_REPLY",
    `CRC mismatch while checking the loader type on ${client.link.name}`,
    "the link is unreliable: check wiring and power, then run again (at a lower --baud)",
  );
}

function samePersonality(requested: ChipProfile, detected: Personality, known?: KnownBootloader): boolean {
  if (requested.personality === detected) return true;
  // without a recognised bootloader the probe only tells FULL from basic
  return !known && detected !== "FULL" && requested.personality !== "FULL";
}

function profileForLoader(personality: Personality, known?: KnownBootloader): ChipProfile | undefined {
  if (known) {
    const p = chipById(known.chip);
    if (p) return p;
  }
  return personality === "FULL" ? undefined : CHIPS.find((c) => c.personality === personality);
}

function loaderName(personality: Personality, known?: KnownBootloader): string {
  if (known) return `the ${known.name} bootloader (${personality})`;
  return personality === "FULL" ? "a BootROM loader" : "a basic (Tuya/Beken) bootloader";
}

/**
 * The CRC of the bootloader's first 256 bytes. A CheckCRC reply carries no checksum of its own,
 * and the wrap probe below takes this value as the truth, so a value that names no known
 * bootloader is asked again until two replies agree (at most four asks; then the last).
 */
async function measureBootCrc(client: UartClient): Promise<number> {
  const seen: number[] = [];
  for (let ask = 0; ask < 4; ask++) {
    const crc = chipToStandard((await client.command(COMMANDS.CheckCRC, { start: 0, end: 256 })).crc);
    await linkCheck(client);
    if ((ask === 0 && bootloaderByCrc(crc)) || seen.includes(crc)) return crc;
    seen.push(crc);
  }
  return seen[seen.length - 1];
}

/**
 * Find the flash size by the address wrap (docs/uart.md §5.2): the flash decodes only the address
 * bits it has, so at the true size the CRC of `[size, size + 256]` equals the bootloader CRC
 * measured at address 0. Returns 0 when no candidate size matched.
 */
async function probeWrapSize(client: UartClient, bootCrc: number, personality: Personality): Promise<number> {
  for (let size = 0x80000; size <= 0x1000000; size *= 2) {
    // a reply garbled into another value would skip the true size and land on its alias, twice
    // as big: a mismatch is asked once more (a garbled reply cannot fake a match)
    for (let ask = 0; ask < 2; ask++) {
      const raw = (await client.command(COMMANDS.CheckCRC, { start: size, end: size + 256 })).crc;
      if (personality !== "FULL") await linkCheck(client);
      if (chipToStandard(raw) === bootCrc) return size;
    }
  }
  return 0;
}

interface FullContext extends KeyGuardContext {
  requested?: ChipProfile;
  known?: KnownBootloader;
  bootCrc: number;
  wrongChip: (cause: string, remedy: string) => void;
  warnings: string[];
}

async function identifyFull(client: UartClient, ctx: FullContext): Promise<ChipIdentity> {
  const { requested, known, warn } = ctx;
  const readReg = async (addr: number) => (await client.command(COMMANDS.ReadReg, { addr })).value;

  let chipId: number;
  let candidates: ChipProfile[];
  const full = CHIPS.filter((c) => c.personality === "FULL");
  if ((requested?.deviceId ?? null) !== null) {
    chipId = await readReg(DEVICE_ID_REG);
    candidates = full.filter((c) => c.deviceId === chipId);
  } else {
    chipId = await readReg(CHIP_ID_REG);
    candidates = full.filter((c) => c.chipId === chipId);
    if (candidates.length === 0) {
      const dev = await readReg(DEVICE_ID_REG);
      const byDevice = full.filter((c) => c.deviceId === dev);
      if (byDevice.length > 0) {
        chipId = dev;
        candidates = byDevice;
      }
    }
  }
  if (requested && !candidates.includes(requested)) {
    const names = candidates.map((c) => c.name).join("/");
    const ids = candidates.map((c) => c.id);
    ctx.wrongChip(
      `chip ID ${hex(chipId)} ${names ? `is a ${names}` : "is not a known chip"}, not a ${requested.name}`,
      ids.length ? `use --chip ${ids.join(" or --chip ")}` : "check --chip against the chip's marking",
    );
  }

  const mid = (await client.command(COMMANDS.FlashGetMID, { spiCmd: SPI_OP.READ_ID })).id;
  const flashId = Uint8Array.from(mid);
  let flashSize = sizeFromId(flashId);
  if (!lookupFlash(flashId)) warn(`flash ID ${formatJedecId(flashId)} is not in the table`);
  if (!flashSize) {
    flashSize = await probeWrapSize(client, ctx.bootCrc, "FULL");
    if (!flashSize) {
      flashSize = (requested ?? candidates[0])?.flashSize ?? 0x200000;
      warn(`flash size unknown for ID ${formatJedecId(flashId)}; assuming ${flashSize / 0x100000} MiB`);
    }
  }

  const base = requested ?? (known ? chipById(known.chip) : undefined) ?? candidates[0];
  const efuseSize = (base ?? candidates[0])?.efuseSize ?? 0;
  const key = efuseSize > 0 ? await readKey(client) : null;

  let profile = requested ?? choose(candidates, key, flashSize, known, warn, chipId);
  if (!profile) {
    profile = base ?? full[0];
    warn(`chip ID ${hex(chipId)} is not in the chip table; assuming ${profile.name}; pass --chip`);
  }
  const keyChip = candidates.filter((c) => c.key && sameKey(key, c.key.words));
  if (requested) checkKey(requested, key, ctx, keyChip.length === 1 ? keyChip[0] : null);
  return {
    profile,
    personality: "FULL",
    bootloader: known?.name ?? null,
    bootloaderCrc: ctx.bootCrc,
    chipId,
    flashId,
    flashSize,
    key,
    warnings: ctx.warnings,
    keyChip: keyChip.length === 1 ? keyChip[0] : null,
  };
}

/**
 * Among chips sharing an ID: the one whose expected key the chip carries (BK7231N/M), else
 * the one whose default flash size matches (BK7236/BK7258, with a warning), else the one the
 * bootloader names, else the first (with a warning).
 */
function choose(
  candidates: ChipProfile[],
  key: [number, number, number, number] | null,
  flashSize: number,
  known: KnownBootloader | undefined,
  warn: (message: string) => void,
  chipId: number,
): ChipProfile | undefined {
  if (candidates.length <= 1) return candidates[0];
  const byKey = candidates.filter((c) => c.key && sameKey(key, c.key.words));
  if (byKey.length === 1) return byKey[0];
  const names = candidates.map((c) => c.name).join(" and ");
  const bySize = candidates.filter((c) => c.flashSize === flashSize);
  if (bySize.length === 1) {
    warn(
      `chip ID ${hex(chipId)} fits ${names}; the flash size suggests ${
        bySize[0].name
      }; pass --chip to be sure`,
    );
    return bySize[0];
  }
  const named = known ? candidates.find((c) => c.id === chipById(known.chip)?.id) : undefined;
  const pick = named ?? candidates[0];
  warn(`chip ID ${hex(chipId)} fits ${names}; assuming ${pick.name}; pass --chip to choose`);
  return pick;
}
