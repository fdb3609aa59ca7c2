/**
 * The fingerprint of a chip as a write job found it: a CRC of every 64 KiB window of the whole
 * flash, cut at the job's edges, taken before the job's first erase and kept in its journal.
 * A resumed job compares the chip with it before it touches anything: outside the job's range
 * the chip must still hold exactly what it held then (else it is another device, or newer data
 * was written since), and the interrupted job's backup must reproduce it (else the backup was
 * changed after it was taken).
 *
 * Granularity: 64 KiB. With a chip-side CRC this costs one CheckCRC round trip per window
 * (34 on a 2 MiB flash with the job's two edges: about 34 × 26 bytes on the wire) plus the
 * chip's CRC engine over the whole flash (0.26 s for 2 MiB at the timing model's 8 MB/s);
 * 4 KiB windows would cost 16 times the round trips for a finer name of what changed, which a
 * resume gets anyway by narrowing a changed window with the backup's sector CRCs. Without a
 * chip CRC (SPI) the fingerprint is computed from the backup, which that path has just read
 * and re-read, and a resume reads the windows it compares.
 *
 * @module
 */

import { crc32 } from "../crc.ts";
import type { Span } from "./compare.ts";
import type { FlasherContext } from "./context.ts";
import { readSectorRun } from "./read_ahead.ts";
import { withRetries } from "./retry.ts";
import type { ByteSource } from "./source.ts";
import { SECTOR } from "../target.ts";

/** Window of the fingerprint (bytes). */
export const FINGERPRINT_WINDOW = 0x10000;

/** The fingerprint as the journal keeps it. */
export interface Fingerprint {
  /** Window size in bytes. */
  window: number;
  /** Where the CRCs come from: the chip's CRC command, or the backup (no chip CRC). */
  source: "chip" | "backup";
  /** `[addr, len, standard CRC-32 as 8 hex digits]` of each window, in address order. */
  spans: [number, number, string][];
}

/** The whole flash of `size` bytes in windows of {@link FINGERPRINT_WINDOW}, cut at `addr` and `end`. */
export function fingerprintSpans(addr: number, end: number, size: number): Span[] {
  const cuts = new Set<number>([0, size, addr, end]);
  for (let a = 0; a < size; a += FINGERPRINT_WINDOW) cuts.add(a);
  const sorted = [...cuts].filter((a) => a >= 0 && a <= size).sort((x, y) => x - y);
  const out: Span[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) out.push({ addr: sorted[i], len: sorted[i + 1] - sorted[i] });
  return out;
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");

/** Standard CRC-32 of a span of the chip: its CRC command, or a read of its sectors. */
export async function chipSpanCrc(ctx: FlasherContext, span: Span, op = "resume"): Promise<number> {
  if (ctx.target.hasChipCrc) {
    return await withRetries(ctx, op, span.addr, 3, () => ctx.target.crc(span.addr, span.len));
  }
  const sectors: number[] = [];
  for (let s = span.addr; s < span.addr + span.len; s += SECTOR) sectors.push(s);
  const got = new Map<number, Uint8Array>();
  await readSectorRun(ctx, sectors, { op, attempts: 3 }, (s, d) => void got.set(s, d));
  let crc = 0;
  for (const s of sectors) crc = crc32(got.get(s)!, crc);
  return crc;
}

/**
 * Take the fingerprint of the chip around the job `[addr, end)`: from the chip where it has a
 * CRC command, else from `backup` (the whole flash as just read); null when neither.
 */
export async function takeFingerprint(
  ctx: FlasherContext,
  addr: number,
  end: number,
  backup: ByteSource | null,
): Promise<Fingerprint | null> {
  const spans = fingerprintSpans(addr, end, ctx.flashSize);
  if (ctx.target.hasChipCrc) {
    const out: [number, number, string][] = [];
    for (const s of spans) out.push([s.addr, s.len, hex8(await chipSpanCrc(ctx, s, "fingerprint"))]);
    return { window: FINGERPRINT_WINDOW, source: "chip", spans: out };
  }
  if (!backup) return null;
  const crcs = await sourceSpanCrcs(backup, spans);
  return {
    window: FINGERPRINT_WINDOW,
    source: "backup",
    spans: spans.map((s, i) => [s.addr, s.len, hex8(crcs[i])]),
  };
}

/** Standard CRC-32 of each span of a whole-flash source (spans in address order). */
export async function sourceSpanCrcs(source: ByteSource, spans: readonly Span[]): Promise<number[]> {
  const out: number[] = [];
  for (const s of spans) out.push(crc32(await source.read(s.addr, s.len)));
  return out;
}

/** The windows of `fp` whose CRC differs from `crcs` (same order), as spans. */
export function differingWindows(fp: Fingerprint, crcs: readonly number[]): Span[] {
  return fp.spans.filter((w, i) => w[2] !== hex8(crcs[i])).map(([addr, len]) => ({ addr, len }));
}

/** Whether `x` is a well-formed fingerprint of a flash of `size` bytes. */
export function isFingerprint(x: unknown, size: number): x is Fingerprint {
  if (typeof x !== "object" || x === null) return false;
  const o = x as Record<string, unknown>;
  if (!Array.isArray(o.spans) || typeof o.window !== "number") return false;
  let at = 0;
  for (const w of o.spans as unknown[]) {
    if (!Array.isArray(w) || w.length !== 3) return false;
    const [a, n, c] = w;
    if (a !== at || !Number.isSafeInteger(n) || n <= 0 || typeof c !== "string" || !/^[0-9a-f]{8}$/.test(c)) {
      return false;
    }
    at += n as number;
  }
  return at === size;
}
