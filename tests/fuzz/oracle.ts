/**
 * The fuzz oracle: the invariants one run is held to (see scenario.ts for the list), each a
 * function of the scenario, the rig's records and the flash before and after, returning every
 * breach as a violation string. Every exclusion states the protocol reason it rests on.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { type ChipProfile, CHIPS } from "../../core/chips/profiles.ts";
import { FlashError } from "../../core/errors.ts";
import { type MemoryStore, parseJournal, PROGRAM_ATTEMPTS, SECTOR } from "../../core/flasher/mod.ts";
import type { FlashPart } from "../../core/spi/jedec.ts";
import { needsUnprotect, srBytes, unprotectedValue } from "../../core/spi/status.ts";
import { COMMANDS } from "../../core/uart/table.ts";
import type { FaultKind } from "../../emulator/faults.ts";
import { NorFlash } from "../../emulator/nor.ts";
import { baudWorks } from "../../core/uart/baud.ts";
import { loaderFamilyOf } from "../../core/chips/loaders.ts";
import type { ChipChange, FrameLog, Rig } from "./rigs.ts";
import type { RunOutcome, Scenario } from "./scenario.ts";

/**
 * Whether the key guard of the requested chip mode must refuse this chip, both ways: an
 * enforcing mode (BK7231N) refuses any other key; a warning mode (BK7231M) still refuses a key
 * that is exactly one sibling's expected key (the Tuya key on a BK7231N), since that key says
 * which chip it is (docs/uart.md, the N/M guard).
 */
