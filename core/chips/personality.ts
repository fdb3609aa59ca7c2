/**
 * Which boot-loader protocol a chip speaks (docs/uart.md §4): a chip profile names one, the
 * UART command table says which commands each one answers.
 *
 * @module
 */

/**
 * Loader personalities: `FULL` is the BootROM protocol (BK7231N/M, BK7238, BK7236, BK7252N,
 * BK7258), `BASIC_TUYA` the Tuya second-stage loader of BK7231T/S, `BASIC_BEKEN` the Beken
 * second-stage loader of BK7231U/Q and BK7252.
 */
export type Personality = "FULL" | "BASIC_TUYA" | "BASIC_BEKEN";

/** Every personality, in table order. */
export const PERSONALITIES: readonly Personality[] = ["FULL", "BASIC_TUYA", "BASIC_BEKEN"];
