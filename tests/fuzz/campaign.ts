/**
 * `deno task fuzz`: a long fault-injection campaign over every chip profile and both paths.
 *
 * ```
 * deno task fuzz --runs 2000 --seed 1 [--json] [--path uart|spi|any] [--max-seconds N] [--first] [--shrink N] [--shard i/n]
 * deno task fuzz merge shard-1.json shard-2.json … [--json]
 * deno task fuzz --replay fuzz-failures/seed-1-path-17.json
 * deno task fuzz --seed 1 --replay 17:3:0
 * ```
 *
 * Prints the scenarios run, the faults injected by kind, the invariant violations (which must
 * be 0) and scenarios per second; `--json` prints one object instead. Every violating run is
 * shrunk by fast-check and saved with its seed and path so `--replay` reproduces it.
 *
 * `--shard i/n` runs the runs whose global index is i-1 modulo n of the same seeded campaign
 * (the generator still draws every run, so run k is the same scenario in every shard and
 * `--replay k` reproduces it); `merge` adds shard reports up (see `merge.ts`).
 *
 * @module
 */

import fc from "fast-check";
import type { FaultKind } from "../../emulator/faults.ts";
import { scenarioArb } from "./arbitraries.ts";
import { runScenario, type Scenario, type ScenarioResult } from "./scenario.ts";
import { type CampaignShard, inShard, mergeReports, parseShard, sortCounts } from "./merge.ts";

/** Options of {@link runCampaign}. */
export interface CampaignOptions {
  runs: number;
  seed: number;
  path?: "uart" | "spi" | "any";
  /** Run only this slice of the campaign (runs stay numbered by their global index). */
  shard?: CampaignShard;
  /** Stop after this many wall-clock seconds (the report says how many runs were done). */
  maxSeconds?: number;
  /** Shrink at most this many violating runs (default 3). */
  shrink?: number;
  /** Stop at the first violating run (the rest count as not run). */
  stopAtFirst?: boolean;
  /** Called every few seconds with the running totals. */
  onProgress?: (report: CampaignReport) => void;
  /** Called before each run this campaign (or shard) carries out, with its global index. */
  onRun?: (index: number, scenario: Scenario) => void;
  /** Called at once for each violating run (its fast-check path is its index). */
  onViolation?: (index: number, scenario: Scenario, violations: string[]) => void;
}

/** A shrunk failing scenario. */
export interface CampaignFailure {
  seed: number;
  /** fast-check path of the run as generated. */
  runPath: string;
  /** fast-check path of the shrunk counterexample. */
  path: string;
  scenario: Scenario;
  violations: string[];
}

/** The outcome of a campaign. */
export interface CampaignReport {
  /** Runs carried out (in this shard, for a shard's report). */
  runs: number;
  seed: number;
  /** The whole campaign's run count (`--runs`), of which a shard does a slice. */
  campaignRuns: number;
  /** Which arbitrary the runs were drawn from. */
  path: "uart" | "spi" | "any";
  /** The slices this report covers: one for a shard, all n after a merge; null when unsharded. */
  shards: { count: number; indices: number[] } | null;
  /** Runs whose invariants were breached. */
  violations: number;
  /**
   * Runs where a request corrupted on the wire changed flash at its own (wrong) address, the job
   * failed before it compared the rest of the chip, and no backup of the job existed to compare
   * with: no host can see that (the boot protocol has no checksum on requests).
   */
  undetectable: number;
  /** Indices (fast-check paths) of those runs, for `--replay`. */
  undetectableRuns: number[];
  /**
   * Runs a `crc-erased` reply stopped short (a CheckCRC reply has no checksum: a limit of the
   * protocol, excluded from violations only where every differing byte lies under that reply).
   */
  protocolLimits: number;
  /** Index of the first violating run, or null. */
  firstViolation: number | null;
  /** Faults injected, by kind, over all runs. */
  faults: Partial<Record<FaultKind, number>>;
  /** First-run outcomes ("ok" or an error code). */
  outcomes: Record<string, number>;
  /** Recovery outcomes after a failed first run. */
  recoveries: Record<string, number>;
  /** Scenarios in which each loader quirk acted (busy drop, ring overflow, T/U filler recovery, …). */
  quirks: Record<string, number>;
  /** Runs by path and by chip. */
  paths: Record<string, number>;
  chips: Record<string, number>;
  seconds: number;
  scenariosPerSecond: number;
  /** Virtual time simulated, in hours. */
  virtualHours: number;
  /** True when the campaign stopped at --max-seconds before `runs` were done. */
  truncated: boolean;
  failures: CampaignFailure[];
}

