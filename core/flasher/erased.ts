/**
 * Erased-region detection: which parts of the flash are entirely 0xFF, learnt from the chip's
 * CheckCRC (13 bytes out, 11 back, plus the chip's CRC time) instead of reading them.
 *
 * 1. **Map**: every byte of the range gets exactly one chip CRC, over a *unit*: the whole
 *    range, a 64 KiB block or a 4 KiB sector, chosen by expected cost ({@link ErasedPlanner}).
 *    A unit whose CRC equals the CRC of 0xFF over its length is a *candidate*. All map CRCs are
 *    taken before anything is read: they are the snapshot the data read later must match, so a
 *    sector a corrupted read request erased before it was read is noticed (the job of the
 *    whole-flash "before" CRC of a plain backup, here at no extra chip time).
 * 2. **Confirm**: the candidates are merged into runs and every run is covered a second time
 *    by CRCs over spans that cut every unit in two ({@link confirmSpans}). Every erased byte is
 *    thus vouched for by two different replies of different lengths (so a corrupted, replayed
 *    or stale reply cannot stand in for the second), and each part of a unit must collide on
 *    its own. Spans are whole 256-byte chunks on
 *    256-byte boundaries, so the T/U loader's truncation of the CRC length (it computes whole
 *    256-byte chunks only) never changes what is covered. A candidate whose confirming span
 *    disagrees is read like any other unit.
 *
 * Probability, per unit taken as erased while it is not (content not chosen to fool CRC-32):
 * CRC-32 detects every error pattern of at most 32 consecutive bits and, at these lengths,
 * of at most 3 flipped bits, so a false "erased" needs content that differs from 0xFF widely
 * in both parts of the unit (≈ 2^-64 ≈ 5·10^-20 for content that looks random to the CRC), or
 * widely in one part and not at all in the other (≈ 2^-32 ≈ 2.3·10^-10: CRC-32 is linear, so
 * any number of CRCs over spans that each cover all of one part carry the same 32 bits about
 * it; no choice of spans does better for content confined to one part).
 * A reply corrupted on the wire must turn into exactly the erased value of its own span, for
 * two replies covering the same byte.
 *
 * @module
 */

import { DEFAULT_TIMING, type TimingModel, wireMs } from "../timing.ts";
import { crc32 } from "../crc.ts";
import type { FlasherContext } from "./context.ts";
import { withRetries } from "./retry.ts";
import { BLOCK, SECTOR } from "../target.ts";

/** One mapped unit: a span with the chip's CRC of it, taken before anything was read. */
export interface MapUnit {
  addr: number;
  len: number;
  /** Standard CRC-32 of the span as the chip reported it in the map. */
  crc: number;
  /** The map CRC equals the CRC of 0xFF over `len` (a candidate until confirmed). */
  candidate: boolean;
  /** Confirmed by a second span: not read. */
  erased: boolean;
}

/** A confirming CRC. */
export interface ConfirmCheck {
  addr: number;
  len: number;
  /** Whether the chip's CRC equalled that of 0xFF over the span. */
  ok: boolean;
}

/** What the planner decided and found; goes into accounting and the backup's sidecar. */
export interface ErasedReport {
  /** How a region was taken as erased, in words. */
  method: string;
  /** Chip CRC throughput the plan assumed (bytes/s). */
  crcBytesPerSec: number;
  /** Whether the whole range was probed with one CRC first, and why (not). */
  wholeRange: { probed: boolean; reason: string };
  /** Units mapped, by size in bytes. */
  units: Record<number, number>;
  /** Confirming CRCs issued, and how many disagreed (their units were read). */
  confirmations: number;
  refuted: number;
  /** Runs taken as erased and not read, merged, in address order. */
  regions: { addr: number; len: number }[];
  /** Bytes not read because they were taken as erased. */
  bytes: number;
}

/** The erased value: standard CRC-32 of `len` bytes of 0xFF. */
export function erasedCrc(len: number): number {
  let crc = 0;
  for (let o = 0; o < len; o += FF.length) crc = crc32(FF.subarray(0, Math.min(FF.length, len - o)), crc);
  return crc;
}
const FF = new Uint8Array(BLOCK).fill(0xff);

/** Bytes of a CheckCRC request (short frame, start and end) and of its reply. */
const CRC_REQUEST_BYTES = 13;
const CRC_REPLY_BYTES = 11;
/** Bytes of a Read4K reply besides the data (header, length, command, status, address). */
const READ_REPLY_OVERHEAD = 15;

/** The timing model's prices of the operations a plan chooses between (ms). */
export interface PlanCosts {
  /** Round trip of one CheckCRC besides the chip's CRC time. */
  crcTripMs: number;
  /** Chip CRC time per byte. */
  crcMsPerByte: number;
  /** Reading one sector with read-ahead (its reply on the wire). */
  readSectorMs: number;
}

/**
 * Prices under `timing` at `baud` (the CRC speed is the timing model's, passed in). On loaders
 * that protect the flash again after every CheckCRC (`protectAfterCrc`: a status-register write),
 * each CRC also costs that write.
 */
