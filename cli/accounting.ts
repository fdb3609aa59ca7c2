/**
 * What a command cost on the wire, as the CLI shows it at the end of every command: one
 * `accounting` object in the `--json` result, and a few human lines on stderr. On virtual
 * ports the durations are the timing model's (modelled on the emulator's clock); on real ports
 * they are measured on the wall clock. It is the same code either way: the clock is injected.
 *
 * @module
 */

import type { Accounting } from "../core/flasher/accounting.ts";
import { humanSize } from "../core/flasher/range.ts";
import type { Session } from "./session.ts";

/** The parts of a command's accounting. */
export interface CommandCost {
  /** The operation itself (read, write, verify, erase), without its backup. */
  operation?: Accounting | null;
  /** The backup a write or erase took or reused. */
  backup?: (Accounting & { reused: boolean }) | null;
}

const round = (n: number | null, d: number) => (n === null ? null : Number(n.toFixed(d)));

function operationJson(a: Accounting): Record<string, unknown> {
  return {
    op: a.op,
    payloadBytes: a.payloadBytes,
    bytesOut: a.bytesOut,
    bytesIn: a.bytesIn,
    roundTrips: a.roundTrips,
    elapsedMs: round(a.elapsedMs, 1),
    kibPerSec: round(a.kibPerSec, 1),
    wireFloorMs: round(a.wireFloorMs, 1),
    floorRatio: round(a.floorRatio, 3),
    ...(a.notRead ? { notRead: a.notRead } : {}),
  };
}

/** Totals of the whole command: opening, linking, baud switch and detection included. */
function sessionTotals(
  s: Session,
): { bytesOut: number; bytesIn: number; roundTrips: number; elapsedMs: number } {
  const w = s.target.stats;
  return {
    bytesOut: w.bytesOut,
    bytesIn: w.bytesIn,
    roundTrips: w.roundTrips,
    elapsedMs: s.clock.now() - s.openedAt,
  };
}

/**
 * The `accounting` object of a command's JSON result.
 *
 * @example
 * ```ts
 * env.out.result({ ...fields, accounting: accountingJson(s, { operation: r.accounting }) }, lines);
 * ```
 */
export function accountingJson(s: Session, cost: CommandCost): Record<string, unknown> {
  const t = sessionTotals(s);
  return {
    timing: s.timing,
    baud: s.baud,
    operation: cost.operation ? operationJson(cost.operation) : null,
    backup: cost.backup ? { ...operationJson(cost.backup), reused: cost.backup.reused } : null,
    session: { ...t, elapsedMs: round(t.elapsedMs, 1) },
  };
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function bytes(n: number): string {
  return n >= 10 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function line(a: Accounting, s: Session): string {
  const rate = a.kibPerSec === null ? "" : `, ${a.kibPerSec.toFixed(1)} KiB/s`;
  const floor = a.floorRatio === null
    ? ""
    : `, ${a.floorRatio.toFixed(3)}x the wire floor (${secs(a.wireFloorMs!)} at ${s.baud} baud)`;
  const size = a.payloadBytes > 0 ? `${humanSize(a.payloadBytes)} in ` : "";
  const skipped = a.notRead && a.notRead.bytes > 0
    ? `; ${humanSize(a.notRead.bytes)} in ${a.notRead.regions} region(s) not read (${a.notRead.reason})`
    : "";
  return `${a.op}: ${size}${secs(a.elapsedMs)}${rate}${floor}; ${bytes(a.bytesOut)} out, ${
    bytes(a.bytesIn)
  } in, ${a.roundTrips} round trips${skipped}`;
}

/** The human lines for stderr. */
export function accountingLines(s: Session, cost: CommandCost): string[] {
  const lines = [`accounting (${s.timing} time):`];
  if (cost.backup) {
    lines.push(
      cost.backup.reused
        ? `  backup: reused, the chip's CRC matches it; ${
          secs(cost.backup.elapsedMs)
        }, ${cost.backup.roundTrips} round trip(s)`
        : `  ${line(cost.backup, s)}`,
    );
  }
  if (cost.operation) lines.push(`  ${line(cost.operation, s)}`);
  const t = sessionTotals(s);
  lines.push(
    `  command: ${secs(t.elapsedMs)} in all (link and detection included); ${bytes(t.bytesOut)} out, ${
      bytes(t.bytesIn)
    } in, ${t.roundTrips} round trips`,
  );
  return lines;
}