export function keyGuardMustRefuse(rig: Rig): boolean {
  const want = rig.requested.key;
  const have = rig.profile.key?.words;
  if (rig.requested === rig.profile || !want || !have || want.words.every((w, i) => w === have[i])) {
    return false;
  }
  if (want.check === "enforce") return true;
  const owners = CHIPS.filter((c) =>
    c.uart && c.personality === rig.profile.personality && c.chipId === rig.profile.chipId &&
    c.key !== null &&
    c.key.words.every((w, i) => w === have[i])
  );
  return want.check === "warn" && owners.length === 1 && owners[0].id !== rig.requested.id;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0 && a.length % 4 === 0) {
    const x = new Uint32Array(a.buffer, a.byteOffset, a.length / 4);
    const y = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const hex = (n: number) => `0x${n.toString(16)}`;

/** A byte range `[start, end)`. */
export interface Range {
  start: number;
  end: number;
}

export const inRanges = (ranges: readonly Range[], a: number) =>
  ranges.some((r) => a >= r.start && a < r.end);

/**
 * Whether `now` differs from `ref` anywhere in [from, to), leaving out bytes in `except` (flash a
 * corrupted request changed, which no job did on purpose).
 */
export function differsIn(
  now: Uint8Array,
  ref: Uint8Array,
  from: number,
  to: number,
  except: Range[] = [],
): boolean {
  if (from >= to || equalBytes(now.subarray(from, to), ref.subarray(from, to))) return false;
  for (let a = from; a < to; a++) if (now[a] !== ref[a] && !inRanges(except, a)) return true;
  return false;
}

/**
 * Whether some status write the part accepts would clear its protection, starting from status
 * word `sr` with WP# at the given level: tried on a scratch copy of the emulated flash, so the
 * answer is the chip's, not the host's idea of it.
 */
export function canUnprotect(part: FlashPart, sr: number, wpHigh: boolean): boolean {
  if (part.srCount === 0 || !needsUnprotect(part, sr)) return true;
  const probe = new NorFlash({ part, sr, wpHigh });
  const want = () => srBytes(part, unprotectedValue(part, probe.srWord));
  probe.writeSr(0x01, Uint8Array.from(want()), 0);
  for (const [op, reg] of [[0x01, 0], [0x31, 1], [0x11, 2]] as const) {
    if (!needsUnprotect(part, probe.srWord)) break;
    if (reg < part.srCount && part.srWriteOpcodes.includes(op)) {
      probe.writeSr(op, Uint8Array.of(want()[reg]), 0);
    }
  }
  return !needsUnprotect(part, probe.srWord);
}

/** The chip's protection could not be cleared, at the start of the run or as the run left it. */
export function chipLocked(s: Scenario, nor: NorFlash): boolean {
  return !canUnprotect(nor.part, s.protect, !s.wpLow) || !canUnprotect(nor.part, nor.srWord, nor.wpHigh);
}

/** Why a failure is nonetheless legitimate for this scenario, or null. Each reason is exact. */
export function legitimateRefusal(
  s: Scenario,
  rig: Rig,
  addr: number,
  image: Uint8Array,
  before: Uint8Array,
  e: unknown,
): string | null {
  if (!(e instanceof FlashError)) return null;
  const code = e.code === "WRITE_FAILED" && e.cause instanceof FlashError ? e.cause.code : e.code;
  // the status register really is locked (SRP, WP#, read-only bits): no host can write around it
  if (code === "FLASH_LOCKED" && chipLocked(s, rig.nor)) return "locked status register";
  // the chip carries another eFuse key than the chip mode asked for: refusing is the key guard
  if (code === "WRONG_KEY" && rig.requested !== rig.profile) return "the chip carries another key";
  // a rate the chip's 26 MHz UART divisor cannot make closely enough: refused before linking
  if (code === "USAGE" && s.path === "uart" && !baudWorks(s.baud)) {
    return "the chip cannot make the baud rate";
  }
  // the boot loader itself refuses its own window over the UART (only SPI can write it)
  if (code === "BOOTLOADER_GUARD" && s.path === "uart" && addr < rig.profile.loaderProtectedEnd) {
    return "the loader guards its window";
  }
  // a BK7236-class loader answers nothing there: the client refuses before sending
  const f = loaderFamilyOf(rig.profile).forbidden;
  if (
    code === "BOOTLOADER_GUARD" && s.path === "uart" && f.answer === "silence" &&
    f.ranges.some((r) => addr < r.end)
  ) return "the loader ignores its forbidden range";
  // the user did not pass --overwrite-bootloader: refusing is the tool's own guard
  if (code === "BOOTLOADER_GUARD" && s.low && s.allowLow === false) return "no --overwrite-bootloader";
  // a resume asked to write the first run's collateral back (--restore-outside) refuses where it
  // lies in the bootloader window and --overwrite-bootloader was not given; its error names the
  // sectors (checked like any damage range)
  if (
    code === "BOOTLOADER_GUARD" && !(s.low && s.allowLow !== false) && e.damage !== undefined &&
    e.damage.start < 0x11000
  ) return "the collateral to write back lies in the bootloader window";
  if (
    s.op === "verify" && code === "VERIFY_FAILED" &&
    !equalBytes(before.subarray(addr, addr + image.length), image)
  ) return "the image differs";
  return null;
}

/** Whether `needle` occurs in the concatenation of `chunks`. */
export function occursIn(chunks: readonly Uint8Array[], needle: Uint8Array): boolean {
  const hay = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    hay.set(c, o);
    o += c.length;
  }
  outer: for (
    let i = hay.indexOf(needle[0]);
    i >= 0 && i + needle.length <= hay.length;
    i = hay.indexOf(needle[0], i + 1)
  ) {
    for (let k = 1; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

/**
 * Which flash changes the host asked for: a change the chip carried out is the host's while the
 * host had sent its very request (the same bytes) more often, up to the change, than the chip
 * has carried it out on the host's behalf so far (in time order). Also the host's send times by
 * request.
 */
function attribute(
  rig: Rig,
  logs: (FrameLog | null)[],
): { sends: Map<string, number[]>; verdict: Map<number, boolean> } {
  const sends = new Map<string, number[]>();
  for (const log of logs) {
    for (const x of log?.sends ?? []) sends.set(x.key, [...(sends.get(x.key) ?? []), x.t]);
  }
  const honoured = new Map<string, number>();
  const verdict = new Map<number, boolean>();
  for (const c of rig.changes) {
    if (verdict.has(c.seq)) continue;
    const sent = (sends.get(c.request) ?? []).filter((t) => t <= c.at).length;
    const done = honoured.get(c.request) ?? 0;
    verdict.set(c.seq, done < sent);
    if (done < sent) honoured.set(c.request, done + 1);
  }
  return { sends, verdict };
}

/**
 * Flash a run changed at its exact address for a request the host never sent (corrupted on the
 * wire) and whose reply never reached the host's parser intact (lost, cut off by a power
 * failure, or flushed as stale before the next request), or is identical to the reply of a
 * request the host did send earlier. Any other reply that arrived names the change, and the host
 * must report it: that one is not deferrable.
 */
export function corruptedChanges(
  rig: Rig,
  logs: (FrameLog | null)[],
  unheardOnly = true,
  fromChange = 0,
): Range[] {
  // the same bytes may also be a request the host sent at another time: in time order, a request
  // the chip carries out is the host's only while the host had sent it more often than the chip
  // has carried it out on the host's behalf so far
  const { sends, verdict } = attribute(rig, logs);
  const out: Range[] = [];
  for (const [i, c] of rig.changes.entries()) {
    if (verdict.get(c.seq) || i < fromChange) continue;
    // a reply the host heard names the change, unless it is the very reply of a request the host
    // itself sent before (a late duplicate of its own, as far as any host can tell)
    const echoesOwn = (sends.get(c.request) ?? []).some((t) => t <= c.at);
    // nor is a reply byte for byte equal to one the host had already heard before the change (the
    // reply of another request to the same address: a FlashWrite4K reply echoes no data), which
    // no host can tell from a late duplicate of that one
    const before = rig.heard.filter((_, i) => rig.heardAt[i] < c.at);
    const since = rig.heard.filter((_, i) => rig.heardAt[i] >= c.at);
    if (
      unheardOnly && !echoesOwn && c.reply && c.reply.length > 0 && occursIn(since, c.reply) &&
      !occursIn(before, c.reply)
    ) continue;
    const end = c.start + c.len;
    out.push({ start: c.start, end: Math.min(end, rig.size) });
    // a unit that runs past the end of the flash wraps to its start
    if (end > rig.size) out.push({ start: 0, end: end - rig.size });
  }
  return out;
}

/** What one run is checked against. */
export interface RunCheck {
  phase: "run" | "recovery";
  run: RunOutcome;
  /** The flash when this run started (what a read must return). */
  before: Uint8Array;
  /** The flash before the first run: what everything outside the job must still hold. */
  original: Uint8Array;
  now: Uint8Array;
  /** Flash changed for corrupted requests whose finding may wait for the resumed job. */
  deferrable: Range[];
  /**
   * Damage the first run named (and, without a backup to restore from, could not undo): a
   * recovery that is not a resume starts from there and is not held to it.
   */
  named: Range[];
  /** Deferred findings of the first run that no resumed job checked: undetectable. */
  unseen: Range[];
  /** Ranges a `crc-erased` reply covered during this run (see {@link crcLies}). */
  lied: Range[];
}

/**
 * The ranges whose CheckCRC reply the `crc-erased` fault replaced by the CRC of 0xFF, from the
 * fault events `events` (emulator/faults/crc_lie.ts names the range in its detail).
 */
export function crcLies(events: readonly { kind: string; detail: string }[]): Range[] {
  const out: Range[] = [];
  for (const f of events) {
    if (f.kind !== "crc-erased") continue;
    const m = /CheckCRC 0x([0-9a-f]+)\+0x([0-9a-f]+)/.exec(f.detail);
    if (!m) throw new Error(`crc-erased event without its range: ${f.detail}`);
    const start = parseInt(m[1], 16);
    out.push({ start, end: start + parseInt(m[2], 16) });
  }
  return out;
}

/**
 * Whether every byte of the range that differs from the image lies where a `crc-erased` reply
 * said "all 0xFF" and the image is 0xFF there. A CheckCRC reply carries no checksum of its own
 * (docs: the boot protocol's frames have none), so such a reply is, to any host, proof that the
 * range already holds a blank image: a write or erase that skips it, or a verify that passes,
 * stopped short because of that one reply, a limit of the protocol and not of the tool. Any
 * other differing byte still counts.
 */
export function shortByCrcLie(
  now: Uint8Array,
  image: Uint8Array,
  addr: number,
  lied: readonly Range[],
): boolean {
  if (lied.length === 0) return false;
  for (let i = 0; i < image.length; i++) {
    if (now[addr + i] === image[i]) continue;
    if (image[i] !== 0xff || !inRanges(lied, addr + i)) return false;
  }
  return true;
}

/** Findings of one run: violations, and (first run only) findings deferred to the resumed job. */
export function checkRun(
  c: RunCheck,
  s: Scenario,
  rig: Rig,
  image: Uint8Array,
  addr: number,
  changes: boolean,
): { violations: string[]; deferred: Range[]; undetectable: Range[]; limits: string[] } {
  const { phase, run, now, original } = c;
  const out: string[] = [];
  const limits: string[] = [];
  const deferred: Range[] = [];
  const undetectable: Range[] = [];
  const end = addr + image.length;
  const e = run.error;
  if (run.silentReadAheadOff) out.push(`${phase}: read-ahead was turned off without a notice`);
  if (e === null) {
    if (changes && !equalBytes(now.subarray(addr, end), image)) {
      const v = `${phase}: ${s.op} reported success but the range differs from the image`;
      if (shortByCrcLie(now, image, addr, c.lied)) {
        limits.push(`${v} (one CheckCRC reply carried the CRC of 0xFF)`);
      } else out.push(v);
    }
    if (s.op === "read" && run.data && !equalBytes(run.data, c.before.subarray(addr, end))) {
      out.push(`${phase}: read returned bytes that differ from the flash`);
    }
    if (s.op === "verify" && !equalBytes(now.subarray(addr, end), image)) {
      const v = `${phase}: verify passed on differing flash`;
      if (shortByCrcLie(now, image, addr, c.lied)) {
        limits.push(`${v} (one CheckCRC reply carried the CRC of 0xFF)`);
      } else out.push(v);
    }
  } else if (!(e instanceof FlashError)) out.push(`${phase}: untyped failure ${describe(e)}`);
  else if (!e.message || !e.remedy) out.push(`${phase}: ${e.code} without cause or remedy`);
  const damage = e instanceof FlashError ? e.damage : undefined;
  // every byte that differs from the original must be the image's (inside the range of a write or
  // erase) or be covered by the damage range of the error; every offending run is reported
  let open: { start: number; end: number; where: string; bytes: number } | null = null;
  const runs: { start: number; end: number; where: string; bytes: number }[] = [];
  for (let sec = 0; sec < rig.size; sec += SECTOR) {
    if (equalBytes(now.subarray(sec, sec + SECTOR), original.subarray(sec, sec + SECTOR))) continue;
    for (let a = sec; a < sec + SECTOR; a++) {
      if (now[a] === original[a]) continue;
      const inRange = a >= addr && a < end;
      if (changes && inRange && now[a] === image[a - addr]) continue;
      if (e !== null && damage && a >= damage.start && a < damage.end) continue;
      if (inRanges(c.named, a)) continue;
      if (e !== null && inRanges(c.deferrable, a)) {
        // a corrupted request changed this very byte and its reply never reached the host, and the
        // failing job stopped before its final comparisons (the rest of the chip with the backup,
        // the range with the image): the next job, which makes both, is held to it instead
        if (!deferred.length || deferred[deferred.length - 1].end !== a) {
          deferred.push({ start: a, end: a + 1 });
        } else deferred[deferred.length - 1].end = a + 1;
        continue;
      }
      if (inRanges(c.unseen, a)) {
        if (!undetectable.length || undetectable[undetectable.length - 1].end !== a) {
          undetectable.push({ start: a, end: a + 1 });
        } else undetectable[undetectable.length - 1].end = a + 1;
        continue;
      }
      const where = inRange ? "inside" : "outside";
      if (open && open.where === where && a - open.end < SECTOR) {
        open.end = a + 1;
        open.bytes++;
      } else {
        open = { start: a, end: a + 1, where, bytes: 1 };
        runs.push(open);
      }
    }
  }
  for (const r of runs) {
    const span = `${hex(r.start)}..${hex(r.end - 1)} (${r.bytes} byte(s), ${r.where} ${hex(addr)}..${
      hex(end)
    })`;
    out.push(
      e === null
        ? `${phase}: ${s.op} succeeded but changed ${span} to neither old nor image`
        : `${phase}: ${codeOf(e)} left ${span} changed, ${
          damage
            ? `but its damage range is ${hex(damage.start)}..${hex(damage.end)}`
            : "but names no damage range"
        }`,
    );
  }
  return { violations: out, deferred, undetectable, limits };
}

/** The backups (full-flash images read before a job) a run of attempt `attempt` saved. */
export function backupsOf(store: MemoryStore, attempt: number): string[] {
  const stamp = backupStamp(attempt);
  return [...store.entries.keys()].filter((n) =>
    n.endsWith(".bin") && !n.endsWith(".after.bin") && !n.includes(".overwritten-") && n.includes(`_${stamp}`)
  );
}

/** Copies of sectors saved before a write-back (`*.overwritten-*.bin`) in the store. */
export function sectorCopiesOf(store: MemoryStore): string[] {
  return [...store.entries.keys()].filter((n) => n.endsWith(".bin") && n.includes(".overwritten-"));
}

/**
 * The changes of requests the host sent itself (the complement of {@link corruptedChanges}),
 * from `rig.changes[from]` on.
 */
export function hostChanges(rig: Rig, logs: (FrameLog | null)[], from: number): ChipChange[] {
  const { verdict } = attribute(rig, logs);
  const out: ChipChange[] = [];
  for (const [i, c] of rig.changes.entries()) {
    if (verdict.get(c.seq) && i >= from) out.push(c);
  }
  return out;
}

/**
 * Every sector outside the job that the host itself erased or programmed (a write-back from
 * the backup) was saved first in a copy made by this run (`earlier`: the copies there before),
 * and each copy holds what its sectors held then: the flash as the run found it, except bytes
 * a corrupted request changed (which is why they were written back). Its sidecar carries its
 * CRC and its sectors.
 */
export function sectorCopyChecks(
  phase: string,
  store: MemoryStore,
  earlier: ReadonlySet<string>,
  written: readonly ChipChange[],
  before: Uint8Array,
  addr: number,
  end: number,
  stray: Range[],
): string[] {
  const out: string[] = [];
  const saved = new Set<number>();
  for (const name of sectorCopiesOf(store).filter((n) => !earlier.has(n))) {
    const bytes = store.entries.get(name)!;
    const side = store.entries.get(name.replace(/\.bin$/, ".json"));
    const sidecar = side
      ? JSON.parse(new TextDecoder().decode(side)) as { kind?: string; crc32?: string; sectors?: number[] }
      : null;
    const crc = (crc32(bytes) >>> 0).toString(16).padStart(8, "0");
    if (sidecar?.kind !== "sectors" || sidecar.crc32 !== crc || !Array.isArray(sidecar.sectors)) {
      out.push(`${phase}: sector copy ${name} has no sidecar with its CRC ${crc} and sectors`);
      continue;
    }
    if (sidecar.sectors.length * SECTOR !== bytes.length) {
      out.push(
        `${phase}: sector copy ${name} holds ${bytes.length} bytes for ${sidecar.sectors.length} sectors`,
      );
    }
    for (const [i, sec] of sidecar.sectors.entries()) {
      saved.add(sec);
      const copy = bytes.subarray(i * SECTOR, (i + 1) * SECTOR);
      for (let k = 0; k < SECTOR; k++) {
        if (copy[k] !== before[sec + k] && !inRanges(stray, sec + k)) {
          out.push(`${phase}: sector copy ${name} holds at ${hex(sec + k)} what the flash never held`);
          break;
        }
      }
    }
  }
  const unsaved = new Set<number>();
  for (const c of written) {
    for (let a = c.start - (c.start % SECTOR); a < c.start + c.len; a += SECTOR) {
      if ((a < addr || a >= end) && !saved.has(a)) unsaved.add(a);
    }
  }
  if (unsaved.size) {
    out.push(
      `${phase}: ${[...unsaved].map(hex).join(", ")} outside the job written back without a saved copy`,
    );
  }
  return out;
}

/** The wall time of the first run's job; a recovery's is an hour later. */
export const CREATED_AT = new Date("2026-01-01T00:00:00Z");

export function backupStamp(attempt: number): string {
  return new Date(CREATED_AT.getTime() + attempt * 3600_000).toISOString().replace(/\.\d+Z$/, "Z")
    .replace(/[-:]/g, "");
}

/**
 * A job that changed its range with a backup directory took a backup first; every backup a run
 * saved equals the flash as that run found it, and its sidecar carries its CRC.
 */
export function backupChecks(
  phase: string,
  s: Scenario,
  store: MemoryStore,
  attempt: number,
  before: Uint8Array,
  now: Uint8Array,
  addr: number,
  end: number,
  changes: boolean,
  resumed: boolean,
  corrupted: Range[],
): string[] {
  const out: string[] = [];
  const names = backupsOf(store, attempt);
  // an earlier backup the chip still matched may stand in for a new one (it is reused only then)
  const standIn = () => backupsOf(store, attempt - 1).some((n) => equalBytes(store.entries.get(n)!, before));
  if (
    s.backup && changes && !resumed && names.length === 0 && differsIn(now, before, addr, end, corrupted) &&
    !(attempt > 0 && standIn())
  ) {
    out.push(`${phase}: the ${s.op} changed ${hex(addr)}..${hex(end)} without a backup`);
  }
  for (const name of names) {
    const bytes = store.entries.get(name)!;
    const bad: string[] = [];
    for (let a = 0; a < before.length && bad.length < 8; a += SECTOR) {
      if (differsIn(bytes, before, a, a + SECTOR)) bad.push(hex(a));
    }
    if (bad.length) {
      out.push(`${phase}: backup ${name} differs from the flash before the job at ${bad.join(", ")}`);
    }
    const side = store.entries.get(name.replace(/\.bin$/, ".json"));
    const sidecar = side ? JSON.parse(new TextDecoder().decode(side)) as { crc32?: string } : null;
    const crc = (crc32(bytes) >>> 0).toString(16).padStart(8, "0");
    if (sidecar?.crc32 !== crc) out.push(`${phase}: backup ${name} has no sidecar with its CRC ${crc}`);
  }
  return out;
}

/**
 * The journal of a job ends "verified" with every planned sector done after a success, and
 * "failed" with only sectors done that hold the image after a failure (except bytes the error
 * names as damage or a corrupted request changed).
 */
export function journalChecks(
  phase: string,
  s: Scenario,
  store: MemoryStore,
  journalName: string | null,
  run: RunOutcome,
  before: Uint8Array,
  now: Uint8Array,
  image: Uint8Array,
  addr: number,
  excused: Range[],
): string[] {
  const end = addr + image.length;
  if (!s.backup || (s.op !== "write" && s.op !== "erase")) return [];
  const bytes = journalName ? store.entries.get(journalName) : undefined;
  if (!bytes) {
    // flash in the range changed: the job got past its first erase, which the journal precedes
    return differsIn(now, before, addr, end, excused)
      ? [`${phase}: the ${s.op} changed its range without a journal`]
      : [];
  }
  const j = parseJournal(new TextDecoder().decode(bytes));
  const out: string[] = [];
  if (run.error === null) {
    if (j.state !== "verified") out.push(`${phase}: the job succeeded but its journal says "${j.state}"`);
    const missing = j.planned.filter((p) => !j.done.includes(p));
    if (missing.length) out.push(`${phase}: the journal never marked ${missing.map(hex).join(", ")} done`);
  } else {
    if (j.state !== "failed") out.push(`${phase}: the job failed but its journal says "${j.state}"`);
    // a sector is marked done only once verified: after that only a corrupted request can change it
    for (const d of j.done) {
      if (d < addr || d >= end) {
        out.push(`${phase}: the journal marks ${hex(d)}, outside the job, done`);
        continue;
      }
      for (let a = d; a < d + SECTOR; a++) {
        if (now[a] === image[a - addr] || inRanges(excused, a)) continue;
        out.push(`${phase}: the journal marks ${hex(d)} done but ${hex(a)} does not hold the image`);
        break;
      }
    }
  }
  return out;
}

/**
 * The second job of a `concurrent` scenario ran while the first held the store: it must have
 * been refused as "in use" and left its chip as it was. Had it gone ahead, both jobs would pick
 * the same backup name and journal in the same second and one would overwrite the other's.
 */
export function rivalChecks(rival: { rig: Rig; pre: Uint8Array; out: RunOutcome }): string[] {
  const out: string[] = [];
  const e = rival.out.error;
  if (!(e instanceof FlashError && e.code === "PORT" && /in use by another/.test(e.message))) {
    out.push(
      `run: a second job on the same backup store, started while the first held it, ${
        e ? `failed with ${describe(e)}` : "went ahead"
      } instead of being refused`,
    );
  }
  if (!equalBytes(rival.rig.nor.read(0, rival.rig.size), rival.pre)) {
    out.push("run: the second job on the same backup store changed its chip's flash");
  }
  return out;
}

export function codeOf(e: unknown): string {
  return e instanceof FlashError ? e.code : e instanceof Error ? e.name : "thrown";
}

export function describe(e: unknown): string {
  if (e instanceof FlashError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Fault kinds that can change a byte the host hears (and so its idea of the status register). */
export const CORRUPTING: readonly FaultKind[] = [
  "rx-drop",
  "rx-flip",
  "rx-duplicate",
  "rx-garbage",
  "rx-stale",
  "baud-glitch",
  "baud-ignored",
  "tx-drop",
  "tx-flip",
  "tx-garbage",
  "tx-retarget",
];

/**
 * No status-register write when nothing needs clearing (each write wears the register and risks
 * a lock-up on power loss): a host may only be misled by a corrupted byte before it wrote.
 */
export function srWriteChecks(log: FrameLog, rig: Rig, phase: string): string[] {
  const out: string[] = [];
  for (const w of log.srWrites) {
    if (needsUnprotect(rig.nor.part, w.sr)) continue;
    if (rig.recorder.events.some((e) => e.t <= w.t && CORRUPTING.includes(e.kind))) continue;
    out.push(
      `${phase}: wrote the status register at ${w.t.toFixed(1)} ms with nothing to clear (SR ${hex(w.sr)})`,
    );
  }
  return out;
}

/** Faults that only slow the line down or cut what the host reads into pieces. */
export const TIMING_ONLY: readonly FaultKind[] = ["fragment", "delay"];

/**
 * Whether the first run's only faults were one or two dropped TX bytes (truncated requests) and
 * timing, on a loader that gets rid of a partial frame: one with a frame timeout abandons it,
 * and the T/U loader, which refuses its low window, has it completed by the client's filler
 * without harm. Each costs a retry, and every request gets three attempts at least: such a run
 * must succeed. The BootROM loader does neither and refuses no address, so a frame it was left
 * eating may complete as any request: not promised there.
 */
export function fewTruncatedRequests(s: Scenario, rig: Rig, faultCount: number): boolean {
  if (s.path !== "uart" || s.faultsDuringOpen) return false;
  const events = rig.recorder.events.slice(0, faultCount);
  const drops = events.filter((e) => e.kind === "tx-drop").length;
  if (drops < 1 || drops > 2) return false;
  if (events.some((e) => e.kind !== "tx-drop" && !TIMING_ONLY.includes(e.kind))) return false;
  const f = loaderFamilyOf(rig.profile);
  return f.frameTimeoutMs !== null ||
    (f.forbidden.answer === "status6" && f.forbidden.ranges.some((r) => r.start === 0));
}

/** Attempts the scenario allows SPI-mode entry (see `spiRig`). */
export const SPI_ENTRY_ATTEMPTS = 10;

/**
 * SPI-mode entry gives up only after its attempts: every failed attempt needs a refusal or a
 * corrupted USB transfer to explain it.
 */
export function spiEntryChecks(s: Scenario, rig: Rig, run: RunOutcome): string[] {
  if (s.path !== "spi" || !(run.error instanceof FlashError) || run.error.code !== "SPI_ENTRY") return [];
  const excuses =
    rig.recorder.events.filter((e) =>
      e.kind === "spi-entry-refused" || e.kind === "usb-flip" || e.kind === "usb-short"
    ).length;
  return excuses >= SPI_ENTRY_ATTEMPTS
    ? []
    : [`run: SPI-mode entry gave up after ${excuses} refusal(s) with ${SPI_ENTRY_ATTEMPTS} attempts allowed`];
}

export function checkFrames(log: FrameLog, profile: ChipProfile, phase: string): string[] {
  const out: string[] = [];
  const erases = new Map<string, number>();
  const writes = new Map<number, number>();
  for (const f of log.frames) {
    if (!f.known) {
      out.push(`${phase}: host sent unknown ${f.kind} command ${f.name}`);
      continue;
    }
    const spec = COMMANDS[f.name as keyof typeof COMMANDS];
    if (!spec.support.includes(profile.personality)) {
      out.push(`${phase}: host sent ${f.name}, which the ${profile.personality} loader lacks`);
    }
    if (f.name === "FlashErase" && f.addr !== undefined) {
      const k = `${f.size}@${f.addr}`;
      erases.set(k, (erases.get(k) ?? 0) + 1);
    }
    if (f.name === "FlashWrite4K" && f.addr !== undefined) writes.set(f.addr, (writes.get(f.addr) ?? 0) + 1);
  }
  for (const [k, n] of erases) {
    if (n > PROGRAM_ATTEMPTS) out.push(`${phase}: erase ${k} sent ${n} times (bound ${PROGRAM_ATTEMPTS})`);
  }
  for (const [a, n] of writes) {
    if (n > PROGRAM_ATTEMPTS) {
      out.push(`${phase}: program ${hex(a)} sent ${n} times (bound ${PROGRAM_ATTEMPTS})`);
    }
  }
  return [...new Set(out)];
}
