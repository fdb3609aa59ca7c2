/**
 * How an emulated board wires its USB-UART adapter's modem lines to the chip's CEN (reset) pin.
 * Auto-reset boards and flashing jigs usually tie RTS to CEN (asserted RTS holds the chip in
 * reset; releasing it restarts the chip into its boot window); some use DTR; many wire neither.
 *
 * @module
 */

/** Which modem line drives CEN. */
export type ResetLine = "rts" | "dtr" | "none";

/** The choices, for option parsing. */
export const RESET_LINES: readonly ResetLine[] = ["rts", "dtr", "none"];

/**
 * The lines as the chip model sees them: it takes RTS as CEN (`UartDevice.signals`), so with
 * DTR wiring DTR is handed over as RTS. Null when nothing reaches the chip.
 */
export function chipLines(
  wiring: ResetLine,
  lines: { dtr: boolean; rts: boolean },
): { dtr: boolean; rts: boolean } | null {
  switch (wiring) {
    case "rts":
      return { dtr: lines.dtr, rts: lines.rts };
    case "dtr":
      return { dtr: lines.rts, rts: lines.dtr };
    case "none":
      return null;
  }
}
