/**
 * Coarse-to-fine comparison of flash against expected bytes by CRC: one CRC per run of
 * contiguous sectors inside an aligned window, and per-sector CRCs only inside runs that
 * differ. With a chip-side CRC this costs a few bytes on the wire per window.
 *
 * @module
 */

import { crc32 } from "../uart/crc.ts";
import type { FlasherContext } from "./context.ts";
import type { ProgressMeter } from "./progress.ts";
import { withRetries } from "./retry.ts";
import { SECTOR } from "./target.ts";

/** A contiguous stretch of flash. */
export interface Span {
  addr: number;
  len: number;
}

/** Split `[addr, addr+len)` at sector boundaries. */
export function sectorSpans(addr: number, len: number): Span[] {
  const spans: Span[] = [];
  const end = addr + len;
  for (let a = addr; a < end;) {
    const next = Math.min(end, (Math.floor(a / SECTOR) + 1) * SECTOR);
    spans.push({ addr: a, len: next - a });
    a = next;
  }
  return spans;
}

/** How to compare. */
export interface CompareOptions {
  /** Window alignment for the coarse CRCs (bytes). */
  window: number;
  /** Attempts per CRC call. */
  attempts: number;
  /** Operation name for retry events. */
  op: string;
  /** Advanced by the bytes of each compared run. */
  meter?: ProgressMeter;
}

/**
 * The spans (a subset of `spans`, in order) whose flash content differs from `expected`,
 * which holds the bytes expected at `base`.
 *
 * @example
 * ```ts
 * const bad = await differingSpans(ctx, 0x11000, image, sectorSpans(0x11000, image.length), {
 *   window: 0x10000, attempts: 3, op: "verify",
 * });
 * ```
 */
export async function differingSpans(
  ctx: FlasherContext,
  base: number,
  expected: Uint8Array,
  spans: readonly Span[],
  opts: CompareOptions,
): Promise<Span[]> {
  const crcOf = (s: Span) => crc32(expected.subarray(s.addr - base, s.addr - base + s.len));
  const chipCrc = (s: Span) =>
    withRetries(ctx, opts.op, s.addr, opts.attempts, () => ctx.target.crc(s.addr, s.len));
  const out: Span[] = [];
  for (const run of runs(spans, opts.window)) {
    const whole: Span = {
      addr: run[0].addr,
      len: run[run.length - 1].addr + run[run.length - 1].len - run[0].addr,
    };
    if (run.length === 1 || (await chipCrc(whole)) !== crcOf(whole)) {
      for (const s of run) {
        if ((await chipCrc(s)) !== crcOf(s)) out.push(s);
      }
    }
    opts.meter?.advance(whole.len);
  }
  return out;
}

/** Group spans into runs that are contiguous and share one aligned window. */
function runs(spans: readonly Span[], window: number): Span[][] {
  const groups: Span[][] = [];
  let cur: Span[] = [];
  for (const s of spans) {
    const prev = cur[cur.length - 1];
    if (
      prev &&
      (prev.addr + prev.len !== s.addr || Math.floor(prev.addr / window) !== Math.floor(s.addr / window))
    ) {
      groups.push(cur);
      cur = [];
    }
    cur.push(s);
  }
  if (cur.length) groups.push(cur);
  return groups;
}
