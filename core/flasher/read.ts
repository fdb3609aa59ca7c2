/**
 * Reading flash: 4 KiB reads with read-ahead, handed on window by window so memory stays flat
 * however large the range. Where the chip computes CRCs, each window (256 KiB while the link is
 * clean) is checked with one CheckCRC; a window that fails is narrowed down to its sectors,
 * those are re-read a bounded number of times, and the rest of the job uses 32 KiB windows
 * and no read-ahead. Where it does not (SPI), the same check is made by reading each window a
 * second time and comparing CRCs: USB packets carry their own CRC, but the SPI wires between
 * the programmer and the chip do not, and a bit flipped on MISO would otherwise reach the
 * output (or a backup) unseen. A sector that does not reproduce is read again until two reads
 * agree. It doubles the time of a read on that path (see the README's figures). Two reads can
 * carry the same flipped bit, so once a window has failed its check (the bus flips bits), every
 * later window is kept only when a third read agrees too: half as much again, on a noisy bus only.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { Crc32, crc32 } from "../crc.ts";
import { type Accounting, startAccounting } from "./accounting.ts";
import { differingSpans, sectorSpans } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import { ProgressMeter } from "./progress.ts";
import { alignDown, alignUp, checkInFlash, hex } from "./range.ts";
import { readSectorRun, stopReadAhead } from "./read_ahead.ts";
import { CRC_MISMATCH_RETRY, isUnansweredRetry, withRetries } from "./retry.ts";
import { SECTOR } from "../target.ts";

/** What to read and how carefully. */
export interface ReadOptions {
  /** First flash address to read. */
  addr: number;
  /** Bytes to read. */
  size: number;
  /** Attempts per sector, for transient errors and CRC mismatches alike (default 5). */
  attempts?: number;
  /** Bytes covered by one CRC check while the link is clean (default 256 KiB). */
  window?: number;
  /**
   * Check every window against the chip's CRC, or, on a target without one (SPI), against a
   * second read (default true). Turning it off on SPI halves the time of a read and trusts the
   * bus.
   */
  check?: boolean;
  /** Name the progress events carry (default "read"). */
  op?: "read" | "backup";
}

/** What a read cost and what it found, without the bytes (they went to the sink). */
export interface ReadSummary {
  /** Bytes read (the requested size). */
  size: number;
  /** Standard CRC-32 of the bytes read. */
  crc32: number;
  /** Standard CRC-32 of each whole sector read (from the sector containing `addr`). */
  sectorCrcs: Uint32Array;
  /** Sectors read more than once because their CRC did not match. */
  rereads: number;
  /** What the read cost on the wire. */
  accounting: Accounting;
}

/** The bytes read and what it cost. */
export interface ReadResult extends ReadSummary {
  /** The bytes read. */
  data: Uint8Array;
}

/**
 * Receives the bytes of a read in order: `chunk` holds the bytes at `offset` of the range. The
 * chunk's buffer is reused for the next window: copy it to keep it.
 */
export type ReadSink = (chunk: Uint8Array, offset: number) => void | Promise<void>;

/** Default attempts per sector. */
export const READ_ATTEMPTS = 5;
/** Default CRC window of reads on a clean link. */
export const READ_WINDOW = 0x40000;
/** CRC window once a window failed its check. */
export const READ_WINDOW_SMALL = 0x8000;

/**
 * Read `size` bytes at `addr` into memory (any alignment; whole sectors are read underneath).
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * const { data, crc32 } = await readFlash(ctx, { addr: 0, size: ctx.flashSize });
 * ```
 */
export async function readFlash(ctx: FlasherContext, opts: ReadOptions): Promise<ReadResult> {
  checkInFlash(opts.op ?? "read", opts.addr, opts.size, ctx.flashSize);
  const data = new Uint8Array(opts.size);
  const summary = await readFlashTo(ctx, opts, (chunk, offset) => data.set(chunk, offset));
  return { ...summary, data };
}

/**
 * Read `size` bytes at `addr`, handing them to `sink` in order, one checked window at a time.
 *
 * @example
 * ```ts
 * import type { FlasherContext } from "./context.ts";
 * declare const ctx: FlasherContext;
 * const file = await Deno.open("backup.bin", { write: true, create: true });
 * await readFlashTo(ctx, { addr: 0, size: ctx.flashSize }, async (chunk) => void await file.write(chunk));
 * ```
 */
