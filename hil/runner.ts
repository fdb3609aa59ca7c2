/**
 * The HIL runner: picks the scenarios that apply to the chip mode and bench, and runs them
 * one by one. On a hardware bench it first proves the chip answers (failing fast, having
 * changed nothing, when it does not), backs up the whole flash when a destructive scenario
 * is going to run, and at the end restores and verifies that backup, also after failures.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import { takeBackup } from "../core/flasher/backup.ts";
import type { BackupStore } from "../core/flasher/store.ts";
import { verifyFlash } from "../core/flasher/verify.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { TraceDivergenceError } from "../core/trace/replay.ts";
import { crc32 } from "../core/crc.ts";
import type { Bench, Connection, ConnectOptions } from "./bench.ts";
import type { Scenario, ScenarioContext } from "./scenario.ts";
import { SCENARIOS } from "./scenarios/mod.ts";

/** Outcome of one scenario. */
export interface ScenarioResult {
  id: string;
  title: string;
  status: "passed" | "failed" | "skipped";
  /** Why it was skipped, or what failed (first line). */
  reason?: string;
  /** What to do about a failure, when the error said. */
  remedy?: string;
  /** Duration on the bench's clock (modelled on virtual benches), null when skipped. */
  ms: number | null;
  destructive: boolean;
  /** What the scenario observed. */
  notes: string[];
}

/** The safety net of a hardware run. */
export interface BackupSummary {
  location: string;
  size: number;
  crc32: string;
}

/** What the restore at the end did. */
export interface RestoreSummary {
  ok: boolean;
  /** Sectors that had to be rewritten. */
  rewritten: number;
  /** The whole flash matched the backup by CRC afterwards. */
  verified: boolean;
  message: string;
}

/** A whole run. */
export interface HilReport {
  target: string;
  chip: string;
  path: "uart" | "spi";
  bench: "virtual" | "hardware";
  timeKind: "modelled" | "real";
  passed: number;
  failed: number;
  skipped: number;
  scenarios: ScenarioResult[];
  /** Sum of scenario durations (ms). */
  totalMs: number;
  backup: BackupSummary | null;
  restore: RestoreSummary | null;
  /** A failure that stopped the run before or around the scenarios (no chip, restore failed). */
  error: { code: string; message: string; remedy: string } | null;
}

/** Options of {@link runHil}. */
export interface RunOptions {
  profile: ChipProfile;
  /** Scenario ids to run (default: all). */
  only?: readonly string[];
  /** The suite to pick from (default: {@link SCENARIOS}); a bench check can bring its own. */
  suite?: readonly Scenario[];
  /** Let destructive scenarios run on real hardware. */
  destructive?: boolean;
  /** Where the hardware bench's safety backup goes. */
  store?: BackupStore;
  /** Wall time for backup names. */
  now?: () => Date;
  /** A line per scenario as it finishes (progress on stderr). */
  onResult?: (r: ScenarioResult) => void;
}

/** Why `scenario` cannot run on `bench` for `profile`, or null when it can. */
export function skipReason(
  scenario: Scenario,
  profile: ChipProfile,
  bench: Pick<Bench, "kind" | "path" | "virtualSetups" | "power">,
  destructive: boolean,
): string | null {
  const n = scenario.needs;
  if (n.path !== "any" && n.path !== bench.path) return `needs the ${n.path.toUpperCase()} path`;
  if (n.full && bench.path === "uart" && profile.personality !== "FULL") {
    return `needs a BootROM (FULL) loader; the ${profile.name} runs ${profile.personality}`;
  }
  const chip = n.chip?.(profile, bench.path);
  if (chip) return chip;
  if (n.virtualOnly && !bench.virtualSetups) return "needs a state only the emulator can set up";
  if (n.power && !bench.power) {
    return "no power control: wire RTS to CEN, use a CH341A, or pass --power-cycle-cmd";
  }
  if (n.destructive && bench.kind === "hardware" && !destructive) {
    return "destructive: pass --destructive to run it on real hardware (the flash is backed up and restored)";
  }
  return null;
}

/** Check `--only` against the suite; throws USAGE naming the unknown ids. */
export function selectScenarios(
  only?: readonly string[],
  suite: readonly Scenario[] = SCENARIOS,
): Scenario[] {
  if (!only || only.length === 0) return [...suite];
  const unknown = only.filter((id) => !suite.some((s) => s.id === id));
  if (unknown.length) {
    throw new FlashError(
      "USAGE",
      `unknown scenario${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`,
      `--only takes a comma-separated list of: ${suite.map((s) => s.id).join(", ")}`,
    );
  }
  return suite.filter((s) => only.includes(s.id));
}

function errorSummary(e: unknown): { code: string; message: string; remedy: string } {
  if (e instanceof FlashError) return { code: e.code, message: e.message, remedy: e.remedy };
  if (e instanceof TraceDivergenceError) {
    return {
      code: "REPLAY_DIVERGED",
      message: e.message,
      remedy: "see the diff: the core no longer sends what was recorded",
    };
  }
  return {
    code: "INTERNAL",
    message: e instanceof Error ? e.message : String(e),
    remedy: "report this as a bug",
  };
}

/**
 * Run the suite on `bench`.
 *
 * @example
 * ```ts
 * const bench = new VirtualBench({ profile: chipById("bk7231n")!, path: "uart", baud: 921600 });
 * const report = await runHil(bench, { profile: chipById("bk7231n")! });
 * report.failed; // 0
 * ```
 */
