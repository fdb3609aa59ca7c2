/**
 * Ways of getting a chip into its loader while the link-check loop runs (docs/uart.md §3): a
 * DTR/RTS pulse on CEN, the `reboot` text OpenBeken firmware obeys, or a hint to the user.
 *
 * @module
 */

import type { SessionEvent } from "./events.ts";
import type { UartClient } from "./client.ts";

/** What the user should do when a chip does not answer (printed by the CLI on a schedule). */
export const POWER_CYCLE_HINT = "reset the chip: short CEN to GND for 0.25 s or power-cycle it";

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

const REBOOT_TEXT = new TextEncoder().encode("reboot\r\n");

/** Run one reset strategy now. */
export async function runResetStrategy(
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
