/**
 * Getting a chip to talk and finding out what it is: the link-check loop with reset
 * strategies (docs/uart.md §3), the baud-rate handshake (§4.5) and identification by bootloader
 * CRC, chip ID, JEDEC ID and eFuse key (§4.16, §4.17, §5.2, §5.6, §5.7).
 *
 * @module
 */

import { bootloaderByCrc, type KnownBootloader } from "../chips/bootloaders.ts";
import { BOOTLOADER_END, chipById, type ChipProfile, CHIPS, formatKey } from "../chips/profiles.ts";
import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import type { ByteLink } from "../io/link.ts";
import { formatJedecId, lookupFlash, sizeFromId } from "../spi/jedec.ts";
import { SPI_OP } from "../spi/opcodes.ts";
import { UartClient, type WireEvent } from "./client.ts";
import { chipToStandard, crc32 } from "../crc.ts";
import { COMMANDS, type Personality } from "./table.ts";

/** The rate every Beken loader starts at (docs/uart.md §1). */
export const BOOT_BAUD = 115200;

/** What the user should do when a chip does not answer (printed by the CLI on a schedule). */
export const POWER_CYCLE_HINT = "reset the chip: short CEN to GND for 0.25 s or power-cycle it";

/** Something worth telling the user while connecting or identifying. */
export type SessionEvent =
  | { type: "reset"; strategy: "modem-pulse" | "reboot-text"; message: string }
  | { type: "hint"; message: string }
  | { type: "linked"; attempts: number; ms: number; message: string }
  | { type: "baud"; baud: number; message: string }
  | { type: "baud-retry"; baud: number; attempt: number; message: string }
  | { type: "baud-fallback"; requested: number; baud: number; message: string }
  | { type: "warning"; message: string };

/**
 * One way of getting the chip into its loader, and when to use it while the link-check loop
 * runs. A strategy with neither `everyMs` nor `everyTries` runs once.
 */
export interface ResetStrategy {
  /**
   * `modem-pulse`: RTS=1 DTR=1, 100 ms, DTR=0, 100 ms, RTS=0 (only on links with modem
   * lines); `reboot-text`: ASCII `reboot\r\n` for OpenBeken firmware; `power-cycle-hint`: emit
   * {@link POWER_CYCLE_HINT} for the user.
   */
  kind: "modem-pulse" | "reboot-text" | "power-cycle-hint";
  /** First run, in ms after the loop started. */
  startMs: number;
  /** Repeat period in ms. */
  everyMs?: number;
  /** Repeat after this many link checks. */
  everyTries?: number;
}

/**
 * The default schedule: a moment of plain link checks (the chip may already be listening),
 * then the firmware `reboot` command, a DTR/RTS reset, and a hint for the user.
 */
export const DEFAULT_RESET_STRATEGIES: readonly ResetStrategy[] = [
  { kind: "reboot-text", startMs: 200, everyTries: 600 },
  { kind: "modem-pulse", startMs: 500, everyMs: 4000 },
  { kind: "power-cycle-hint", startMs: 2000, everyMs: 8000 },
];

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Give up after this long (ms). Default 20 000. */
  linkTimeoutMs?: number;
  /** Reset schedule; default {@link DEFAULT_RESET_STRATEGIES}; `[]` for plain link checks. */
  resetStrategies?: readonly ResetStrategy[];
  /** Progress and hints. */
  onEvent?: (event: SessionEvent) => void;
  /** Wire tracing for the client that is created. */
  onWire?: (event: WireEvent) => void;
  /** Reuse this client instead of creating one. */
  client?: UartClient;
  /** Stops the link-check loop (Ctrl-C) with a `CANCELLED` error. */
  signal?: AbortSignal;
}

/** How long one link check waits for its reply (docs/uart.md §3.3, BT). */
const LINK_ATTEMPT_MS = 5;
/** Silence that ends the drain after a successful link check. */
const DRAIN_SILENCE_MS = 2;
const REBOOT_TEXT = new TextEncoder().encode("reboot\r\n");