function bump(m: Record<string, number>, k: string, n = 1): void {
  m[k] = (m[k] ?? 0) + n;
}

/** Run one scenario, turning a harness crash into a violation. */
async function safeRun(s: Scenario): Promise<ScenarioResult> {
  try {
    return await runScenario(s);
  } catch (e) {
    return {
      outcome: "crash",
      violations: [`scenario crashed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`],
      undetectable: [],
      protocolLimits: [],
      faults: {},
      quirks: {},
      virtualMs: 0,
    };
  }
}

/**
 * Run a campaign.
 *
 * @example
 * ```ts
 * const report = await runCampaign({ runs: 50, seed: 1 });
 * report.violations; // 0
 * ```
 */
export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  const arb = scenarioArb(opts.path ?? "any");
  const t0 = performance.now();
  let lastProgress = t0;
  let virtualMs = 0;
  const report: CampaignReport = {
    runs: 0,
    seed: opts.seed,
    campaignRuns: opts.runs,
    path: opts.path ?? "any",
    shards: opts.shard ? { count: opts.shard.count, indices: [opts.shard.index] } : null,
    violations: 0,
    undetectable: 0,
    undetectableRuns: [],
    protocolLimits: 0,
    firstViolation: null,
    faults: {},
    outcomes: {},
    recoveries: {},
    quirks: {},
    paths: {},
    chips: {},
    seconds: 0,
    scenariosPerSecond: 0,
    virtualHours: 0,
    truncated: false,
    failures: [],
  };
  const bad: { index: number; scenario: Scenario; violations: string[] }[] = [];
  const deadline = opts.maxSeconds === undefined ? Infinity : t0 + opts.maxSeconds * 1000;
  let index = 0;
  const finish = () => {
    report.seconds = (performance.now() - t0) / 1000;
    report.scenariosPerSecond = report.seconds > 0 ? report.runs / report.seconds : 0;
    report.virtualHours = virtualMs / 3600_000;
    sortCounts(report);
  };
  await fc.check(
    fc.asyncProperty(arb, async (s) => {
      const i = index++;
      if (opts.shard && !inShard(i, opts.shard)) return true;
      if (performance.now() > deadline || (opts.stopAtFirst && report.violations > 0)) {
        report.truncated = true;
        return true;
      }
      opts.onRun?.(i, s);
      const r = await safeRun(s);
      report.runs++;
      virtualMs += r.virtualMs;
      bump(report.outcomes, r.outcome);
      if (r.recovery) bump(report.recoveries, r.recovery);
      bump(report.paths, s.path);
      bump(report.chips, s.chip);
      for (const [k, n] of Object.entries(r.faults)) bump(report.faults, k, n);
      for (const [k, n] of Object.entries(r.quirks ?? {})) bump(report.quirks, k, n);
      if (r.protocolLimits.length > 0) report.protocolLimits++;
      if (r.undetectable.length > 0) {
        report.undetectable++;
        report.undetectableRuns.push(i);
      }
      if (r.violations.length > 0) {
        report.violations++;
        report.firstViolation ??= i;
        bad.push({ index: i, scenario: s, violations: r.violations });
        opts.onViolation?.(i, s, r.violations);
      }
      if (opts.onProgress && performance.now() - lastProgress > 5000) {
        lastProgress = performance.now();
        finish();
        opts.onProgress(report);
      }
      return true;
    }),
    { seed: opts.seed, numRuns: opts.runs },
  );
  finish();
  for (const b of bad.slice(0, opts.shrink ?? 3)) report.failures.push(await shrink(opts, b.index, arb));
  return report;
}

