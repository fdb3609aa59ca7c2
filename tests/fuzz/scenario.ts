/**
 * One fuzz scenario (the runner; the rigs are in rigs.ts, the invariants in oracle.ts): a
 * virtual chip (any profile, UART or SPI path), a fault plan, one user
 * operation (write, erase, read, verify) run through the real core, then the invariants
 * checked against the emulator's flash. A failed operation is followed, when the scenario
 * asks for it, by the user's recovery (power back on, port reopened, faults gone, the same
 * command again with the journal's `--resume`), which must end verified.
 *
 * Invariants (each breach is a violation string; every differing range is reported):
 * - success ⇒ the range holds exactly the expected bytes (read: the bytes returned are the flash);
 * - bytes outside the range never change;
 * - a failure is a typed FlashError; every byte that is neither the old nor the expected content
 *   lies inside the error's damage range;
 * - a job with a backup directory that changed the range took a backup first; every backup
 *   equals the flash as it was before its job, and its sidecar carries its CRC;
 * - a job's journal ends "verified" with every planned sector done, or "failed" with only
 *   sectors done that hold the image;
 * - FLASH_LOCKED only when the chip's real status register could not have been cleared;
 * - the host never sends a command outside the loader personality's table;
 * - erases and programs per address stay within the retry bounds;
 * - after opening, the host's real baud equals the chip's, and the rate is the requested one
 *   or 115200 with a fallback notice;
 * - without any injected fault, nothing fails except refusals the scenario calls for;
 * - a UART run whose only faults were a byte or two lost from its requests (and timing) does not
 *   fail either, on loaders that abandon or let the host complete a partial frame;
 * - recovery without faults always ends with the range verified and the rest of the chip as it
 *   was before the first run (compared with the original, not with what the failure left).
 *
 * The one exclusion left is a protocol limit, not a tolerance: the boot protocol has no
 * checksum on requests, so a request corrupted on the wire can make the chip erase or program
 * another address, and when its reply never reaches the host nothing a failing job hears says
 * so. The fault injector records which flash the chip changed for which request
 * (`FaultyFlash.onChange`), so only bytes of such a corrupted request, at its exact address, are
 * deferred to the resumed job; without one (no backup, no recovery) they count as undetectable.
 *
 * @module
 */

import { chipById } from "../../core/chips/profiles.ts";
import { FlashError } from "../../core/errors.ts";
import {
  eraseRegion,
  MemoryStore,
  parseJournal,
  readFlash,
  SECTOR,
  verifyFlash,
  writeFlash,
  type WriteJournal,
} from "../../core/flasher/mod.ts";
import { readSparseTo, sparseAllowed } from "../../core/flasher/sparse_read.ts";
import { formatJedecId } from "../../core/spi/jedec.ts";
import type { FaultKind, FaultPlan } from "../../emulator/faults.ts";
import { Rng } from "../../emulator/rng.ts";
import { baudWorks } from "../../core/uart/baud.ts";
import { FrameLog, type Rig, spiRig, uartRig } from "./rigs.ts";
import {
  backupChecks,
  backupStamp,
  checkFrames,
  checkRun,
  chipLocked,
  codeOf,
  corruptedChanges,
  crcLies,
  CREATED_AT,
  describe,
  differsIn,
  equalBytes,
  fewTruncatedRequests,
  hex,
  hostChanges,
  journalChecks,
  keyGuardMustRefuse,
  legitimateRefusal,
  rivalChecks,
  sectorCopiesOf,
  sectorCopyChecks,
  spiEntryChecks,
  srWriteChecks,
} from "./oracle.ts";

/** What fills one sector of the image. */
export type SectorFill = "same" | "random" | "blank" | "zero" | "near";