export async function readFlashTo(
  ctx: FlasherContext,
  opts: ReadOptions,
  sink: ReadSink,
): Promise<ReadSummary> {
  const { addr, size } = opts;
  const attempts = opts.attempts ?? READ_ATTEMPTS;
  const op = opts.op ?? "read";
  const check = opts.check ?? true;
  let window = opts.window ?? READ_WINDOW;
  checkInFlash(op, addr, size, ctx.flashSize);
  const meter = startAccounting(ctx, op);
  const progress = new ProgressMeter(op, size, ctx.clock, ctx.onProgress);
  const lo = alignDown(addr, SECTOR);
  const hi = alignUp(addr + size, SECTOR);
  const sectorCrcs = new Uint32Array((hi - lo) / SECTOR);
  const whole = new Crc32();
  let buf = new Uint8Array(Math.min(window, hi - lo));
  let rereads = 0;
  // a window failed its check: the line or bus has corrupted a read in this job
  let noisy = false;
  for (let w = lo; w < hi;) {
    const wEnd = Math.min(hi, alignDown(w, window) + window);
    if (buf.length < wEnd - w) buf = new Uint8Array(wEnd - w);
    const addrs: number[] = [];
    for (let s = w; s < wEnd; s += SECTOR) addrs.push(s);
    // where the chip has a CRC, the window's is taken before its first read: a read request
    // corrupted on the wire into an erase (one bit away) whose reply is lost changes the flash
    // under the read, and only a CRC from before can tell (a CRC taken after matches the blank)
    const chip = check && ctx.target.hasChipCrc
      ? await withRetries(ctx, op, w, attempts, () => ctx.target.crc(w, wEnd - w))
      : null;
    const unanswered = await watchRequests(
      ctx,
      () =>
        readSectorRun(ctx, addrs, { op, attempts }, (s, data) => {
          buf.set(data, s - w);
          progress.advance(Math.min(s + SECTOR, addr + size) - Math.max(s, addr));
        }),
    );
    const local = buf.subarray(0, wEnd - w);
    if (check) {
      const crcNow = () => withRetries(ctx, op, w, attempts, () => ctx.target.crc(w, wEnd - w));
      const chipCrc = chip ?? await crcNow();
      // without a chip CRC (SPI) the check is a second read, and two reads can carry the same
      // flipped bit: once the bus has flipped one, a window is kept only when a third read agrees
      const kept = chipCrc === crc32(local) &&
        (!noisy || ctx.target.hasChipCrc || await crcNow() === chipCrc);
      if (!kept) {
        noisy = true;
        stopReadAhead(ctx, `window ${hex(w)}..${hex(wEnd - 1)} read back with a wrong CRC`);
        window = Math.min(window, READ_WINDOW_SMALL);
        const bad = await differingSpans(ctx, w, local, sectorSpans(w, wEnd - w), {
          window: [READ_WINDOW_SMALL],
          attempts,
          op,
        });
        const suspicious = unanswered + await watchRequests(ctx, async () => {
          for (const { addr: s } of bad) {
            rereads++;
            await rereadUntilMatch(ctx, op, s, attempts, (d) => local.set(d, s - w));
          }
        });
        if (crc32(local) !== chipCrc) {
          rereads += await checkWindowAfterRereads(ctx, {
            w,
            wEnd,
            chip: chipCrc,
            local,
            op,
            attempts,
            suspicious,
          });
        }
      }
    }
    for (let s = w; s < wEnd; s += SECTOR) {
      sectorCrcs[(s - lo) / SECTOR] = crc32(local.subarray(s - w, s - w + SECTOR));
    }
    const from = Math.max(w, addr);
    const to = Math.min(wEnd, addr + size);
    const out = local.subarray(from - w, to - w);
    whole.update(out);
    await sink(out, from - addr);
    w = wEnd;
  }
  progress.finish();
  return { size, crc32: whole.standard, sectorCrcs, rereads, accounting: meter.finish(size) };
}

/**
 * Run `fn`, counting the requests that went unanswered or were answered by something else on the
 * way (retries for any reason but a CRC mismatch).
 */
async function watchRequests(ctx: FlasherContext, fn: () => Promise<unknown>): Promise<number> {
  let suspicious = 0;
  const onEvent = ctx.onEvent;
  ctx.onEvent = (e) => {
    if (isUnansweredRetry(e)) suspicious++;
    onEvent?.(e);
  };
  try {
    await fn();
  } finally {
    ctx.onEvent = onEvent;
  }
  return suspicious;
}