export function planCosts(
  timing: Pick<TimingModel, "crcBytesPerSec" | "usbTurnaroundMs" | "loaderReplyMs"> & { srWriteMs?: number },
  baud: number,
  protectAfterCrc = false,
): PlanCosts {
  return {
    crcTripMs: timing.usbTurnaroundMs + timing.loaderReplyMs +
      wireMs(CRC_REQUEST_BYTES + CRC_REPLY_BYTES, baud) +
      (protectAfterCrc ? timing.srWriteMs ?? DEFAULT_TIMING.srWriteMs : 0),
    crcMsPerByte: 1000 / timing.crcBytesPerSec,
    readSectorMs: wireMs(SECTOR + READ_REPLY_OVERHEAD, baud),
  };
}

/**
 * What the planner expects of the next sectors. Right after an erased unit, the next sector is
 * erased with the learnt probability that an erased sector follows an erased one (erased runs
 * are long on real flash: an app ends, the rest of its partition is blank); anywhere else, with
 * the share of erased sectors seen so far. Both start from a prior worth 64 sectors: 38 % of
 * sectors erased (the corpus statistic of real 2 MiB dumps), in runs of about 50 sectors (as
 * in the dumps we have), so a
 * chip's own layout soon dominates. (Where an erased run starts cannot be predicted from what
 * precedes it, so the share, not the chance of a run starting, prices a sector probe there.)
 */
export class ErasedPlanner {
  readonly costs: PlanCosts;
  #erased = 0.38 * 64;
  #seen = 64;
  #ee = [0.98 * 64, 64];
  #prev: 0 | 1 = 0;
  constructor(costs: PlanCosts) {
    this.costs = costs;
  }
  #p(from: 0 | 1): number {
    return from ? this.#ee[0] / this.#ee[1] : this.#erased / this.#seen;
  }
  /** Probability that all of the next `n` sectors are erased. */
  #allErased(n: number, prevErased: number): number {
    const pe = this.#p(1);
    const first = prevErased * pe + (1 - prevErased) * this.#p(0);
    return first * pe ** (n - 1);
  }
  /**
   * Expected cost of mapping, confirming and reading `n` sectors in units of `k` sectors: a
   * unit costs its CRC round trip and CRC time, a confirming CRC when it is erased, and
   * the read of all its sectors when it is not (a unit found not erased is read whole:
   * splitting it then would pay its CRC time twice).
   */
  #cost(n: number, k: number): number {
    const c = this.costs;
    let prev = this.#prev as number;
    let cost = 0;
    for (let i = 0; i < n; i += k) {
      const all = this.#allErased(k, prev);
      const len = k * SECTOR;
      cost += c.crcTripMs + len * c.crcMsPerByte + all * (c.crcTripMs + len * c.crcMsPerByte) +
        (1 - all) * k * c.readSectorMs;
      prev = all;
    }
    return cost;
  }
  /**
   * The unit size (in sectors: 16, 8, 4, 2 or 1, at most `n`) to map the next aligned block of
   * `n` sectors with: the cheapest in expectation.
   */
  chooseUnit(n: number): number {
    let best = 1;
    let bestCost = this.#cost(n, 1);
    for (let k = 2; k <= n; k *= 2) {
      const cost = this.#cost(n, k);
      if (cost < bestCost) [best, bestCost] = [k, cost];
    }
    return best;
  }
  /** Whether one CRC over the whole range (of `n` sectors) is expected to pay. */
  wholeRangePays(n: number): { pays: boolean; reason: string } {
    const c = this.costs;
    const all = this.#allErased(n, this.#prev);
    const probe = c.crcTripMs + n * SECTOR * c.crcMsPerByte;
    const saves = all * n * c.readSectorMs;
    return {
      pays: saves > probe,
      reason: `expected saving ${saves.toFixed(1)} ms (P(all erased) ${all.toExponential(1)}) vs ${
        probe.toFixed(1)
      } ms for one CRC of the range`,
    };
  }
  /** Learn from a mapped unit of `n` sectors. */
  observe(n: number, erased: boolean): void {
    this.#seen += n;
    if (erased) this.#erased += n;
    if (this.#prev) {
      this.#ee[1] += 1;
      if (erased) this.#ee[0] += 1;
    }
    if (erased) {
      this.#ee[0] += n - 1;
      this.#ee[1] += n - 1;
    }
    this.#prev = erased ? 1 : 0;
  }
}

/** Options of {@link mapRange}. */
export interface MapOptions {
  /** Sector-aligned range. */
  lo: number;
  hi: number;
  /** Timing model whose CRC speed and latencies price the plan (default: the built-in one). */
  timing?: Pick<TimingModel, "crcBytesPerSec" | "usbTurnaroundMs" | "loaderReplyMs"> & { srWriteMs?: number };
  attempts: number;
  op: string;
}

/**
 * Map `[lo, hi)` by chip CRC (step 1 of the module documentation) and confirm the candidates
 * (step 2). Every byte lies in exactly one unit, in address order.
 */