/**
 * Link with the loader: send LinkCheck, wait up to 5 ms for its reply, repeat, running the
 * reset strategies on their schedule; then drain stale replies. Returns the client.
 *
 * Throws {@link FlashError} `NO_LINK` after `linkTimeoutMs`.
 *
 * @example
 * ```ts
 * import type { ByteLink } from "../io/link.ts";
 * declare const link: ByteLink;
 * const client = await connect(link, { onEvent: (e) => console.error(e.message) });
 * ```
 */
export async function connect(link: ByteLink, options: ConnectOptions = {}): Promise<UartClient> {
  const client = options.client ?? new UartClient(link, { onWire: options.onWire });
  const timeoutMs = options.linkTimeoutMs ?? 20_000;
  const heardBefore = client.stats.bytesIn;
  const ok = await linkUp(
    client,
    timeoutMs,
    options.resetStrategies ?? DEFAULT_RESET_STRATEGIES,
    options.onEvent,
    options.signal,
  );
  if (ok) return client;
  const heard = client.stats.bytesIn - heardBefore;
  if (heard > 0) {
    // something talks, but not the boot protocol: running firmware, another baud rate, noise
    throw new FlashError(
      "NO_LINK",
      `${link.name} sent ${heard} bytes in ${seconds(timeoutMs)}, but never a boot-loader reply`,
      "the chip is running its firmware or talks at another rate: hold CEN to GND for 0.25 s while this runs, and make sure nothing else drives its RX",
    );
  }
  throw new FlashError(
    "NO_LINK",
    `no reply to link check on ${link.name} after ${seconds(timeoutMs)}`,
    "reset the chip (CEN to GND) or power-cycle it while this runs; check TX→RX, RX→TX, GND and 3.3 V",
  );
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** The link-check loop; true when linked within `timeoutMs`. */
async function linkUp(
  client: UartClient,
  timeoutMs: number,
  strategies: readonly ResetStrategy[],
  onEvent?: (event: SessionEvent) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  const link = client.link;
  const clock = link.clock;
  const t0 = clock.now();
  const usable = strategies.filter((s) => s.kind !== "modem-pulse" || link.hasModemLines);
  const last = usable.map(() => ({ ran: false, at: 0, tries: 0 }));
  let tries = 0;
  while (clock.now() - t0 < timeoutMs) {
    if (signal?.aborted) {
      throw new FlashError(
        "CANCELLED",
        `linking on ${link.name} interrupted`,
        "run the command again when ready",
      );
    }
    const elapsed = clock.now() - t0;
    for (const [i, s] of usable.entries()) {
      const l = last[i];
      if (elapsed < s.startMs) continue;
      const due = !l.ran ||
        (s.everyMs !== undefined && elapsed - l.at >= s.everyMs) ||
        (s.everyTries !== undefined && tries - l.tries >= s.everyTries);
      if (!due) continue;
      Object.assign(l, { ran: true, at: elapsed, tries });
      await runStrategy(client, s, onEvent);
    }
    tries++;
    const before = clock.now();
    const reply = await client.tryCommand(COMMANDS.LinkCheck, {}, {
      timeoutMs: LINK_ATTEMPT_MS,
      flushFirst: false,
    });
    if (reply && reply.ok === 0) {
      await client.drain(DRAIN_SILENCE_MS);
      const ms = Math.round(clock.now() - t0);
      onEvent?.({ type: "linked", attempts: tries, ms, message: `linked with the loader after ${ms} ms` });
      return true;
    }
    if (clock.now() === before) await clock.sleep(LINK_ATTEMPT_MS);
  }
  return false;
}

async function runStrategy(
  client: UartClient,
  s: ResetStrategy,
  onEvent?: (event: SessionEvent) => void,
): Promise<void> {
  const link = client.link;
  switch (s.kind) {
    case "modem-pulse":
      onEvent?.({ type: "reset", strategy: s.kind, message: "resetting the chip with DTR/RTS" });
      await client.linkOp(() => link.setSignals({ dtr: true, rts: true }));
      await link.clock.sleep(100);
      await client.linkOp(() => link.setSignals({ dtr: false, rts: true }));
      await link.clock.sleep(100);
      await client.linkOp(() => link.setSignals({ dtr: false, rts: false }));
      return;
    case "reboot-text":
      onEvent?.({ type: "reset", strategy: s.kind, message: "sending `reboot` for OpenBeken firmware" });
      await client.writeRaw(REBOOT_TEXT);
      return;
    case "power-cycle-hint":
      onEvent?.({ type: "hint", message: POWER_CYCLE_HINT });
      return;
  }
}

/** Options of {@link switchBaud}. */
export interface SwitchBaudOptions {
  /** Attempts before falling back to 115200 (default 3). */
  retries?: number;
  /** The delay byte of SetBaudRate, ms (default 20; the host switches after half of it). */
  delayMs?: number;
  /** Retry and fallback notices. */
  onEvent?: (event: SessionEvent) => void;
  /** How long to try re-linking after a failed attempt when the chip is lost (default 20 000). */
  relinkTimeoutMs?: number;
  /** Reset schedule for that re-link (default {@link DEFAULT_RESET_STRATEGIES}). */
  resetStrategies?: readonly ResetStrategy[];
  /** Stops that re-link (Ctrl-C) with a `CANCELLED` error. */
  signal?: AbortSignal;
}

/**
 * Move chip and host to `baud` (docs/uart.md §4.5): SetBaudRate at the old rate, drain, sleep
 * half the delay, reprogram the host, read the echo at the new rate. On failure the host goes
 * back to 115200, re-links, and tries again; after `retries` failures the session stays at
 * 115200 and a `baud-fallback` event says so. Returns the rate in use.
 *
 * Throws {@link FlashError} `NO_LINK` when the chip cannot be found again at any rate.
 */
export async function switchBaud(
  client: UartClient,
  baud: number,
  options: SwitchBaudOptions = {},
): Promise<number> {
  const link = client.link;
  if (baud === BOOT_BAUD && link.baud === BOOT_BAUD) return BOOT_BAUD;
  const retries = Math.max(1, options.retries ?? 3);
  const delayMs = Math.min(255, Math.max(0, Math.round(options.delayMs ?? 20)));
  const onEvent = options.onEvent;
  const old = link.baud;
  // an adapter that cannot do the rate is found out before the chip is told to switch
  const hostCan = await setHostBaud(link, baud);
  await client.linkOp(() => link.setBaud(old));
  if (!hostCan) {
    onEvent?.({
      type: "baud-fallback",
      requested: baud,
      baud: old,
      message: `the adapter on ${link.name} cannot do ${baud} baud: continuing at ${old} baud (slower)`,
    });
    return old;
  }
  for (let attempt = 1; attempt <= retries; attempt++) {
    const failure = await trySetBaud(client, baud, delayMs);
    if (!failure) {
      onEvent?.({ type: "baud", baud, message: `switched to ${baud} baud` });
      return baud;
    }
    onEvent?.({
      type: "baud-retry",
      baud,
      attempt,
      message: `switching to ${baud} baud failed (${failure}); attempt ${attempt} of ${retries}`,
    });
    await recover(client, baud, delayMs, options);
    if (attempt < retries) await link.clock.sleep(50);
  }
  if (baud === BOOT_BAUD) {
    throw new FlashError(
      "NO_LINK",
      `the chip on ${link.name} does not confirm ${BOOT_BAUD} baud`,
      "reset the chip (CEN to GND) or power-cycle it and run again",
    );
  }
  onEvent?.({
    type: "baud-fallback",
    requested: baud,
    baud: BOOT_BAUD,
    message:
      `could not switch to ${baud} baud after ${retries} tries: continuing at ${BOOT_BAUD} baud (slower)`,
  });
  return BOOT_BAUD;
}

/** One SetBaudRate handshake; returns why it failed, or null on success. */
async function trySetBaud(client: UartClient, baud: number, delayMs: number): Promise<string | null> {
  const link = client.link;
  try {
    await client.command(COMMANDS.SetBaudRate, { baud, delay: delayMs }, {
      afterWrite: async () => {
        await link.drain();
        await link.clock.sleep(delayMs / 2);
        await link.setBaud(baud);
      },
    });
    return null;
  } catch (e) {
    if (e instanceof FlashError && e.code === "DISCONNECTED") throw e;
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * After a failed handshake: find the chip at 115200; failing that at the new rate (the chip
 * switched but its echo was lost), and bring it back; failing that, re-link with resets.
 */
async function recover(client: UartClient, baud: number, delayMs: number, options: SwitchBaudOptions) {
  const link = client.link;
  const quickMs = 300;
  if (await setHostBaud(link, BOOT_BAUD) && await linkUp(client, quickMs, [])) return;
  if (baud !== BOOT_BAUD && await setHostBaud(link, baud) && await linkUp(client, quickMs, [])) {
    const back = await trySetBaud(client, BOOT_BAUD, delayMs);
    if (!back) return;
  }
  await setHostBaud(link, BOOT_BAUD);
  const again = await linkUp(
    client,
    options.relinkTimeoutMs ?? 20_000,
    options.resetStrategies ?? DEFAULT_RESET_STRATEGIES,
    options.onEvent,
    options.signal,
  );
  if (!again) {
    throw new FlashError(
      "NO_LINK",
      `lost the chip on ${link.name} while switching to ${baud} baud`,
      `reset the chip (CEN to GND) or power-cycle it, then run again with --baud ${BOOT_BAUD}`,
    );
  }
}

async function setHostBaud(link: ByteLink, baud: number): Promise<boolean> {
  try {
    await link.setBaud(baud);
    return true;
  } catch {
    return false;
  }
}

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
/** eFuse control register: byte address in bits 8..12, start bit 0 (docs/uart.md §4.16). */
export const EFUSE_CTRL = 0x00800074;
/** eFuse read-out register: bit 8 valid, bits 0..7 the byte. */
export const EFUSE_OPTR = 0x00800078;
/** The Tuya key BK7231N chips carry (docs/uart.md §4.16). */
export const TUYA_KEY: readonly [number, number, number, number] = [
  0x510fb093,
  0xa3cbeadc,
  0x5993a17e,
  0xc7adeb03,
];

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

  const bootCrc = chipToStandard(
    (await client.command(COMMANDS.CheckCRC, { start: 0, end: 256 })).crc as number,
  );
  await linkCheck(client);
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
    .crc as number;
  await linkCheck(client);
  const page = (await client.command(COMMANDS.FlashRead4K, { addr: BOOTLOADER_END })).data as Uint8Array;
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
 * Find the flash size by the address wrap (docs/uart.md §5.2): the flash decodes only the address
 * bits it has, so at the true size the CRC of `[size, size + 256]` equals the bootloader CRC
 * measured at address 0. Returns 0 when no candidate size matched.
 */
async function probeWrapSize(client: UartClient, bootCrc: number, personality: Personality): Promise<number> {
  for (let size = 0x80000; size <= 0x1000000; size *= 2) {
    // a reply garbled into another value would skip the true size and land on its alias, twice
    // as big: a mismatch is asked once more (a garbled reply cannot fake a match)
    for (let ask = 0; ask < 2; ask++) {
      const raw = (await client.command(COMMANDS.CheckCRC, { start: size, end: size + 256 })).crc as number;
      if (personality !== "FULL") await linkCheck(client);
      if (chipToStandard(raw) === bootCrc) return size;
    }
  }
  return 0;
}

interface FullContext {
  requested?: ChipProfile;
  known?: KnownBootloader;
  bootCrc: number;
  warn: (message: string) => void;
  wrongChip: (cause: string, remedy: string) => void;
  override: boolean;
  warnings: string[];
}

async function identifyFull(client: UartClient, ctx: FullContext): Promise<ChipIdentity> {
  const { requested, known, warn } = ctx;
  const readReg = async (addr: number) => (await client.command(COMMANDS.ReadReg, { addr })).value as number;

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

  const mid = (await client.command(COMMANDS.FlashGetMID, { spiCmd: SPI_OP.READ_ID })).id as Uint8Array;
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

function sameKey(a: readonly number[] | null, b: readonly number[]): boolean {
  return a !== null && a.every((w, i) => w >>> 0 === b[i] >>> 0);
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

/**
 * The N/M guard (docs/uart.md §5.7), both ways. A key that is exactly another chip's expected key
 * (`keyChip`: the Tuya key on a chip asked for as BK7231M) is refused in either mode: the
 * efuse says which chip this is, and a Tuya-key bootloader and BK7231M firmware do not mix
 * (libretiny#262). The GUI only warns in M mode; it also warns for keys that name no chip,
 * and so does this guard in a "warn" mode.
 */
function checkKey(
  profile: ChipProfile,
  key: [number, number, number, number] | null,
  ctx: FullContext,
  keyChip: ChipProfile | null,
): void {
  if (!profile.key || profile.key.check === "none" || !key) return;
  if (sameKey(key, profile.key.words)) return;
  const zero = key.every((w) => w === 0);
  const tuya = sameKey(key, TUYA_KEY);
  if (keyChip && keyChip.id !== profile.id && profile.key.check === "warn") {
    const cause = `this chip's key ${
      formatKey(key)
    } is the ${keyChip.name} key: it is a ${keyChip.name}, not a ${profile.name}`;
    if (ctx.override) {
      ctx.warn(`${cause} (continuing: key check overridden)`);
      return;
    }
    throw new FlashError(
      "WRONG_KEY",
      cause,
      `use --chip ${keyChip.id} (or --skip-key-check if you are sure it is a ${profile.name})`,
    );
  }
  if (profile.key.check === "warn") {
    const other = tuya
      ? CHIPS.find((c) => c.key && sameKey(c.key.words, TUYA_KEY) && c.chipId === profile.chipId)
      : null;
    ctx.warn(
      other
        ? `this chip carries the Tuya key: it is a ${other.name}; consider --chip ${other.id}`
        : `non-standard key ${formatKey(key)} for ${profile.name} (all zeros expected)`,
    );
    return;
  }
  const cause = zero
    ? "this chip's key is all zeros: it is a BK7231M/BL2028N"
    : `this chip's key ${formatKey(key)} is not the ${profile.name} key ${formatKey(profile.key.words)}`;
  const alt = zero
    ? CHIPS.find((c) =>
      c.key && c.chipId === profile.chipId && c.id !== profile.id && c.key.words.every((w) => w === 0)
    )
    : null;
  if (ctx.override) {
    ctx.warn(`${cause} (continuing: key check overridden)`);
    return;
  }
  throw new FlashError(
    "WRONG_KEY",
    cause,
    alt
      ? `use --chip ${alt.id}`
      : "check the chip mode (--chip), or pass --skip-key-check if this key is expected",
  );
}

/** Read eFuse bytes 0..15 (docs/uart.md §4.16) and return them as four little-endian words. */
export async function readKey(client: UartClient): Promise<[number, number, number, number]> {
  const bytes = new Uint8Array(16);
  for (let a = 0; a < 16; a++) bytes[a] = await readEfuseByte(client, a);
  const dv = new DataView(bytes.buffer);
  return [0, 4, 8, 12].map((o) => dv.getUint32(o, true)) as [number, number, number, number];
}

/** One eFuse byte through the SCTRL state machine. */
export async function readEfuseByte(client: UartClient, addr: number): Promise<number> {
  const readReg = async (a: number) => (await client.command(COMMANDS.ReadReg, { addr: a })).value as number;
  const ctrl = ((await readReg(EFUSE_CTRL)) & ~0x1f02) | ((addr & 0x1f) << 8) | 1;
  await client.command(COMMANDS.WriteReg, { addr: EFUSE_CTRL, value: ctrl >>> 0 });
  const clock = client.link.clock;
  const deadline = clock.now() + 1000;
  while ((await readReg(EFUSE_CTRL)) & 1) {
    if (clock.now() >= deadline) {
      throw new FlashError(
        "TIMEOUT",
        `eFuse byte ${addr} read did not finish within 1 s on ${client.link.name}`,
        "power-cycle the chip and run again",
      );
    }
  }
  const v = await readReg(EFUSE_OPTR);
  if (!(v & 0x100)) {
    throw new FlashError(
      "BAD_REPLY",
      `eFuse byte ${addr} read came back invalid (0x800078 = ${hex(v)})`,
      "power-cycle the chip and run again; eFuse reads may be disabled on this chip",
    );
  }
  return v & 0xff;
}