/**
 * A window whose sectors each match a fresh CRC after their re-reads, but not the window's CRC
 * taken when it was first checked (before its read, where the chip has a CRC).
 *
 * First the window's bytes must match a fresh CRC of it. When they do not, the narrowing down
 * found nothing because its own check agreed with wrong bytes: on SPI, where a "CRC" is one
 * more read, a second read that carried the same flipped bit as the first. Then each sector is
 * checked once more against a CRC of its own, and one that differs is read again until a read
 * matches a fresh CRC.
 *
 * Then the first CRC: its reply was corrupted on the wire, or the flash changed since. Only a
 * read carried out as an erase can change it (a Read4K is one bit away from one), and then its
 * reply never came (a retry), a sector reads blank now, and a fresh CRC of the window is
 * unrelated to the first one (a reply with a bit or two flipped differs from the true CRC in a
 * bit or two). When all three hold, the read fails naming the window: what it held before is
 * gone from the chip and from this read. Returns the sectors it read again.
 */
async function checkWindowAfterRereads(
  ctx: FlasherContext,
  o: {
    w: number;
    wEnd: number;
    chip: number;
    local: Uint8Array;
    op: string;
    attempts: number;
    suspicious: number;
  },
): Promise<number> {
  let again = await withRetries(ctx, o.op, o.w, o.attempts, () => ctx.target.crc(o.w, o.wEnd - o.w));
  let suspicious = o.suspicious;
  let rereads = 0;
  if (again !== crc32(o.local)) {
    const sectors = sectorSpans(o.w, o.wEnd - o.w).map((sp) => sp.addr);
    suspicious += await watchRequests(ctx, async () => {
      rereads = await recheckSectors(ctx, o.op, o.attempts, sectors, o.local, (s) => s - o.w);
    });
    // every sector now matches a CRC of its own taken after the window's
    again = crc32(o.local);
  }
  let blank = false;
  for (let i = 0; i < o.local.length; i += SECTOR) {
    if (o.local.subarray(i, i + SECTOR).every((b) => b === 0xff)) blank = true;
  }
  let flipped = 0;
  for (let x = (again ^ o.chip) >>> 0; x; x >>>= 1) flipped += x & 1;
  if (suspicious === 0 || !blank || flipped <= 2) return rereads;
  throw new FlashError(
    "BACKUP_FAILED",
    `the flash at ${hex(o.w)}..${
      hex(o.wEnd - 1)
    } changed while it was being read (its CRC when first checked ${hex(o.chip)}, now ${
      hex(again)
    }): a request was corrupted on the wire`,
    "nothing was written by this job, but a sector may have been erased: check the wiring, use a lower --baud, then compare the chip with an older backup",
    { damage: { start: o.w, end: o.wEnd } },
  );
}

/**
 * Check each of `sectors`, whose bytes sit in `data` at `at(s)`, against a fresh CRC of its own
 * (on SPI, one more read), and re-read one that differs until a read matches
 * ({@link rereadUntilMatch}). Resolves to the number of sectors re-read.
 */
export async function recheckSectors(
  ctx: FlasherContext,
  op: string,
  attempts: number,
  sectors: readonly number[],
  data: Uint8Array,
  at: (s: number) => number,
): Promise<number> {
  let rereads = 0;
  for (const s of sectors) {
    const i = at(s);
    const chip = await withRetries(ctx, op, s, attempts, () => ctx.target.crc(s, SECTOR));
    if (chip === crc32(data.subarray(i, i + SECTOR))) continue;
    rereads++;
    await rereadUntilMatch(ctx, op, s, attempts, (d) => data.set(d, i));
  }
  return rereads;
}

/** Re-read sector `s` until its bytes match a fresh chip CRC (at most `attempts` rounds in all). */
export async function rereadUntilMatch(
  ctx: FlasherContext,
  op: string,
  s: number,
  attempts: number,
  store: (data: Uint8Array) => void,
): Promise<void> {
  let chip: number | null = null;
  let got: number | null = null;
  for (let attempt = 2; attempt <= attempts; attempt++) {
    ctx.onEvent?.({ type: "retry", op, addr: s, attempt, of: attempts, reason: CRC_MISMATCH_RETRY });
    const data = await withRetries(ctx, op, s, attempts, () => ctx.target.readSector(s));
    chip = await withRetries(ctx, op, s, attempts, () => ctx.target.crc(s, SECTOR));
    got = crc32(data);
    if (data.length === SECTOR && chip === got) {
      store(data);
      return;
    }
  }
  throw new FlashError(
    "CRC_MISMATCH",
    `sector ${hex(s)} read back with a wrong CRC ${attempts} times${
      chip === null ? "" : ` (chip ${hex(chip)}, data ${hex(got ?? 0)})`
    }`,
    "lower --baud (e.g. 115200), shorten the wires and check the 3.3 V supply, then read again",
  );
}
