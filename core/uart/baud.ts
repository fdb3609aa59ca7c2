/**
 * Baud rates as the chip's UART makes them: the divisor is `clock / baud − 1`, an integer, so
 * the real rate is `clock / floor(clock / baud)` (docs/silicon.md §2). A rate whose real value is
 * too far from what the host adapter sends gives garbage, so a rate the loader cannot produce is
 * refused before anything is sent.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { UART_CLOCK_HZ } from "../chips/loaders.ts";

/**
 * Largest relative difference between two UARTs' rates at which bytes still decode (8N1: the
 * stop bit is sampled 9.5 bit times after the start edge; about 5 % total, half of it for each
 * side's error and the sampling point). One value for the emulator's wire and the client.
 */
export const BAUD_TOLERANCE = 0.03;

/** The rate every Beken loader starts at. */
export const MIN_WORKING_BAUD = 115200;

/** Rates clients commonly offer (the GUI's list), for naming alternatives. */
export const COMMON_BAUDS: readonly number[] = [
  115200,
  230400,
  460800,
  500000,
  921600,
  1000000,
  1500000,
  2000000,
];

/**
 * The rate a UART clocked at `clockHz` really produces when asked for `baud`.
 *
 * @example
 * ```ts
 * realBaud(921600); // 928571
 * realBaud(3000000); // 3250000
 * ```
 */
export function realBaud(baud: number, clockHz = UART_CLOCK_HZ): number {
  const div = Math.floor(clockHz / baud);
  return div < 1 ? Infinity : Math.round(clockHz / div);
}

/** Relative error of the real rate against the asked one (positive: the chip is faster). */
export function baudError(baud: number, clockHz = UART_CLOCK_HZ): number {
  return realBaud(baud, clockHz) / baud - 1;
}

/** Whether a host at `baud` and a chip asked for `baud` understand each other. */
export function baudWorks(baud: number, clockHz = UART_CLOCK_HZ): boolean {
  return baud >= MIN_WORKING_BAUD && Math.abs(baudError(baud, clockHz)) < BAUD_TOLERANCE;
}

/** Whether two UARTs at these rates decode each other's bytes. */
export function baudsMatch(a: number, b: number): boolean {
  return Math.abs(a - b) / Math.max(a, b) < BAUD_TOLERANCE;
}

/** The nearest rates adapters commonly offer that work, below and above `baud`. */
export function nearestWorkingBauds(baud: number, clockHz = UART_CLOCK_HZ): number[] {
  const pool = COMMON_BAUDS.filter((b) => baudWorks(b, clockHz));
  const below = pool.filter((b) => b < baud).at(-1);
  const above = pool.find((b) => b > baud);
  return [below, above].filter((b): b is number => b !== undefined);
}

/**
 * Check a `--baud` value; throws {@link FlashError} `USAGE` naming the nearest rates that work.
 *
 * @example
 * ```ts
 * checkBaud(2000000); // ok
 * checkBaud(3000000); // throws: the chip makes 3 250 000 (+8.3 %): use 2000000
 * ```
 */
export function checkBaud(baud: number, clockHz = UART_CLOCK_HZ): void {
  const near = nearestWorkingBauds(baud, clockHz);
  const remedy = `use ${
    near.map(String).join(" or ")
  }; \`deno task flash baud-rates\` lists what each rate really is`;
  if (!Number.isSafeInteger(baud) || baud < MIN_WORKING_BAUD) {
    throw new FlashError(
      "USAGE",
      `--baud ${baud} is below ${MIN_WORKING_BAUD}, the rate the loader starts at`,
      `use ${MIN_WORKING_BAUD} or more (921600 is the default)`,
    );
  }
  if (!baudWorks(baud, clockHz)) {
    const real = realBaud(baud, clockHz);
    const pct = (baudError(baud, clockHz) * 100).toFixed(1);
    throw new FlashError(
      "USAGE",
      `--baud ${baud}: the chip's ${clockHz / 1e6} MHz UART makes ${
        Number.isFinite(real) ? real : "no such rate"
      } (${Number(pct) > 0 ? "+" : ""}${pct} %), which the adapter cannot decode`,
      remedy,
    );
  }
}

/** One row of the rate list: asked, real, error, usable. */
export interface BaudRow {
  baud: number;
  real: number;
  errorPercent: number;
  works: boolean;
}

/** The rate list (`baud-rates`): common rates and what the chip makes of each. */
export function baudTable(
  bauds: readonly number[] = [...COMMON_BAUDS, 3000000],
  clockHz = UART_CLOCK_HZ,
): BaudRow[] {
  return bauds.map((baud) => ({
    baud,
    real: realBaud(baud, clockHz),
    errorPercent: Math.round(baudError(baud, clockHz) * 10000) / 100,
    works: baudWorks(baud, clockHz),
  }));
}