/** Replay run `index` of a campaign and let fast-check shrink it. */
async function shrink(
  opts: CampaignOptions,
  index: number,
  arb: fc.Arbitrary<Scenario>,
): Promise<CampaignFailure> {
  return await replayPath(opts.seed, String(index), arb);
}

/** Replay a fast-check path of a campaign (shrinking further from there). */
export async function replayPath(
  seed: number,
  path: string,
  arb: fc.Arbitrary<Scenario> = scenarioArb("any"),
): Promise<CampaignFailure> {
  let last: string[] = [];
  let seen: Scenario | null = null;
  const details = await fc.check(
    fc.asyncProperty(arb, async (s) => {
      seen ??= s;
      const r = await safeRun(s);
      last = r.violations;
      return r.violations.length === 0;
    }),
    { seed, path, numRuns: 1 },
  );
  const scenario = (details.counterexample?.[0] ?? null) as Scenario | null;
  if (!details.failed || !scenario) {
    return { seed, runPath: path, path, scenario: seen as unknown as Scenario, violations: [] };
  }
  const again = await safeRun(scenario);
  last = again.violations.length ? again.violations : last;
  return { seed, runPath: path, path: details.counterexamplePath ?? path, scenario, violations: last };
}

function parseArgs(args: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (key === "json" || key === "first") out[key] = true;
    else {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      out[key] = v;
    }
  }
  return out;
}

