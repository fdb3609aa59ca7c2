/**
 * Loader families as data: how each kind of Beken boot-UART loader behaves where silicon is less
 * kind than a protocol description (docs/silicon.md). The emulator follows these rows, and the
 * client reads the ones it must respect (read-ahead, partial-frame recovery, SetBaudRate delay,
 * baud quantisation). Three families:
 *
 * - `tu`: the second-stage ("BASIC") loader of BK7231T/U and BK7252, from a public loader source
 *   in two variants whose behaviour matches what clients see.
 * - `bootrom`: the BootROM ("FULL") loader of BK7231N/M, BK7252N and BK7238. No source is public;
 *   rows marked `known: false` are assumptions taken from the BK7236 loader it resembles.
 * - `bk7236`: Beken's BK7236/BK7258 download loader, whose source is public.
 *
 * @module
 */

import { BOOTLOADER_END, type ChipProfile, type Region } from "./profiles.ts";

/** Identifier of a loader family. */
export type LoaderFamilyId = "tu" | "bootrom" | "bk7236";

/** What happens to bytes that arrive while the loader is busy with a request and its reply. */
export type BusyBehaviour =
  /** Interrupt handler appends to a ring buffer of `size` bytes with no overflow check. */
  | { readonly kind: "ring"; readonly size: number; readonly variants: readonly number[] }
  /** Bytes are discarded until the reply has been sent in full. */
  | { readonly kind: "drop" };

/** How CheckCRC turns `(start, end)` into a byte count. */
export type CrcLengthRule =
  /** `end − start + 1` bytes (end inclusive). */
  | "inclusive"
  /** `end − start` bytes (end exclusive). */
  | "exclusive"
  /** `floor((end − start + 1) / 256)` chunks of 256 bytes: both end conventions agree on 256-multiples. */
  | "chunks256";

/** SetBaudRate: the loader switches its UART, waits `(delay + offsetMs) × scale` ms, then replies. */
export interface BaudDelayRule {
  /** Added to the request's delay argument (ms). */
  readonly offsetMs: number;
  /** Multiplies the sum: 2 where the loader waits in 2 ms steps. */
  readonly scale: number;
}

/** One loader family. */
export interface LoaderFamily {
  /** Which family. */
  readonly id: LoaderFamilyId;
  /** Display name. */
  readonly name: string;
  /** What happens to bytes that arrive while the loader is busy. */
  readonly busy: BusyBehaviour;
  /** Whether `busy` comes from a loader source (`true`) or is assumed (`false`). */
  readonly busyKnown: boolean;
  /**
   * A partial frame is abandoned after the line has been idle this long (ms); `null` when the
   * parser never gives up (it then eats later bytes as the rest of the old frame).
   */
  readonly frameTimeoutMs: number | null;
  /** CheckCRC length rule. */
  readonly crcLength: CrcLengthRule;
  /** An unknown or unsupported command gets status 7, or no answer at all. */
  readonly unknownCommand: "status7" | "silent";
  /** SetBaudRate reply delay. */
  readonly baudDelay: BaudDelayRule;
  /** WriteSR replies as soon as WREN + WRSR + WRDI are sent (WIP may still read 1). */
  readonly writeSrRepliesEarly: boolean;
  /** Write4K programs each 256-byte page as soon as it has arrived (overlapping the reception). */
  readonly write4kOverlap: boolean;
  /**
   * Ranges a write or erase must not overlap, and how the loader answers one that does:
   * `silence` (no reply at all) or `status6` (a refusal).
   */
  readonly forbidden: { readonly ranges: readonly Region[]; readonly answer: "silence" | "status6" };
  /** Commands beyond the common table: `bl2LinkCheck` is `01 E0 FC 01 02` → `… 03 00`. */
  readonly extraCommands: readonly "bl2LinkCheck"[];
  /** Time between taking up a request and the first reply byte (ms); no public measurement. */
  readonly replyMs: number;
  /** UART clock the baud divisor is taken from (Hz). */
  readonly uartClockHz: number;
}

/** A flash-part quirk seen on one chip mode's loader. */
export interface SrLockQuirk {
  /** JEDEC ID (wire order) of the part that shows it. */
  readonly flashId: readonly [number, number, number];
  /** Status word the part reads after a WRSR that did not change anything. */
  readonly lockedSr: number;
}

/** The 26 MHz UART clock of every BK72xx loader we know of. */
export const UART_CLOCK_HZ = 26_000_000;

