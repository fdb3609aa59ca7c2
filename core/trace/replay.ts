/**
 * What the two replays (`ReplayLink` for UART links, `ReplayUsbDevice` for the CH341A) share: their options and the error they throw at the first difference.
 *
 * @module
 */

import type { VirtualClock } from "../clock.ts";

/** The core did something other than what the trace recorded. */
export class TraceDivergenceError extends Error {
  /** Trace line of the recorded event that was expected (0 past the end of the trace). */
  readonly line: number;
  /** Byte offset in the link's host-to-device stream where the difference is, when it is a byte. */
  readonly offset: number | null;
  constructor(message: string, line: number, offset: number | null) {
    super(message);
    this.name = "TraceDivergenceError";
    this.line = line;
    this.offset = offset;
  }
}

/** Options of a replay. */
export interface ReplayOptions {
  /** The trace header's clock; "real" matches reads by order rather than by time. */
  clock?: "virtual" | "real";
  /** Clock to run on (default: a fresh virtual clock starting at 0). */
  virtualClock?: VirtualClock;
}
