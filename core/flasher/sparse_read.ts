/**
 * Reading flash without reading what is erased: the range is mapped by chip CRC first
 * (core/flasher/erased.ts), regions confirmed as erased are filled with 0xFF instead of being
 * read, and every other region is read with read-ahead and checked against its map CRC, which
 * was taken before the first read. A region that reads back differently is narrowed down to its
 * sectors by fresh CRCs and those are re-read; if the region then still differs from its map
 * CRC, the flash changed while it was being read (a request corrupted on the wire into an
 * erase), and the read fails naming the range.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { Crc32, crc32 } from "../crc.ts";
import { startAccounting } from "./accounting.ts";
import type { FlasherContext } from "./context.ts";
import { erasedCrc, type ErasedReport, mapRange, type MapUnit } from "./erased.ts";
import { ProgressMeter } from "./progress.ts";
import { alignDown, alignUp, checkInFlash, hex, humanSize } from "./range.ts";
import {
  READ_ATTEMPTS,
  READ_WINDOW,
  type ReadOptions,
  type ReadSink,
  type ReadSummary,
  rereadUntilMatch,
} from "./read.ts";
import { readSectorRun, stopReadAhead } from "./read_ahead.ts";
import { isUnansweredRetry, withRetries } from "./retry.ts";
import { SECTOR } from "../target.ts";

/** A sparse read's summary: what was read, and what was not and how that was decided. */
export interface SparseReadSummary extends ReadSummary {
  erased: ErasedReport;
}

/** Whether reads on `ctx` map erased regions first (chip CRC available, not turned off). */
export function sparseAllowed(ctx: FlasherContext): boolean {
  return ctx.target.hasChipCrc && ctx.sparse !== false;
}

/**
 * Read `size` bytes at `addr` into `sink` in order, skipping regions the chip's CRC shows to
 * be erased (see the module documentation). Needs a chip-side CRC.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const file: { write(chunk: Uint8Array): Promise<number> };
 * const r = await readSparseTo(ctx, { addr: 0, size: ctx.flashSize }, async (chunk) => {
 *   await file.write(chunk);
 * });
 * r.erased.bytes; // bytes not read
 * ```
 */
export async function readSparseTo(
  ctx: FlasherContext,
  opts: ReadOptions,
  sink: ReadSink,
): Promise<SparseReadSummary> {
  const { addr, size } = opts;
  const attempts = opts.attempts ?? READ_ATTEMPTS;
  const op = opts.op ?? "read";
  checkInFlash(op, addr, size, ctx.flashSize);
  const meter = startAccounting(ctx, op);
  const lo = alignDown(addr, SECTOR);
  const hi = alignUp(addr + size, SECTOR);
  const { units, report } = await mapRange(ctx, { lo, hi, attempts, op });
  ctx.onEvent?.({
    type: "note",
    message: `erased-region map: ${units.length} CRC(s), ${report.confirmations} confirming; ${
      humanSize(report.bytes)
    } erased in ${report.regions.length} region(s) will not be read`,
  });
  // requests that went unanswered or were answered by something else, from here on
  const watch = { suspicious: 0 };
  const onEvent = ctx.onEvent;
  ctx.onEvent = (e) => {
    if (isUnansweredRetry(e)) watch.suspicious++;
    onEvent?.(e);
  };
  try {
    return await readMapped(ctx, { ...opts, attempts, op, lo, hi }, units, report, watch, meter, sink);
  } finally {
    ctx.onEvent = onEvent;
  }
}