/** The families (docs/silicon.md §2–§4). */
export const LOADER_FAMILIES: { readonly [K in LoaderFamilyId]: LoaderFamily & { readonly id: K } } = {
  tu: {
    id: "tu",
    name: "T/U second-stage loader",
    busy: { kind: "ring", size: 512, variants: [512, 4096] },
    busyKnown: true,
    frameTimeoutMs: null,
    crcLength: "chunks256",
    // the loader source and clients never show an answer to an unknown command
    unknownCommand: "silent",
    baudDelay: { offsetMs: 1, scale: 2 },
    writeSrRepliesEarly: false,
    write4kOverlap: false,
    forbidden: { ranges: [{ start: 0, end: BOOTLOADER_END }], answer: "status6" },
    extraCommands: [],
    replyMs: 0.05,
    uartClockHz: UART_CLOCK_HZ,
  },
  bootrom: {
    id: "bootrom",
    name: "BootROM loader",
    busy: { kind: "drop" },
    busyKnown: false,
    // unknown: assumed to eat later bytes like the T/U parser (the unkinder choice)
    frameTimeoutMs: null,
    crcLength: "inclusive",
    unknownCommand: "status7",
    baudDelay: { offsetMs: 1, scale: 1 },
    writeSrRepliesEarly: true,
    write4kOverlap: false,
    forbidden: { ranges: [], answer: "status6" },
    extraCommands: [],
    replyMs: 0.05,
    uartClockHz: UART_CLOCK_HZ,
  },
  bk7236: {
    id: "bk7236",
    name: "BK7236/BK7258 download loader",
    busy: { kind: "drop" },
    busyKnown: true,
    // 1000 polls of delay(20): the unit of delay() is not known; 20 ms is an assumption
    frameTimeoutMs: 20,
    crcLength: "inclusive",
    unknownCommand: "status7",
    baudDelay: { offsetMs: 1, scale: 1 },
    writeSrRepliesEarly: true,
    write4kOverlap: true,
    // partitions {0, 1, 3, 4} of the project's table: we only know the bootloader window for sure
    forbidden: { ranges: [{ start: 0, end: BOOTLOADER_END }], answer: "silence" },
    extraCommands: ["bl2LinkCheck"],
    replyMs: 0.05,
    uartClockHz: UART_CLOCK_HZ,
  },
};

/** Which family each chip mode's loader belongs to. */
const FAMILY_OF_CHIP: Readonly<Record<string, LoaderFamilyId>> = {
  bk7231t: "tu",
  bk7231u: "tu",
  bk7252: "tu",
  bk7231n: "bootrom",
  bk7231m: "bootrom",
  bk7252n: "bootrom",
  bk7238: "bootrom",
  bk7236: "bk7236",
  bk7258: "bk7236",
};

/** Flash-part quirks per chip mode (BKT PR #29: T1 bootloader 2.0.0 with a P25Q16HBK). */
const SR_LOCK_QUIRKS: Readonly<Record<string, SrLockQuirk>> = {
  bk7238: { flashId: [0x85, 0x20, 0x15], lockedSr: 0x7bfc },
};

/**
 * The loader family of a chip mode; a mode not in the table gets the family its personality
 * suggests.
 *
 * @example
 * ```ts
 * import { chipById } from "./profiles.ts";
 * loaderFamilyOf(chipById("bk7231t")!).crcLength; // "chunks256"
 * ```
 */
export function loaderFamilyOf(profile: Pick<ChipProfile, "id" | "personality">): LoaderFamily {
  const id = FAMILY_OF_CHIP[profile.id] ?? (profile.personality === "FULL" ? "bootrom" : "tu");
  return LOADER_FAMILIES[id];
}

/** The SR-lock quirk of a chip mode, if its flash part shows one. */
export function srLockQuirkOf(profile: Pick<ChipProfile, "id">): SrLockQuirk | null {
  return SR_LOCK_QUIRKS[profile.id] ?? null;
}

/**
 * Whether a loader is known to keep a request that arrives while it is still sending a reply:
 * only then may a client send the next request early (read-ahead).
 */
export function keepsQueuedRequests(family: LoaderFamily): boolean {
  return family.busyKnown && family.busy.kind === "ring";
}

/**
 * Bytes CheckCRC covers for `(start, end)` under a family's rule (unsigned arithmetic as the
 * loaders do; an `end` below `start` yields 0 here, where silicon would run for a very long time).
 */
export function crcLength(rule: CrcLengthRule, start: number, end: number): number {
  const span = (end >>> 0) - (start >>> 0);
  if (rule === "exclusive") return Math.max(0, span);
  if (span < 0) return 0;
  if (rule === "inclusive") return span + 1;
  return Math.floor((span + 1) / 256) * 256;
}

/** SetBaudRate reply delay (ms) for the delay byte `delay`. */
export function baudReplyDelayMs(rule: BaudDelayRule, delay: number): number {
  return (delay + rule.offsetMs) * rule.scale;
}