export async function runHil(bench: Bench, opts: RunOptions): Promise<HilReport> {
  const selected = selectScenarios(opts.only, opts.suite);
  const report: HilReport = {
    target: bench.target,
    chip: opts.profile.id,
    path: bench.path,
    bench: bench.kind,
    timeKind: bench.timeKind,
    passed: 0,
    failed: 0,
    skipped: 0,
    scenarios: [],
    totalMs: 0,
    backup: null,
    restore: null,
    error: null,
  };
  const plan = selected.map((s) => ({
    s,
    skip: skipReason(s, opts.profile, bench, opts.destructive ?? false),
  }));
  const willDestroy = plan.some((p) => !p.skip && p.s.needs.destructive);

  let backup: Uint8Array | null = null;
  if (bench.kind === "hardware") {
    try {
      await bench.begin("bench");
      backup = await prepareHardware(bench, opts, willDestroy, report);
    } catch (e) {
      report.error = errorSummary(e);
      for (const { s } of plan) {
        report.scenarios.push(result(s, "skipped", "not run: the bench is not ready"));
      }
      return finish(report);
    }
  }

  try {
    for (const { s, skip } of plan) {
      const broken = bench.failure;
      const r = broken
        ? result(s, "skipped", "not run: the bench failed")
        : skip
        ? result(s, "skipped", skip)
        : await runOne(bench, s, opts.profile);
      report.scenarios.push(r);
      opts.onResult?.(r);
    }
  } finally {
    if (backup) report.restore = await restore(bench, opts.profile, backup);
  }
  if (bench.failure) report.error = errorSummary(bench.failure);
  if (report.restore && !report.restore.ok && !report.error) {
    report.error = {
      code: "RESTORE_FAILED",
      message: report.restore.message,
      remedy: `the whole flash was saved to ${report.backup?.location}: write it back with deno task flash ` +
        "write-flash (from 0x11000 over UART, from 0 over SPI with --overwrite-bootloader), then verify-flash",
    };
  }
  return finish(report);
}

function finish(report: HilReport): HilReport {
  for (const r of report.scenarios) {
    report[r.status]++;
    report.totalMs += r.ms ?? 0;
  }
  return report;
}

function result(s: Scenario, status: ScenarioResult["status"], reason?: string): ScenarioResult {
  return { id: s.id, title: s.title, status, reason, ms: null, destructive: s.needs.destructive, notes: [] };
}

async function runOne(bench: Bench, s: Scenario, profile: ChipProfile): Promise<ScenarioResult> {
  const r = result(s, "passed");
  const open: Connection[] = [];
  let t0 = 0;
  try {
    await bench.begin(s.id, bench.virtualSetups ? s.needs.virtualSetup?.(profile, bench.path) : undefined);
    t0 = bench.clock.now();
    const ctx: ScenarioContext = {
      profile,
      path: bench.path,
      bench,
      note: (line) => r.notes.push(line),
      connect: async (o?: ConnectOptions) => {
        const c = await bench.connect(o);
        open.push(c);
        return c;
      },
    };
    await s.run(ctx);
  } catch (e) {
    r.status = "failed";
    if (e instanceof FlashError) {
      r.reason = `${e.code}: ${e.message}`;
      r.remedy = e.remedy;
    } else r.reason = e instanceof Error ? e.message : String(e);
  } finally {
    for (const c of open.reverse()) await c.close().catch(() => {});
    try {
      r.ms = bench.clock.now() - t0;
    } catch {
      r.ms = 0;
    }
    await bench.end().catch(() => {});
  }
  return r;
}

/**
 * Prove the chip answers (this throws, having sent nothing but link checks, when it does
 * not), then take the safety backup if anything destructive will run.
 */
async function prepareHardware(
  bench: Bench,
  opts: RunOptions,
  willDestroy: boolean,
  report: HilReport,
): Promise<Uint8Array | null> {
  const c = await bench.connect();
  try {
    if (!willDestroy) return null;
    if (!opts.store) {
      throw new FlashError("USAGE", "no place for the safety backup", "pass --backup-dir");
    }
    const rec = await takeBackup(c.flasher, {
      store: opts.store,
      identity: c.identity,
      createdAt: opts.now?.() ?? new Date(),
    });
    report.backup = {
      location: rec.location,
      size: rec.size,
      crc32: rec.crc32.toString(16).padStart(8, "0"),
    };
    return rec.data;
  } finally {
    await c.close();
  }
}

/**
 * Put the backup back: rewrite only the sectors that differ (the bootloader window only on
 * the SPI path, where a scenario may have touched it), then verify the whole flash by CRC. A
 * failed first attempt is retried once after a power cycle, where the bench has one.
 */
async function restore(bench: Bench, profile: ChipProfile, backup: Uint8Array): Promise<RestoreSummary> {
  let last: unknown = null;
  for (let attempt = 1; attempt <= 2; attempt++) {
    if (attempt === 2) {
      if (!bench.power) break;
      await bench.power.cycle().catch(() => {});
    }
    let c: Connection | null = null;
    try {
      c = await bench.connect();
      const from = c.path === "spi" ? 0 : profile.layout.bootloader.end;
      const r = await writeFlash(c.flasher, backup.subarray(from), {
        addr: from,
        noBackup: true,
        overwriteBootloader: from === 0,
        identity: c.identity,
        createdAt: new Date(),
      });
      await verifyFlash(c.flasher, backup, { addr: 0 });
      return {
        ok: true,
        rewritten: r.changed,
        verified: true,
        message: `flash restored (${r.changed} sectors rewritten) and verified against the backup (CRC ${
          crc32(backup).toString(16).padStart(8, "0")
        })`,
      };
    } catch (e) {
      last = e;
    } finally {
      await c?.close().catch(() => {});
    }
  }
  const why = last instanceof Error ? last.message : String(last);
  return { ok: false, rewritten: 0, verified: false, message: `restoring the backup failed: ${why}` };
}