/** Everything that defines a scenario; plain data, so fast-check can generate and shrink it. */
export interface Scenario {
  /** Chip profile id. */
  chip: string;
  /** "default" = the profile's flash; "small" = a 512 KiB part (faster); "p25q16hbk" = the part that locks its SR after a no-op WRSR on BK7238. */
  flash: "default" | "small" | "p25q16hbk";
  /** Loader quirks: T/U ring-buffer size (0 = the family's), read-ahead forced on. */
  quirks?: { ring: number; readAhead: boolean };
  path: "uart" | "spi";
  /** false: never write newer data into the range before a resume (see newerDataSector). */
  newerData?: boolean;
  /** Working baud rate of the UART path. */
  baud: number;
  op: "write" | "erase" | "read" | "verify";
  /** Where the range starts: 0..1000 across the flash above the bootloader. */
  at: number;
  /** Start inside the bootloader window. */
  low: boolean;
  /**
   * With `low`: whether the user passed --overwrite-bootloader (absent = true, as in older
   * fixtures). Without it the job must be refused and the window left alone.
   */
  allowLow?: boolean;
  /** Length of the range in sectors. */
  sectors: number;
  /** Per-sector content of the image, cycled. */
  fills: SectorFill[];
  /** Seed of the random image bytes. */
  contentSeed: number;
  backup: boolean;
  /** Initial status word of the flash. */
  protect: number;
  /** WP# held low. */
  wpLow: boolean;
  /** Inject faults while linking and identifying too. */
  faultsDuringOpen: boolean;
  /** After a failure: power on, reopen without faults, run again (resuming from the journal). */
  recover: boolean;
  /**
   * UART: ask for the sibling chip mode that shares this chip's ID but expects another eFuse
   * key (BK7231N ↔ BK7231M), as a user with the wrong `--chip` would. Absent in older fixtures.
   */
  wrongSibling?: boolean;
  /**
   * With a backup store and a write or erase: a second job, on a second chip of the same model
   * sharing the store, starts once the first is inside its job (its first look at the store)
   * and runs to its end before the first goes on. It must be refused (the store is held) and
   * leave its chip alone. Absent in older fixtures.
   */
  concurrent?: boolean;
  /**
   * When the failed run is resumed: a byte of its backup is flipped first (a disk or a user
   * changed it). The resume must refuse the backup and write nothing. Absent in older fixtures.
   */
  rotBackup?: boolean;
  /**
   * UART: the recovery meets the same cable: one of its first flash requests arrives for another
   * address (tx-retarget) and the reply is lost, and no other fault. It may then fail too; what it
   * leaves is checked like a first run's, with nothing after it to defer to. Absent in older
   * fixtures.
   */
  noisyRecovery?: boolean;
  /**
   * Write or erase with a backup store: the user interrupts the first run (its signal fires,
   * as Ctrl-C does) once its journal has been saved this many times after the first. Absent in
   * older fixtures: never.
   */
  interrupt?: number;
  plan: FaultPlan;
}

/**
 * A noisy TX line: corrupted requests (half of them with their reply lost) and only harmless
 * faults besides. With every kind at once most jobs die of something else before a corrupted
 * request reaches the erase and write phase, and few survive one whose reply was lost: those
 * are what the rest-of-chip check, the final verify and the backup's own comparison exist for.
 */
export const NOISY_TX: readonly FaultKind[] = ["tx-retarget", "crc-slow", "fragment", "delay"];

/** What running a scenario found. */
export interface ScenarioResult {
  /** "ok" or the error code of the first run. */
  outcome: string;
  /** Outcome of the recovery run, when there was one. */
  recovery?: string;
  /** The recovery resumed the first run's journal. */
  resumed?: boolean;
  violations: string[];
  /**
   * Changes no host could have seen: bytes at the exact address of a request the wire corrupted
   * (recorded by the fault injector), the job failed before it could compare, and no backup of
   * the job existed to compare with (or the job was not resumed). The protocol has no checksum
   * on requests; only a backup helps.
   */
  undetectable: string[];
  /**
   * Runs that stopped short because one CheckCRC reply carried the CRC of 0xFF (`crc-erased`):
   * the reply has no checksum, so no host can tell it from erased flash. Noted, not violations.
   */
  protocolLimits: string[];
  /** Faults injected, by kind. */
  faults: Partial<Record<FaultKind, number>>;
  /** Loader quirks that acted in this scenario (core/chips/loaders.ts), by name. */
  quirks: Record<string, number>;
  /** Virtual milliseconds the scenario took on the chip's clock. */
  virtualMs: number;
}