function printReport(r: CampaignReport): void {
  const lines = [
    `scenarios run: ${r.runs}${
      r.truncated ? " (stopped early: --max-seconds or --first)" : ""
    }  seed: ${r.seed}${
      r.shards
        ? `  shards ${r.shards.indices.join(",")} of ${r.shards.count} (campaign of ${r.campaignRuns})`
        : ""
    }`,
    `throughput: ${r.scenariosPerSecond.toFixed(1)} scenarios/s over ${r.seconds.toFixed(1)} s (${
      r.virtualHours.toFixed(1)
    } h of chip time simulated)`,
    `paths: ${JSON.stringify(r.paths)}`,
    `first-run outcomes: ${JSON.stringify(r.outcomes)}`,
    `recoveries after a failure: ${JSON.stringify(r.recoveries)}`,
    `loader quirks that acted (scenarios): ${JSON.stringify(r.quirks)}`,
    `faults injected by kind:`,
    ...Object.entries(r.faults).sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${k.padEnd(20)} ${n}`),
    `corrupted request changed flash elsewhere, job failed, no backup to compare (no host can see it): ${r.undetectable}${
      r.undetectableRuns.length ? ` (runs ${r.undetectableRuns.slice(0, 10).join(", ")})` : ""
    }`,
    `stopped short by one CheckCRC reply carrying the CRC of 0xFF (the reply has no checksum): ${r.protocolLimits}`,
    `invariant violations: ${r.violations}`,
  ];
  console.log(lines.join("\n"));
}

async function saveFailure(f: CampaignFailure): Promise<string> {
  await Deno.mkdir("fuzz-failures", { recursive: true });
  const file = `fuzz-failures/seed-${f.seed}-path-${f.runPath.replaceAll(":", "_")}.json`;
  await Deno.writeTextFile(file, JSON.stringify(f, null, 2) + "\n");
  return file;
}

/** `fuzz merge <report.json>… [--json]`: print the campaign the shard reports make up. */
async function mergeMain(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const files = args.filter((a) => a !== "--json");
  if (files.length === 0 || files.some((f) => f.startsWith("--"))) {
    console.error("error: merge takes the shards' --json reports (and --json)");
    console.error("usage: deno task fuzz merge shard-1.json shard-2.json … [--json]");
    return 2;
  }
  const reports: CampaignReport[] = [];
  for (const f of files) {
    try {
      reports.push(JSON.parse(await Deno.readTextFile(f)) as CampaignReport);
    } catch (e) {
      console.error(`error: cannot read the report ${f}: ${(e as Error).message}`);
      console.error("pass files written by `deno task fuzz --shard i/n --json > shard-i.json`");
      return 2;
    }
  }
  let merged: CampaignReport;
  try {
    merged = mergeReports(reports);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    console.error("merge the reports of one campaign: same --seed, --runs and --path, shards 1..n once each");
    return 2;
  }
  if (json) console.log(JSON.stringify(merged));
  else {
    console.log(`merged ${reports.length} shards of ${merged.shards!.count}`);
    printReport(merged);
    for (const f of merged.failures) {
      console.log(`\nviolation (seed ${f.seed}, run ${f.runPath}): ${f.violations.join("; ")}`);
      console.log(`  replay: deno task fuzz --seed ${f.seed} --replay ${f.path}`);
    }
  }
  return merged.violations > 0 ? 1 : 0;
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "merge") return await mergeMain(args.slice(1));
  let o;
  let shard: CampaignShard | undefined;
  try {
    o = parseArgs(args);
    if (typeof o.shard === "string") shard = parseShard(o.shard);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    console.error(
      "usage: deno task fuzz --runs N --seed S [--json] [--path uart|spi|any] [--max-seconds T] [--first] [--shrink N] [--shard i/n]",
    );
    console.error("       deno task fuzz merge <report.json>… [--json]");
    console.error("       deno task fuzz --replay <file.json> | --seed S --replay <fast-check path>");
    return 2;
  }
  const seed = Number(o.seed ?? 1);
  if (typeof o.replay === "string") {
    const target = o.replay;
    let failure: CampaignFailure;
    if (target.endsWith(".json")) {
      const saved = JSON.parse(await Deno.readTextFile(target)) as Partial<CampaignFailure>;
      if (saved.scenario) {
        const r = await safeRun(saved.scenario);
        failure = {
          seed: saved.seed ?? seed,
          runPath: "",
          path: "",
          scenario: saved.scenario,
          violations: r.violations,
        };
      } else failure = await replayPath(saved.seed ?? seed, saved.path ?? "0");
    } else failure = await replayPath(seed, target);
    if (o.json) console.log(JSON.stringify(failure));
    else {
      console.log(`scenario: ${JSON.stringify(failure.scenario)}`);
      console.log(failure.violations.length ? failure.violations.join("\n") : "no violation");
    }
    return failure.violations.length ? 1 : 0;
  }
  const runs = Number(o.runs ?? 100);
  const path = (o.path ?? "any") as "uart" | "spi" | "any";
  const maxSeconds = o["max-seconds"] === undefined ? undefined : Number(o["max-seconds"]);
  const report = await runCampaign({
    runs,
    seed,
    path,
    maxSeconds,
    shard,
    stopAtFirst: o.first === true,
    shrink: o.shrink === undefined ? undefined : Number(o.shrink),
    onViolation: (i, sc, v) =>
      console.error(
        `violation in run ${i} (replay: --seed ${seed} --replay ${i}): ${v.join("; ")}\n  ${
          JSON.stringify(sc)
        }`,
      ),
    onProgress: o.json ? undefined : (r) =>
      console.error(
        `… ${r.runs} runs, ${r.violations} violations, ${r.scenariosPerSecond.toFixed(1)}/s`,
      ),
  });
  const files: string[] = [];
  for (const f of report.failures) files.push(await saveFailure(f));
  if (o.json) console.log(JSON.stringify(report));
  else {
    printReport(report);
    report.failures.forEach((f, i) => {
      console.log(`\nviolation (seed ${f.seed}, path ${f.path}):\n  ${f.violations.join("\n  ")}`);
      console.log(`  scenario: ${JSON.stringify(f.scenario)}`);
      console.log(`  replay: deno task fuzz --replay ${files[i]}   (or --seed ${f.seed} --replay ${f.path})`);
    });
  }
  return report.violations > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