async function readMapped(
  ctx: FlasherContext,
  opts: ReadOptions & { attempts: number; op: "read" | "backup"; lo: number; hi: number },
  units: MapUnit[],
  report: ErasedReport,
  watch: { suspicious: number },
  meter: ReturnType<typeof startAccounting>,
  sink: ReadSink,
): Promise<SparseReadSummary> {
  const { addr, size, attempts, op, lo, hi } = opts;
  const progress = new ProgressMeter(op, size, ctx.clock, ctx.onProgress);
  const sectorCrcs = new Uint32Array((hi - lo) / SECTOR);
  const whole = new Crc32();
  const window = opts.window ?? READ_WINDOW;
  let buf = new Uint8Array(0);
  let rereads = 0;
  const within = (a: number, n: number) => Math.min(a + n, addr + size) - Math.max(a, addr);
  for (let i = 0; i < units.length;) {
    let j = i + 1;
    let bytes = units[i].len;
    while (j < units.length && bytes + units[j].len <= window) bytes += units[j++].len;
    const batch = units.slice(i, j);
    const w = batch[0].addr;
    const wEnd = w + bytes;
    if (buf.length < bytes) buf = new Uint8Array(bytes);
    const local = buf.subarray(0, bytes);
    const addrs: number[] = [];
    for (const u of batch) {
      if (u.erased) {
        local.fill(0xff, u.addr - w, u.addr - w + u.len);
        progress.advance(Math.max(0, within(u.addr, u.len)));
      } else for (let s = u.addr; s < u.addr + u.len; s += SECTOR) addrs.push(s);
    }
    // a candidate its confirmation did not back holds no CRC of its content before the read: one
    // is taken now, or a sector the reads themselves change (a Read4K turned into an erase on the
    // wire, its reply lost) would match its fresh CRC after the read and pass unnoticed
    for (const u of batch) {
      if (u.erased || !u.candidate) continue;
      u.crc = await withRetries(ctx, op, u.addr, attempts, () => ctx.target.crc(u.addr, u.len));
      u.candidate = u.crc === erasedCrc(u.len);
    }
    await readSectorRun(ctx, addrs, { op, attempts }, (s, data) => {
      local.set(data, s - w);
      progress.advance(Math.max(0, within(s, SECTOR)));
    });
    for (const u of batch) {
      if (!u.erased) {
        rereads += await checkUnit(
          ctx,
          watch,
          u,
          local.subarray(u.addr - w, u.addr - w + u.len),
          op,
          attempts,
        );
      }
    }
    for (let s = w; s < wEnd; s += SECTOR) {
      sectorCrcs[(s - lo) / SECTOR] = crc32(local.subarray(s - w, s - w + SECTOR));
    }
    const from = Math.max(w, addr);
    const to = Math.min(wEnd, addr + size);
    if (from < to) {
      const out = local.subarray(from - w, to - w);
      whole.update(out);
      await sink(out, from - addr);
    }
    i = j;
  }
  progress.finish();
  const accounting = meter.finish(size);
  accounting.notRead = {
    bytes: Math.max(0, report.regions.reduce((n, r) => n + Math.max(0, within(r.addr, r.len)), 0)),
    regions: report.regions.length,
    reason: "erased: the chip's CRC equals that of 0xFF, confirmed by a second CRC over other spans",
  };
  return { size, crc32: whole.standard, sectorCrcs, rereads, accounting, erased: report };
}

/**
 * Check a read unit against its map CRC; narrow a mismatch down to sectors and re-read them.
 * Resolves to the number of sectors re-read.
 */
async function checkUnit(
  ctx: FlasherContext,
  watch: { suspicious: number },
  u: MapUnit,
  data: Uint8Array,
  op: string,
  attempts: number,
): Promise<number> {
  if (crc32(data) === u.crc) return 0;
  stopReadAhead(ctx, `${hex(u.addr)}..${hex(u.addr + u.len - 1)} read back with a wrong CRC`);
  let rereads = 0;
  for (let s = u.addr; s < u.addr + u.len; s += SECTOR) {
    const part = data.subarray(s - u.addr, s - u.addr + SECTOR);
    const chip = u.len === SECTOR && !u.candidate
      ? u.crc
      : await withRetries(ctx, op, s, attempts, () => ctx.target.crc(s, SECTOR));
    if (chip === crc32(part)) continue;
    rereads++;
    await rereadUntilMatch(ctx, op, s, attempts, (d) => part.set(d));
  }
  // a candidate whose confirmation failed had a map reply that cannot be trusted: its sectors
  // were each matched against a fresh CRC instead
  if (u.candidate || crc32(data) === u.crc) return rereads;
  // every sector now matches a fresh CRC, yet not the map: the map's reply was corrupted on the
  // wire, or the flash changed since. Only a request of ours carried out as another command can
  // change it (a Read4K is one bit away from an erase; the map's CheckCRCs are no single or
  // double bit flip away from any command that changes flash), and then (1) the reply that
  // request was waiting for never comes, or something else comes instead: a retry; and (2) it
  // erased, so a sector reads blank now; and (3) the map's CRC, of the content before, is
  // unrelated to today's, while a reply with a bit or two flipped on the wire differs from the
  // true CRC in a bit or two (content whose CRC lies that close: 529 in 2^32). Unless all three
  // hold, the map's reply was the corrupted one
  const now = crc32(data);
  let blank = false;
  for (let o = 0; o < data.length; o += SECTOR) {
    if (data.subarray(o, o + SECTOR).every((b) => b === 0xff)) blank = true;
  }
  if (watch.suspicious === 0 || !blank || bitsSet(now ^ u.crc) <= 2) {
    ctx.onEvent?.({
      type: "note",
      message: `the map's CRC of ${hex(u.addr)}..${
        hex(u.addr + u.len - 1)
      } disagrees with its sectors' fresh CRCs, and nothing says the flash changed: a corrupted reply; the fresh ones hold`,
    });
    return rereads;
  }
  throw new FlashError(
    "BACKUP_FAILED",
    `the flash at ${hex(u.addr)}..${
      hex(u.addr + u.len - 1)
    } changed while it was being read (its CRC before the read ${hex(u.crc)}, now ${
      hex(crc32(data))
    }): a request was corrupted on the wire`,
    "nothing was written by this job, but a sector may have been erased: check the wiring, use a lower --baud, then compare the chip with an older backup",
    { damage: { start: u.addr, end: u.addr + u.len } },
  );
}

function bitsSet(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v; v >>>= 1) n += v & 1;
  return n;
}