function buildImage(s: Scenario, pre: Uint8Array, addr: number): Uint8Array {
  const rng = new Rng(s.contentSeed);
  const out = new Uint8Array(s.sectors * SECTOR);
  for (let i = 0; i < s.sectors; i++) {
    const sec = out.subarray(i * SECTOR, (i + 1) * SECTOR);
    const fill = s.fills[i % s.fills.length] ?? "random";
    const old = pre.subarray(addr + i * SECTOR, addr + (i + 1) * SECTOR);
    switch (fill) {
      case "same":
        sec.set(old);
        break;
      case "blank":
        sec.fill(0xff);
        break;
      case "zero":
        sec.fill(0);
        break;
      case "near":
        sec.set(old);
        sec[rng.int(SECTOR)] ^= 1 << rng.int(8);
        break;
      default:
        rng.fill(sec);
    }
  }
  return out;
}

export interface RunOutcome {
  error: unknown;
  data?: Uint8Array;
  /** Read-ahead was turned off during the run but no notice said so. */
  silentReadAheadOff?: boolean;
}

async function runOp(
  rig: Rig,
  s: Scenario,
  store: FuzzStore,
  addr: number,
  image: Uint8Array,
  faults: { open: boolean; run: boolean },
  log: FrameLog | null,
  resume?: { journal: WriteJournal; name: string },
  attempt = 0,
  interrupt?: number,
): Promise<RunOutcome> {
  let opened;
  try {
    opened = await rig.open(faults.open, faults.run, log);
  } catch (e) {
    return { error: e };
  }
  const { target, ctx } = opened;
  if (interrupt !== undefined) {
    const user = new AbortController();
    ctx.signal = user.signal;
    let saves = 0;
    store.onPut = (name) => {
      if (name.endsWith(".journal.json") && saves++ === interrupt) user.abort();
    };
  }
  const notices: string[] = [];
  ctx.onEvent = (e) => {
    if (e.type === "notice") notices.push(e.message);
  };
  const identity = {
    chip: rig.requested.name,
    flashId: formatJedecId(rig.nor.jedecId).replaceAll(" ", ""),
    key: null,
  };
  const common = {
    store: s.backup ? store : undefined,
    noBackup: !s.backup,
    identity,
    createdAt: new Date(CREATED_AT.getTime() + attempt * 3600_000),
    overwriteBootloader: s.low && s.allowLow !== false,
    resume,
    // the first run's unseen collateral is what the resume is held to repair: the user's
    // --restore-outside (without it a resume names the sectors and writes nothing)
    restoreOutside: resume !== undefined,
  };
  const out: RunOutcome = { error: null };
  try {
    switch (s.op) {
      case "write":
        await writeFlash(ctx, image, { addr, ...common });
        break;
      case "erase":
        await eraseRegion(ctx, { addr, size: image.length, ...common });
        break;
      case "read": {
        // where the chip has a CRC, the read maps erased regions first (sparse_read.ts), as read-flash does
        if (sparseAllowed(ctx)) {
          const data = new Uint8Array(image.length);
          await readSparseTo(ctx, { addr, size: image.length }, (chunk, o) => data.set(chunk, o));
          out.data = data;
        } else out.data = (await readFlash(ctx, { addr, size: image.length })).data;
        break;
      }
      case "verify":
        await verifyFlash(ctx, image, { addr });
        break;
    }
  } catch (e) {
    out.error = e;
  } finally {
    store.onPut = null;
    await target.close().catch(() => {});
  }
  // the README promises that read-ahead turns itself off *saying so*
  out.silentReadAheadOff = ctx.readAhead === false && typeof target.readSectors === "function" &&
    !notices.some((m) => m.startsWith("read-ahead off"));
  return out;
}

/**
 * For one resumable run in three (chosen by the plan's seed, so the draw of scenarios stays the
 * same): a sector inside the range, outside the block the journal says was in flux, and data for
 * it that neither the found content, nor the image, nor programming over either can explain (a
 * set bit where each has a cleared one). Null when the run is not chosen or no sector fits.
 */
