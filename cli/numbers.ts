/**
 * Numbers and durations as users type them: `0x11000`, `69632`, `4K`, `2M`, `0x1000K`;
 * `20s`, `500ms`, `20` (seconds).
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { checkBaud } from "../core/uart/baud.ts";

const SUFFIX: Record<string, number> = { "": 1, k: 1024, m: 1024 * 1024 };

/**
 * Parse a byte count or address.
 *
 * @example
 * ```ts
 * parseNumber("0x11000"); // 69632
 * parseNumber("2M"); // 2097152
 * parseNumber("4k"); // 4096
 * ```
 */
export function parseNumber(text: string, what = "number"): number {
  const m = /^\s*(0x[0-9a-f]+|\d+)\s*(k|m)?(?:i?b)?\s*$/i.exec(text);
  const value = m ? Number(m[1]) * SUFFIX[(m[2] ?? "").toLowerCase()] : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new FlashError(
      "USAGE",
      `${what} "${text}" is not a number`,
      "write numbers as decimal (69632), hex (0x11000) or with a K/M suffix (4K, 2M)",
    );
  }
  return value;
}

/**
 * Parse a duration into milliseconds; a bare number means seconds.
 *
 * @example
 * ```ts
 * parseDuration("20"); // 20000
 * parseDuration("500ms"); // 500
 * ```
 */
export function parseDuration(text: string, what = "duration"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$/i.exec(text);
  if (!m) {
    throw new FlashError(
      "USAGE",
      `${what} "${text}" is not a duration`,
      "write durations as 20, 20s or 500ms",
    );
  }
  const n = Number(m[1]);
  const unit = (m[2] ?? "s").toLowerCase();
  return Math.round(unit === "ms" ? n : unit === "min" ? n * 60_000 : n * 1000);
}

/**
 * Parse a count or rate that must be at least `min` (`--spi-attempts 0` would never try).
 *
 * @example
 * ```ts
 * parseAtLeast("3", 1, "--spi-attempts"); // 3
 * ```
 */
export function parseAtLeast(text: string, min: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseNumber(text, what);
  if (n < min || n > max) {
    throw new FlashError(
      "USAGE",
      `${what} ${text} is out of range`,
      max === Number.MAX_SAFE_INTEGER
        ? `pass ${what} ${min} or more`
        : `pass ${what} between ${min} and ${max}`,
    );
  }
  return n;
}

/** Parse a duration that must be longer than zero (`--link-timeout 0` would give up at once). */
export function parsePositiveDuration(text: string, what: string): number {
  const ms = parseDuration(text, what);
  if (ms <= 0) {
    throw new FlashError(
      "USAGE",
      `${what} ${text} is no time at all`,
      `pass ${what} a positive duration, e.g. 20s`,
    );
  }
  return ms;
}

/**
 * Parse `--baud`: a plain number (`921600`, `2000000`; `2M` is read as 2 000 000), refused
 * when the chip's UART cannot produce it (core/uart/baud.ts) before anything is sent.
 *
 * @example
 * ```ts
 * parseBaud("921600"); // 921600
 * parseBaud("3000000"); // throws USAGE naming 2000000
 * ```
 */
export function parseBaud(text: string, what = "--baud"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|m)?\s*$/i.exec(text);
  const scale = m?.[2] ? (m[2].toLowerCase() === "k" ? 1e3 : 1e6) : 1;
  const value = m ? Math.round(Number(m[1]) * scale) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new FlashError("USAGE", `${what} "${text}" is not a baud rate`, "write it as 921600 or 2000000");
  }
  checkBaud(value);
  return value;
}
