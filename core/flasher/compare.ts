/**
 * Coarse-to-fine comparison of flash against expected bytes. With a chip-side CRC: one CRC
 * per run of contiguous spans inside an aligned window of the coarsest level, and only runs
 * that differ are split at the next level, down to single spans; a clean range costs one
 * short round trip per coarse window. Without one (SPI): every sector is read once and
 * compared locally, never read a second time for a finer level.
 *
 * @module
 */

import { crc32 } from "../crc.ts";
import type { FlasherContext } from "./context.ts";
import type { ProgressMeter } from "./progress.ts";
import { readSectorRun } from "./read_ahead.ts";
import { alignDown } from "./range.ts";
import { withRetries } from "./retry.ts";
import { type ByteSource, FlashContent, toSource } from "./source.ts";
import { SECTOR } from "../target.ts";

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
  /**
   * Window alignment of the coarse CRCs (bytes), or several levels, largest first
   * (`Infinity` = the whole range in one CRC). Used only with a chip-side CRC.
   */
  window: number | readonly number[];
  /** Attempts per CRC call or sector read. */
  attempts: number;
  /** Operation name for retry events. */
  op: string;
  /** Advanced by the bytes of each compared run. */
  meter?: ProgressMeter;
}

/**
 * The spans (a subset of `spans`, in order) whose flash content differs from `expected`: bytes
 * or a source holding what should be at `base`, or a {@link FlashContent}.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * declare const image: Uint8Array;
 * const bad = await differingSpans(ctx, 0x11000, image, sectorSpans(0x11000, image.length), {
 *   window: [Infinity, 0x10000], attempts: 3, op: "verify",
 * });
 * ```
 */
export async function differingSpans(
  ctx: FlasherContext,
  base: number,
  expected: Uint8Array | ByteSource | FlashContent,
  spans: readonly Span[],
  opts: CompareOptions,
): Promise<Span[]> {
  const content = expected instanceof FlashContent ? expected : new FlashContent(base, toSource(expected));
  return ctx.target.hasChipCrc
    ? await compareByCrc(ctx, content, spans, opts)
    : await compareByReading(ctx, content, spans, opts);
}

async function compareByCrc(
  ctx: FlasherContext,
  content: FlashContent,
  spans: readonly Span[],
  opts: CompareOptions,
): Promise<Span[]> {
  const levels = typeof opts.window === "number" ? [opts.window] : [...opts.window];
  const out: Span[] = [];
  const differs = async (s: Span) => {
    const chip = await withRetries(ctx, opts.op, s.addr, opts.attempts, () => ctx.target.crc(s.addr, s.len));
    return chip !== await content.crc(s.addr, s.len);
  };
  // `run` is known to differ: split it at the next level that actually splits it
  const split = async (run: Span[], level: number): Promise<void> => {
    if (run.length === 1) {
      out.push(run[0]);
      return;
    }
    let subs: Span[][] = [run];
    while (subs.length === 1) subs = level < levels.length ? runs(run, levels[level++]) : run.map((s) => [s]);
    for (const sub of subs) if (await differs(whole(sub))) await split(sub, level);
  };
  const top = levels.length ? runs(spans, levels[0]) : spans.map((s) => [s]);
  for (const run of top) {
    if (await differs(whole(run))) await split(run, 1);
    opts.meter?.advance(whole(run).len);
  }
  return out;
}

async function compareByReading(
  ctx: FlasherContext,
  content: FlashContent,
  spans: readonly Span[],
  opts: CompareOptions,
): Promise<Span[]> {
  const out: Span[] = [];
  // a few sectors at a time: memory stays small, batches stay long enough for the adapter
  for (const group of chunked(spans, 16)) {
    const sectors = [...new Set(group.map((s) => alignDown(s.addr, SECTOR)))];
    const read = new Map<number, Uint8Array>();
    await readSectorRun(ctx, sectors, opts, (a, d) => void read.set(a, d));
    for (const s of group) {
      const sec = alignDown(s.addr, SECTOR);
      const got = read.get(sec)!.subarray(s.addr - sec, s.addr - sec + s.len);
      if (crc32(got) !== await content.crc(s.addr, s.len)) out.push(s);
      opts.meter?.advance(s.len);
    }
  }
  return out;
}

/** The span covering a run of contiguous spans. */
function whole(run: readonly Span[]): Span {
  const last = run[run.length - 1];
  return { addr: run[0].addr, len: last.addr + last.len - run[0].addr };
}

/** Group spans into runs that are contiguous and share one aligned window. */
function runs(spans: readonly Span[], window: number): Span[][] {
  const groups: Span[][] = [];
  let cur: Span[] = [];
  const win = (a: number) => (Number.isFinite(window) ? Math.floor(a / window) : 0);
  for (const s of spans) {
    const prev = cur[cur.length - 1];
    if (prev && (prev.addr + prev.len !== s.addr || win(prev.addr) !== win(s.addr))) {
      groups.push(cur);
      cur = [];
    }
    cur.push(s);
  }
  if (cur.length) groups.push(cur);
  return groups;
}

function chunked<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}