function newerDataSector(
  s: Scenario,
  store: MemoryStore,
  pre: Uint8Array,
  after: Uint8Array,
  image: Uint8Array,
  addr: number,
): { sector: number; data: Uint8Array } | null {
  if (s.newerData === false || s.plan.seed % 3 !== 1) return null;
  const j = journalIn(store)?.journal;
  if (!j || j.version < 2 || !j.fingerprint) return null;
  // the guard's rule, written out here again so a guard that excused more would be caught: the
  // first sector the job had not finished, as its failure recorded it or as the done list says
  const left = j.planned.filter((p) => !j.done.includes(p));
  const first = j.stoppedAt !== undefined ? j.stoppedAt : left.length ? Math.min(...left) : null;
  const inFlux = first === null ? -1 : Math.floor(first / 0x10000) * 0x10000;
  // and not in flash the failure named as changed by a corrupted request (the job's own damage,
  // which the guard lets hold any of the job's data)
  const c = j.corrupted;
  for (let sec = addr; sec + SECTOR <= addr + image.length; sec += SECTOR) {
    if (Math.floor(sec / 0x10000) * 0x10000 === inFlux) continue;
    if (c && sec < c.end && sec + SECTOR > c.start) continue;
    const data = new Uint8Array(SECTOR).fill(0xff);
    let ok = false;
    for (let k = 0; k < SECTOR; k++) {
      const cleared = ~pre[sec + k] & ~image[sec - addr + k] & 0xff;
      if (cleared !== 0) {
        data[k] = 0xff;
        ok = true;
      } else data[k] = 0x00;
    }
    // a set bit where both have a cleared one exists, and the sector is neither blank nor as found
    if (!ok || !data.some((b) => b !== 0xff) || equalBytes(data, after.subarray(sec, sec + SECTOR))) continue;
    // nor what programming the image's content for another sector there leaves (a request whose
    // address a fault moved carries the job's 4 KiB for one sector to another)
    if (imageSectorsLeave(data, image, pre.subarray(sec, sec + SECTOR))) continue;
    return { sector: sec, data };
  }
  return null;
}

/**
 * Whether `data` is what programs of the image's 4 KiB sectors, moved to this one, leave over
 * erased flash or over `found`: the AND of every such source it is a subset of equals it.
 */
function imageSectorsLeave(data: Uint8Array, image: Uint8Array, found: Uint8Array): boolean {
  const left = new Uint8Array(SECTOR).fill(0xff);
  const sources = [found];
  for (let t = 0; t + SECTOR <= image.length; t += SECTOR) sources.push(image.subarray(t, t + SECTOR));
  for (const x of sources) {
    if (data.some((b, k) => (b & ~x[k] & 0xff) !== 0)) continue;
    for (let k = 0; k < SECTOR; k++) left[k] &= x[k];
  }
  return equalBytes(left, data);
}

function journalIn(store: MemoryStore): { journal: WriteJournal; name: string } | undefined {
  for (const [name, bytes] of store.entries) {
    if (!name.endsWith(".journal.json")) continue;
    const journal = parseJournal(new TextDecoder().decode(bytes));
    if (journal.state !== "verified") return { journal, name };
  }
  return undefined;
}

