/**
 * Erased-region detection: which parts of the flash are entirely 0xFF, learnt from the chip's
 * CheckCRC (13 bytes out, 11 back, plus the chip's CRC time) instead of reading them.
 *
 * 1. **Map**: every byte of the range ends in exactly one *unit* with its chip CRC: the whole
 *    range, or an aligned part of a 64 KiB block (64 down to 4 KiB), chosen by expected cost
 *    ({@link ErasedPlanner}); a unit found written may be mapped again as two halves, which
 *    then replace it.
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
 * What the planner expects of the next sectors, and how it maps a block by it.
 *
 * Expectation: a two-state chain learnt from the units mapped so far. After an erased unit the
 * next sector is erased with the learnt probability that an erased sector follows an erased one;
 * after a written unit (or at the start), with the learnt probability that an erased run starts
 * after a written sector. Real flash holds long runs of both (an app, then the blank rest of its
 * partition), so both transitions are rare, yet a run may start anywhere inside a block. The
 * prior, worth {@link PRIOR_WEIGHT} transitions each: 38 % of sectors erased (the corpus statistic
 * of real 2 MiB dumps) in runs of about 50 sectors (as in the dumps we have), so P(erased →
 * erased) = 0.98 and P(written → erased) = 0.38 · 0.02 / 0.62 ≈ 0.012 (the chain's stationary
 * share is then 38 %).
 *
 * Plan: a block is cut into aligned units of 16, 8, 4, 2 or 1 sectors, not necessarily all of one
 * size, by the least expected cost (each half of a unit is priced on its own, its first sector
 * expected from what is expected of the sector before it). So a block inside a written run is one
 * unit, except where an erased run is likely enough to start in it: then its tail is cut finer,
 * where such a run would lie. Every byte still gets exactly one map CRC: the plan only moves the
 * boundaries, and with them the round trips and what is read.
 */
export class ErasedPlanner {
  readonly costs: PlanCosts;
  /** [erased → erased, from erased] and [written → erased, from written] transition counts. */
  #ee = [0.98 * PRIOR_WEIGHT, PRIOR_WEIGHT];
  #we = [(0.38 * 0.02 / 0.62) * PRIOR_WEIGHT, PRIOR_WEIGHT];
  /** P(the last sector mapped is erased). */
  #prev = 0;
  constructor(costs: PlanCosts) {
    this.costs = costs;
  }
  #pe(): number {
    return this.#ee[0] / this.#ee[1];
  }
  #pw(): number {
    return this.#we[0] / this.#we[1];
  }
  /** P(a sector is erased) given P(the sector before it is erased) = `q`. */
  #next(q: number): number {
    return q * this.#pe() + (1 - q) * this.#pw();
  }
  /** Probability that all of the next `n` sectors are erased, the one before erased with P `q`. */
  #allErased(n: number, q: number): number {
    return this.#next(q) * this.#pe() ** (n - 1);
  }
  /**
   * Expected cost of one unit of `n` sectors: its CRC round trip and CRC time, a confirming CRC
   * when it is erased, and the read of all its sectors when it is not.
   */
  #unitCost(n: number, q: number): number {
    const c = this.costs;
    const all = this.#allErased(n, q);
    const crc = c.crcTripMs + n * SECTOR * c.crcMsPerByte;
    return crc + all * crc + (1 - all) * n * c.readSectorMs;
  }
  /** The cheapest aligned cut of `n` sectors (a power of two) into units, and its expected cost. */
  #best(n: number, q: number): { cost: number; parts: number[] } {
    const whole = { cost: this.#unitCost(n, q), parts: [n] };
    if (n === 1) return whole;
    const left = this.#best(n / 2, q);
    let qMid = q;
    for (let i = 0; i < n / 2; i++) qMid = this.#next(qMid);
    const right = this.#best(n / 2, qMid);
    const cost = left.cost + right.cost;
    return cost < whole.cost ? { cost, parts: [...left.parts, ...right.parts] } : whole;
  }
  /**
   * The units (in sectors, in address order) to map the next aligned block of `n` sectors with,
   * `n` a power of two: the cheapest cut in expectation.
   */
  plan(n: number): number[] {
    return this.#best(n, this.#prev).parts;
  }
  /**
   * Whether a unit of `n` sectors (next after what was observed so far), once found written, is
   * expected to pay for being mapped again as two halves: their CRCs (the unit's CRC time once
   * more, two round trips, a confirming CRC for a half found erased) against the reads of a half
   * that is erased while the other is not (an erased run ending or starting in the unit, or a
   * lone written sector in an erased run), given that the unit is not erased as a whole.
   */
  refinePays(n: number): boolean {
    if (n < 2) return false;
    const c = this.costs;
    const q = this.#prev;
    const both = this.#allErased(n, q);
    if (both >= 1) return false;
    let qMid = q;
    for (let i = 0; i < n / 2; i++) qMid = this.#next(qMid);
    const left = this.#allErased(n / 2, q);
    const right = this.#allErased(n / 2, qMid);
    const oneHalf = (Math.max(0, left - both) + Math.max(0, right - both)) / (1 - both);
    const saves = oneHalf * (n / 2) * c.readSectorMs;
    const half = c.crcTripMs + (n / 2) * SECTOR * c.crcMsPerByte;
    return saves > 2 * half + oneHalf * half;
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
  /**
   * Learn from a mapped unit of `n` sectors. A unit found written counts as written throughout,
   * but its last sector may still be erased (an erased run may start inside it): what comes next
   * is expected from the chance of that.
   */
  observe(n: number, erased: boolean): void {
    const q = this.#prev;
    const all = this.#allErased(n, q);
    let last = q;
    for (let i = 0; i < n; i++) last = this.#next(last);
    this.#ee[1] += q;
    this.#we[1] += 1 - q;
    if (erased) {
      this.#ee[0] += q;
      this.#we[0] += 1 - q;
    }
    const within = erased ? this.#ee : this.#we;
    within[1] += n - 1;
    if (erased) within[0] += n - 1;
    this.#prev = erased ? 1 : all >= 1 ? 0 : Math.max(0, last - all) / (1 - all);
  }
}

/** Weight of the planner's prior, in transitions of each kind. */
export const PRIOR_WEIGHT = 64;

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
  // a unit found written is mapped again as halves where the planner expects that to pay; only
  // the units that are kept are learnt from, and every byte ends in exactly one kept unit
  const probe = async (addr: number, len: number): Promise<void> => {
    const refine = planner.refinePays(len / SECTOR);
    const crc = await crcOf(addr, len);
    const candidate = crc === erasedCrc(len);
    if (!candidate && refine) {
      await probe(addr, len / 2);
      await probe(addr + len / 2, len / 2);
      return;
    }
    planner.observe(len / SECTOR, candidate);
    units.push({ addr, len, crc, candidate, erased: false });
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
    const parts = a % BLOCK === 0 && n === BLOCK / SECTOR ? planner.plan(n) : new Array<number>(n).fill(1);
    for (let u = a, i = 0; u < blockEnd; u += parts[i++] * SECTOR) await probe(u, parts[i] * SECTOR);
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
