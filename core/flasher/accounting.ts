/**
 * Wire and time accounting for one operation: what went over the wire, how long it took on
 * the injected clock, and how that compares with the floor a UART imposes (10 bits per byte
 * of payload at the host baud).
 *
 * @module
 */

import type { FlasherContext } from "./context.ts";

/** The summary of one operation. */
export interface Accounting {
  /** Name of the operation (`read`, `write`, `backup` ...). */
  op: string;
  /** Useful bytes moved (bytes read, or bytes of image written). */
  payloadBytes: number;
  /** Bytes sent to the chip. */
  bytesOut: number;
  /** Bytes received from the chip. */
  bytesIn: number;
  /** Request/reply exchanges. */
  roundTrips: number;
  /** Elapsed milliseconds on the context's clock (virtual time on emulated targets). */
  elapsedMs: number;
  /** Payload KiB per second, or null when no time passed. */
  kibPerSec: number | null;
  /** Time the payload alone needs on the wire (payload × 10 / baud), or null without a baud. */
  wireFloorMs: number | null;
  /** elapsedMs / wireFloorMs: 1.0 is as fast as the wire allows; null when not applicable. */
  floorRatio: number | null;
  /** Bytes of the payload that were not read, and why (erased regions found by chip CRC). */
  notRead?: { bytes: number; regions: number; reason: string };
}

/** A running measurement; call {@link Meter.finish} when the operation ends. */
export interface Meter {
  /**
   * The summary so far. `payloadBytes` is the useful size of the job; `except` removes a
   * sub-operation measured on its own (the backup inside a write); `wire: false` omits the
   * wire floor for jobs whose payload never crosses the wire (erase, CRC verification).
   */
  finish(payloadBytes: number, opts?: { except?: Accounting | null; wire?: boolean }): Accounting;
}

/** Start measuring an operation on `ctx`. */
export function startAccounting(ctx: FlasherContext, op: string): Meter {
  const t0 = ctx.clock.now();
  const s0 = { ...ctx.target.stats };
  return {
    finish(payloadBytes, opts = {}): Accounting {
      const ex = opts.except;
      const elapsedMs = ctx.clock.now() - t0 - (ex?.elapsedMs ?? 0);
      const s = ctx.target.stats;
      const baud = (opts.wire ?? true) ? ctx.baud ?? null : null;
      const wireFloorMs = baud ? (payloadBytes * 10 * 1000) / baud : null;
      return {
        op,
        payloadBytes,
        bytesOut: s.bytesOut - s0.bytesOut - (ex?.bytesOut ?? 0),
        bytesIn: s.bytesIn - s0.bytesIn - (ex?.bytesIn ?? 0),
        roundTrips: s.roundTrips - s0.roundTrips - (ex?.roundTrips ?? 0),
        elapsedMs,
        kibPerSec: elapsedMs > 0 ? payloadBytes / 1024 / (elapsedMs / 1000) : null,
        wireFloorMs,
        floorRatio: wireFloorMs && elapsedMs > 0 ? elapsedMs / wireFloorMs : null,
      };
    },
  };
}