/** Run one scenario and check every invariant. */
export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const profile = chipById(s.chip);
  if (!profile) throw new Error(`unknown chip ${s.chip}`);
  const rig = s.path === "spi" ? spiRig(s, profile) : uartRig(s, profile);
  const t0 = rig.clock.now();
  const size = rig.size;
  const pre = rig.nor.read(0, size);
  const sectorsTotal = size / SECTOR;
  const lowEnd = 0x11000 / SECTOR;
  const sectors = Math.max(1, Math.min(s.sectors, sectorsTotal - lowEnd));
  const firstSector = s.low
    ? Math.min(Math.floor((s.at / 1000) * lowEnd), lowEnd - 1)
    : lowEnd + Math.floor((s.at / 1000) * (sectorsTotal - lowEnd - sectors));
  const addr = firstSector * SECTOR;
  const scenario = { ...s, sectors };
  const end = addr + sectors * SECTOR;
  const image = s.op === "erase"
    ? new Uint8Array(sectors * SECTOR).fill(0xff)
    : buildImage(scenario, pre, addr);
  const violations: string[] = [];
  const undetectable: string[] = [];
  const log = s.path === "uart" ? new FrameLog(() => rig.nor.srWord) : null;
  const changes = s.op === "write" || s.op === "erase";
  let rival: { rig: Rig; pre: Uint8Array; out: RunOutcome } | null = null;
  const store = new FuzzStore();
  if (s.concurrent && changes && s.backup) {
    store.gate = async () => {
      // the first job is inside its job (it looks at the store to name its backup): a second
      // chip of the same model, other content, no faults, the same job on the same store
      const s2: Scenario = {
        ...scenario,
        plan: { seed: s.plan.seed ^ 0x2545, rates: {} },
        faultsDuringOpen: false,
        protect: 0,
        wpLow: false,
        wrongSibling: false,
        concurrent: false,
      };
      const rig2 = s.path === "spi" ? spiRig(s2, profile) : uartRig(s2, profile);
      const snap = rig2.nor.snapshot();
      new Rng(s.contentSeed ^ 0x9e37).fill(snap.data.subarray(size - SECTOR, size));
      rig2.nor.restore(snap);
      const pre2 = rig2.nor.read(0, rig2.size);
      const out = await runOp(rig2, s2, store, addr, image, { open: false, run: false }, null);
      rival = { rig: rig2, pre: pre2, out };
    };
  }
  const journalOf = (attempt: number) =>
    [...store.entries.keys()].find((n) =>
      n.endsWith(".journal.json") && n.includes(`_${backupStamp(attempt)}`)
    ) ??
      null;

  const first = await runOp(
    rig,
    scenario,
    store,
    addr,
    image,
    { open: s.faultsDuringOpen, run: true },
    log,
    undefined,
    0,
    changes && s.backup ? s.interrupt : undefined,
  );
  // the user stopped the job: a failure no fault has to explain, and one to resume from
  const interrupted = s.interrupt !== undefined && first.error instanceof FlashError &&
    (first.error.code === "CANCELLED" ||
      (first.error.cause instanceof FlashError && first.error.cause.code === "CANCELLED"));
  const changesAfterFirst = rig.changes.length;
  const copiesAfterFirst = new Set(sectorCopiesOf(store));
  const faultCount = rig.recorder.events.length;
  violations.push(...rig.afterOpen.map((v) => `open: ${v}`));
  const after = rig.nor.read(0, size);
  if (rival !== null) violations.push(...rivalChecks(rival));
  if (!baudWorks(s.baud) && s.path === "uart" && codeOf(first.error) !== "USAGE") {
    violations.push(
      `run: --baud ${s.baud}, which the chip's UART cannot make, ${
        first.error ? `failed with ${describe(first.error)}` : "went ahead"
      } instead of being refused`,
    );
  }
  const corrupted = corruptedChanges(rig, [log]);
  // flash changed for any corrupted request, heard or not: no job changed it on purpose
  const stray = corruptedChanges(rig, [log], false);
  const firstRun = checkRun(
    {
      phase: "run",
      run: first,
      before: pre,
      original: pre,
      now: after,
      deferrable: corrupted,
      named: [],
      unseen: [],
      lied: crcLies(rig.recorder.events),
    },
    scenario,
    rig,
    image,
    addr,
    changes,
  );
  violations.push(...firstRun.violations);
  const protocolLimits = [...firstRun.limits];
  violations.push(
    ...backupChecks("run", scenario, store, 0, pre, after, addr, end, changes, false, stray),
  );
  violations.push(
    ...journalChecks("run", scenario, store, journalOf(0), first, pre, after, image, addr, stray),
  );
  violations.push(
    ...sectorCopyChecks("run", store, new Set(), hostChanges(rig, [log], 0), pre, addr, end, stray),
  );
  if (log) violations.push(...checkFrames(log, profile, "run"), ...srWriteChecks(log, rig, "run"));
  if (keyGuardMustRefuse(rig) && (first.error === null || differsIn(after, pre, addr, end))) {
    violations.push(
      `run: the ${rig.requested.name} key guard let a ${profile.name} (another eFuse key) through`,
    );
  }
  violations.push(...spiEntryChecks(s, rig, first));
  if (
    s.low && s.allowLow === false && changes &&
    (first.error === null || differsIn(after, pre, 0, Math.min(end, 0x11000)))
  ) {
    violations.push(
      `run: the bootloader guard let a ${s.op} into ${hex(addr)}.. through without --overwrite-bootloader`,
    );
  }

  let recovery: string | undefined;
  let resumed: boolean | undefined;
  const refusal = first.error ? legitimateRefusal(scenario, rig, addr, image, pre, first.error) : null;
  // a status register no status write can clear (SRP, WP# low, read-only bits) makes the flash
  // refuse erases and programs whatever the host does: a failure is then the chip's answer
  const locked = chipLocked(s, rig.nor);
  if (first.error && faultCount === 0 && !refusal && !locked && !interrupted) {
    violations.push(`failed with no fault injected: ${describe(first.error)}`);
  }
  if (first.error && !refusal && !locked && !interrupted && fewTruncatedRequests(s, rig, faultCount)) {
    violations.push(`failed when only a byte or two of its requests were lost: ${describe(first.error)}`);
  }
  const deferred = firstRun.deferred;
  const newer = first.error && s.recover && !refusal && !locked && changes && s.backup && s.path === "uart"
    ? newerDataSector(s, store, pre, after, image, addr)
    : null;
  const rotten = first.error && s.rotBackup && s.recover && !refusal && !locked && changes && s.backup &&
      newer === null
    ? journalIn(store)
    : undefined;
  if (rotten?.journal.backup) {
    // a byte of the interrupted job's backup changes before the resume (disk, or a user): the
    // resume must refuse that backup before it uses a byte of it, and write nothing
    rig.powerCycle();
    const kept = store.entries.get(rotten.journal.backup);
    if (!kept) throw new Error(`the journal names a backup ${rotten.journal.backup} the store lacks`);
    const at = new Rng(s.plan.seed ^ 0x70f).int(kept.length);
    kept[at] ^= 0x5a;
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: false },
      null,
      rotten,
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    if (codeOf(second.error) !== "BACKUP_FAILED") {
      violations.push(
        `recovery: a resume whose backup changed at ${hex(at)} ${
          second.error ? `failed with ${describe(second.error)}` : "went ahead"
        } instead of refusing the backup`,
      );
    } else if (!equalBytes(rig.nor.read(0, size), after)) {
      violations.push("recovery: a resume that refused its backup changed the flash");
    }
    undetectable.push(...deferred.map((r) => `run: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`));
  } else if (newer !== null) {
    // one run in three of those that could resume instead finds the range rewritten since the
    // failure (newer data, as another tool would leave it): the resume must refuse (WRONG_CHIP)
    // and write nothing
    rig.powerCycle();
    const snap = rig.nor.snapshot();
    snap.data.set(newer.data, newer.sector);
    rig.nor.restore(snap);
    const tampered = rig.nor.read(0, size);
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: false },
      null,
      journalIn(store),
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    if (codeOf(second.error) !== "WRONG_CHIP") {
      violations.push(
        `recovery: a resume over newer data at ${hex(newer.sector)} ${
          second.error ? `failed with ${describe(second.error)}` : "went ahead"
        } instead of refusing the chip`,
      );
    } else if (!equalBytes(rig.nor.read(0, size), tampered)) {
      violations.push("recovery: a resume that refused the chip changed its flash");
    }
  } else if (first.error && s.recover && !refusal && !locked) {
    rig.powerCycle();
    const resume = changes && s.backup ? journalIn(store) : undefined;
    const log2 = s.path === "uart" ? new FrameLog(() => rig.nor.srWord) : null;
    const noisy = s.noisyRecovery === true && rig.replan !== undefined;
    if (noisy) {
      // one corrupted request, early in the recovery and unheard: what it changes only the job's
      // own comparisons (the range with the image, the rest of the chip with the backup) can find
      rig.replan!({
        rates: { "tx-retarget": 1 },
        skip: { "tx-retarget": new Rng(s.plan.seed ^ 0x51).int(12) },
        maxFaults: rig.recorder.events.length + 1,
        retargetUnheard: 1,
      });
    }
    const faultsBefore = rig.recorder.events.length;
    const second = await runOp(
      rig,
      scenario,
      store,
      addr,
      image,
      { open: false, run: noisy },
      log2,
      resume,
      1,
    );
    recovery = second.error ? codeOf(second.error) : "ok";
    resumed = resume !== undefined;
    const final = rig.nor.read(0, size);
    const noisyFaults = rig.recorder.events.length > faultsBefore;
    // what corrupted requests of a noisy recovery changed: unseen ones may be left by a failing
    // recovery (nothing comes after it to find them: undetectable); any, for the store checks
    const recDeferrable = noisy ? corruptedChanges(rig, [log, log2], true, changesAfterFirst) : [];
    const recStray = noisy ? corruptedChanges(rig, [log, log2], false, changesAfterFirst) : [];
    const firstDamage = first.error instanceof FlashError ? first.error.damage : undefined;
    // the loader refuses to erase or program its own window over the UART: damage the first run
    // left there outside the job can only be written back over SPI, and the resume must say so
    const loaderWindowDamaged = s.path === "uart" &&
      differsIn(after, pre, 0, Math.min(addr, profile.loaderProtectedEnd));
    if (
      second.error && !legitimateRefusal(scenario, rig, addr, image, after, second.error) &&
      !(loaderWindowDamaged && resume) && !noisyFaults
    ) {
      violations.push(`recovery without faults failed: ${describe(second.error)}`);
    }
    const rec = checkRun(
      {
        phase: "recovery",
        run: second,
        before: after,
        original: pre,
        now: final,
        deferrable: recDeferrable,
        // without a resume there is no backup from before the first run to restore from: what
        // the first run named as damage (its error told the user the range and the backup) and
        // what no host could see stays as the first run left it
        named: !resume && firstDamage ? [{ start: firstDamage.start, end: firstDamage.end }] : [],
        unseen: resume ? [] : deferred,
        lied: crcLies(rig.recorder.events.slice(faultCount)),
      },
      scenario,
      rig,
      image,
      addr,
      changes,
    );
    violations.push(...rec.violations);
    protocolLimits.push(...rec.limits);
    if (keyGuardMustRefuse(rig) && (second.error === null || differsIn(final, after, addr, end))) {
      violations.push(
        `recovery: the ${rig.requested.name} key guard let a ${profile.name} (another eFuse key) through`,
      );
    }
    undetectable.push(
      ...rec.undetectable.map((r) => `run: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`),
      ...rec.deferred.map((r) => `recovery: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`),
    );
    violations.push(
      ...backupChecks(
        "recovery",
        scenario,
        store,
        1,
        after,
        final,
        addr,
        end,
        changes,
        resume !== undefined,
        recStray,
      ),
    );
    violations.push(
      ...journalChecks(
        "recovery",
        scenario,
        store,
        resume?.name ?? journalOf(1),
        second,
        after,
        final,
        image,
        addr,
        // a resumed journal still carries the first run's done sectors: a corrupted request of
        // the first run may have changed one after it was marked, and a resume refused before
        // its compare left it so
        resume ? [...stray, ...recStray] : recStray,
      ),
    );
    violations.push(
      ...sectorCopyChecks(
        "recovery",
        store,
        copiesAfterFirst,
        hostChanges(rig, [log, log2], changesAfterFirst),
        after,
        addr,
        end,
        [...stray, ...recStray],
      ),
    );
    if (log2) {
      violations.push(...checkFrames(log2, profile, "recovery"), ...srWriteChecks(log2, rig, "recovery"));
    }
  } else {
    undetectable.push(...deferred.map((r) => `run: ${hex(r.start)}..${hex(r.end - 1)} changed unseen`));
  }
  if (rig.quirks()["sr-lock-part"] && rig.nor.srWord === 0x7bfc && s.protect !== 0x7bfc) {
    violations.push(
      "the status register reads 0x7BFC: an unchanged value was written to the P25Q16HBK, which locks it",
    );
  }
  return {
    outcome: first.error ? codeOf(first.error) : "ok",
    recovery,
    resumed,
    violations,
    undetectable,
    protocolLimits,
    faults: rig.recorder.counts(),
    quirks: rig.quirks(),
    virtualMs: rig.clock.now() - t0,
  };
}

/**
 * The scenario's backup store: a {@link MemoryStore} that can run `gate` to its end before its
 * first `list` (a job naming its backup: it is inside its job by then), and tells `onPut` of
 * every entry saved.
 */
class FuzzStore extends MemoryStore {
  gate: (() => Promise<void>) | null = null;
  onPut: ((name: string) => void) | null = null;
  override put(name: string, data: Uint8Array): Promise<string> {
    this.onPut?.(name);
    return super.put(name, data);
  }
  override async list() {
    const gate = this.gate;
    this.gate = null;
    if (gate) await gate();
    return await super.list();
  }
}
