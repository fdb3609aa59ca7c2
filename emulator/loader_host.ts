/**
 * What the boot loader's dispatcher (`loader.ts`) works with: the flash it drives as the SPI
 * master, the chip services it calls into, and the shape of its answers.
 *
 * @module
 */

import type { LoaderFamily, SrLockQuirk } from "../core/chips/loaders.ts";
import type { Personality } from "../core/uart/table.ts";

/** What the loader needs from the flash model (the loader is the SPI master). */
export interface LoaderFlash {
  /** Flash size in bytes. */
  readonly size: number;
  /** JEDEC ID, wire order. */
  readonly jedecId: ArrayLike<number>;
  /** Read bytes (wrapping at the flash size). */
  read(addr: number, len: number): Uint8Array;
  /** Erase an aligned range; reports whether anything changed and when the flash is done. */
  eraseRange(
    addr: number,
    kind: "4k" | "32k" | "64k" | "chip",
    now: number,
  ): { changed: boolean; doneAt: number };
  /** Program bytes; reports when the flash is done. */
  program(addr: number, data: Uint8Array, now: number): { doneAt: number };
  /** A status register by opcode; at `now` it includes WIP/WEL (absent: the stored bits). */
  readSr(opcode: number, now?: number): number;
  /** Write status registers by opcode; reports when done and whether the part took it. */
  writeSr(opcode: number, bytes: Uint8Array, now: number): { doneAt: number; accepted: boolean };
  /** The range block protection currently covers (empty when `start === end`). */
  protectedRange(): { start: number; end: number };
  /** Status-register layout of the part. */
  readonly part: { layout: { bpShift: number; bpBits: number } };
  /** The stored status word (SR1 | SR2 << 8); setting it bypasses locks (a part's own quirk). */
  srWord: number;
}

/** Chip services the loader calls into (registers, reset, baud). */
export interface LoaderHost {
  /** The loader's protocol. */
  readonly personality: Personality;
  /** The loader family's behaviour (core/chips/loaders.ts). */
  readonly family: LoaderFamily;
  /** A flash-part quirk of this chip mode (SR lock after a no-op WRSR). */
  readonly srLockQuirk: SrLockQuirk | null;
  /** The chip's UART rate at time `t`. */
  baudAt(t: number): number;
  /** End of the window the loader refuses to touch (0: none). */
  readonly loaderProtectedEnd: number;
  /** Whether CheckCRC re-protects the flash (BASIC loaders). */
  readonly crcProtectLock: boolean;
  /** What ReadBootVersion answers, or null where unsupported. */
  readonly bootVersion: string | null;
  /** The flash the loader drives. */
  readonly flash: LoaderFlash;
  /** Chip-side CRC speed (bytes/s). */
  readonly crcBytesPerSec: number;
  /** A register as ReadReg reads it. */
  readReg(addr: number): number;
  /** A register write as WriteReg does it. */
  writeReg(addr: number, value: number): void;
  /** Reboot the chip at `at` (the loader's Reboot / RESET commands). */
  reboot(at: number): void;
  /** Switch the chip's UART to `baud` at time `at`. */
  switchBaud(baud: number, at: number): void;
  /** T-type "CRC protect lock" state (docs/uart.md §5.4). */
  lock: { protectFlag: boolean };
}

/** The loader's answer to one request. */
export interface LoaderReply {
  /** Reply bytes, or null when the command has no reply / is ignored. */
  bytes: Uint8Array | null;
  /** Time the reply may start (after flash/CRC work and baud switching). */
  at: number;
  /** Baud the reply is sent at, when it differs from the current one. */
  baud?: number;
  /** The command as decoded, for logs. */
  name: string;
}
