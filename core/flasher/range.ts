/**
 * Address-range checks shared by every operation: inside the flash, sector alignment, and
 * the bootloader guard. Each refusal is a {@link FlashError} with a remedy.
 *
 * @module
 */

import { BOOTLOADER_END } from "../chips/profiles.ts";
import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import { SECTOR } from "../target.ts";

export { hex };

/** A size in human units ("2 MiB", "4 KiB", "300 bytes"). */
export function humanSize(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n >> 20} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n >> 10} KiB`;
  return `${n} bytes`;
}

/** Round down / up to a multiple of `unit`. */
export function alignDown(n: number, unit: number): number {
  return Math.floor(n / unit) * unit;
}

/** Round up to a multiple of `unit`. */
export function alignUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

/** Refuse a range that is empty, negative or reaches beyond the flash. */
export function checkInFlash(what: string, addr: number, size: number, flashSize: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0) {
    throw new FlashError(
      "BAD_RANGE",
      `${what} address ${addr} is not a valid flash address`,
      "pass --addr as a non-negative number, e.g. 0x11000",
    );
  }
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new FlashError(
      "BAD_RANGE",
      `${what} size ${size} is not a positive number of bytes`,
      "pass --size as a positive number, e.g. 4K or 0x1000",
    );
  }
  if (addr >= flashSize) {
    throw new FlashError(
      "BAD_RANGE",
      `${what} address ${hex(addr)} is beyond the end of the ${humanSize(flashSize)} flash (${
        hex(flashSize)
      })`,
      `use an address below ${hex(flashSize)}, or check --chip / the detected flash size`,
    );
  }
  if (addr + size > flashSize) {
    throw new FlashError(
      "BAD_RANGE",
      `${what} ${hex(addr)}..${hex(addr + size - 1)} runs past the end of the ${
        humanSize(flashSize)
      } flash (${hex(flashSize)})`,
      `shorten it to at most ${hex(flashSize - addr)} bytes at ${
        hex(addr)
      }, or check --chip / the detected flash size`,
    );
  }
}

/** Refuse an address or size that is not a multiple of 4 KiB (erase granularity). */
export function checkSectorAligned(what: string, addr: number, size: number): void {
  if (addr % SECTOR !== 0) {
    throw new FlashError(
      "BAD_RANGE",
      `${what} address ${hex(addr)} is not 4 KiB aligned`,
      `flash is erased in 4 KiB sectors: use an address that is a multiple of 0x1000, e.g. ${
        hex(alignDown(addr, SECTOR))
      }`,
    );
  }
  if (size % SECTOR !== 0) {
    throw new FlashError(
      "BAD_RANGE",
      `${what} size ${hex(size)} is not a multiple of 4 KiB`,
      `flash is erased in 4 KiB sectors: use a size that is a multiple of 0x1000, e.g. ${
        hex(alignUp(size, SECTOR))
      }`,
    );
  }
}

/** Which verb the guard message uses. */
export type GuardVerb = "write" | "erase";

/**
 * Refuse to touch the bootloader window `[0, end)` unless explicitly allowed.
 *
 * @example
 * ```ts
 * guardBootloader("write", 0, 0x20000, false); // throws BOOTLOADER_GUARD
 * guardBootloader("write", 0x11000, 0x20000, false); // fine
 * ```
 */
export function guardBootloader(
  verb: GuardVerb,
  addr: number,
  size: number,
  allow: boolean,
  end: number = BOOTLOADER_END,
): void {
  if (allow || addr >= end || size <= 0) return;
  const last = Math.min(addr + size, end) - 1;
  const flag = verb === "write" ? "write the app at --addr" : "erase from --addr";
  throw new FlashError(
    "BOOTLOADER_GUARD",
    `refusing to ${verb} ${hex(addr)}..${
      hex(last)
    }: that is the bootloader; a failed ${verb} there bricks the chip`,
    `${flag} ${hex(end)}, or pass --overwrite-bootloader if you really mean to (use SPI mode to recover)`,
  );
}