export async function mapRange(
  ctx: FlasherContext,
  opts: MapOptions,
): Promise<{ units: MapUnit[]; report: ErasedReport }> {
  const timing = opts.timing ?? ctx.timing ?? DEFAULT_TIMING;
  const planner = new ErasedPlanner(planCosts(timing, ctx.baud ?? 921600, ctx.target.eraseBeforeProgram));
  const crcOf = (addr: number, len: number) =>
    withRetries(ctx, opts.op, addr, opts.attempts, () => ctx.target.crc(addr, len));
  const units: MapUnit[] = [];
  const probe = async (addr: number, len: number) => {
    const crc = await crcOf(addr, len);
    const candidate = crc === erasedCrc(len);
    planner.observe(len / SECTOR, candidate);
    const u = { addr, len, crc, candidate, erased: false };
    units.push(u);
    return u;
  };
  const { lo, hi } = opts;
  const whole = planner.wholeRangePays((hi - lo) / SECTOR);
  let done = false;
  if (whole.pays && hi - lo > SECTOR) {
    // a range found not blank says nothing about its parts: only a blank one is learnt from
    const crc = await crcOf(lo, hi - lo);
    if (crc === erasedCrc(hi - lo)) {
      planner.observe((hi - lo) / SECTOR, true);
      units.push({ addr: lo, len: hi - lo, crc, candidate: true, erased: false });
      done = true;
    }
  }
  for (let a = lo; !done && a < hi;) {
    const blockEnd = Math.min(hi, Math.floor(a / BLOCK) * BLOCK + BLOCK);
    // units are aligned to their size: a block's own sectors only once `a` is off its start
    const n = (blockEnd - a) / SECTOR;
    const k = a % BLOCK === 0 && n === BLOCK / SECTOR ? planner.chooseUnit(n) : 1;
    for (let u = a; u < blockEnd; u += k * SECTOR) await probe(u, k * SECTOR);
    a = blockEnd;
  }
  const checks = await confirm(units, crcOf);
  const regions: { addr: number; len: number }[] = [];
  for (const u of units) {
    if (!u.erased) continue;
    const last = regions[regions.length - 1];
    if (last && last.addr + last.len === u.addr) last.len += u.len;
    else regions.push({ addr: u.addr, len: u.len });
  }
  const sizes: Record<number, number> = {};
  for (const u of units) sizes[u.len] = (sizes[u.len] ?? 0) + 1;
  return {
    units,
    report: {
      method:
        "chip CRC-32 of each region equal to that of 0xFF over its length, confirmed by a second chip CRC over spans that cut every region in two (whole 256-byte chunks, lengths unlike the regions')",
      crcBytesPerSec: timing.crcBytesPerSec,
      wholeRange: { probed: whole.pays && hi - lo > SECTOR, reason: whole.reason },
      units: sizes,
      confirmations: checks.length,
      refuted: checks.filter((c) => !c.ok).length,
      regions,
      bytes: regions.reduce((n, r) => n + r.len, 0),
    },
  };
}

/**
 * The confirming spans of a run of candidate units: every unit is cut in two, alternately at
 * its middle and at its first quarter, and the spans run from cut to cut (the first from the
 * run's start, the last to its end). So every byte of the run is covered once more, every unit
 * is split into two parts each of which must collide on its own, and a span whose length
 * equals that of a unit it overlaps (mixed unit sizes can make one) loses a head of a few
 * 256-byte chunks to a span of its own, so that no confirming reply can be mistaken for a map
 * reply of the same length.
 */
export function confirmSpans(run: readonly { addr: number; len: number }[]): { addr: number; len: number }[] {
  const start = run[0].addr;
  const end = run[run.length - 1].addr + run[run.length - 1].len;
  const cuts = run.map((u, i) => u.addr + (i % 2 === 0 ? u.len / 2 : u.len / 4));
  const clash = (at: number, len: number) =>
    run.some((u) => u.len === len && u.addr < at + len && u.addr + u.len > at);
  const spans: { addr: number; len: number }[] = [];
  let at = start;
  for (const c of [...cuts, end]) {
    if (c <= at) continue;
    const len = c - at;
    // split off a head shorter than a sector (no unit is that short) until the rest fits
    let head = 0;
    while (head < len && clash(at + head, len - head)) head += 256;
    if (head > 0) spans.push({ addr: at, len: head });
    if (head < len) spans.push({ addr: at + head, len: len - head });
    at = c;
  }
  return spans;
}

async function confirm(
  units: MapUnit[],
  crcOf: (addr: number, len: number) => Promise<number>,
): Promise<ConfirmCheck[]> {
  const checks: ConfirmCheck[] = [];
  for (let i = 0; i < units.length;) {
    if (!units[i].candidate) {
      i++;
      continue;
    }
    let j = i;
    while (j < units.length && units[j].candidate) j++;
    const run = units.slice(i, j);
    for (const span of confirmSpans(run)) {
      const ok = (await crcOf(span.addr, span.len)) === erasedCrc(span.len);
      checks.push({ ...span, ok });
    }
    for (const u of run) {
      const end = u.addr + u.len;
      u.erased = checks.every((c) => c.ok || c.addr >= end || c.addr + c.len <= u.addr);
    }
    i = j;
  }
  return checks;
}
