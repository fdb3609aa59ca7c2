/**
 * Sharded fuzz campaigns: which runs a shard owns, and adding shard reports up into the report
 * of the whole campaign.
 *
 * A shard `i/n` (1 ≤ i ≤ n) owns the runs whose global index k satisfies k mod n = i - 1. The
 * slices are disjoint and together they are every run of the campaign; interleaving rather than
 * cutting the campaign into blocks gives each shard the same mix of chips, paths and faults,
 * so the shards of a CI matrix finish at about the same time.
 *
 * @module
 */

import type { CampaignReport } from "./campaign.ts";

/** One slice of a campaign: `index` of `count`, 1-based as on the command line. */
export interface CampaignShard {
  index: number;
  count: number;
}

/** A report that cannot be merged (another campaign, a shard twice, a shard missing). */
export class MergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MergeError";
  }
}

/**
 * Parse `--shard i/n`.
 *
 * @example
 * ```ts
 * parseShard("2/4"); // { index: 2, count: 4 }
 * ```
 */
export function parseShard(text: string): CampaignShard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new Error(`--shard "${text}" is not i/n with 1 <= i <= n (e.g. --shard 2/4)`);
  }
  return { index, count };
}

/** Whether run `globalIndex` of the campaign belongs to `shard`. */
export function inShard(globalIndex: number, shard: CampaignShard): boolean {
  return globalIndex % shard.count === shard.index - 1;
}

const COUNT_MAPS = ["faults", "outcomes", "recoveries", "paths", "chips", "quirks"] as const;

/** Put the keys of a report's count maps in sorted order, so equal counts print equal. */
export function sortCounts(report: CampaignReport): void {
  for (const key of COUNT_MAPS) {
    const m = report[key] as Record<string, number>;
    const sorted: Record<string, number> = {};
    for (const k of Object.keys(m).sort()) sorted[k] = m[k];
    (report as unknown as Record<string, unknown>)[key] = sorted;
  }
}

function add(into: Record<string, number>, from: Record<string, number | undefined>): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + (n ?? 0);
}

/**
 * Add shard reports up into the report of the campaign they slice. Every shard `1..n` must be
 * there exactly once, all from the same seed, run count and path.
 *
 * Counts (runs, violations, the first violating run, faults by kind, outcomes, recoveries, paths, chips, the lists of
 * runs) equal those of the unsharded campaign; `seconds` is the sum over shards (machine time,
 * not wall time) and `failures` are the shards' shrunk failures in run order.
 *
 * @throws {MergeError} when the reports do not make up one campaign.
 */
export function mergeReports(reports: readonly CampaignReport[]): CampaignReport {
  if (reports.length === 0) throw new MergeError("no reports to merge");
  const first = reports[0];
  const count = first.shards?.count;
  const seen = new Set<number>();
  for (const [i, r] of reports.entries()) {
    if (!r.shards) throw new MergeError(`report ${i + 1} is not from a sharded run (--shard i/n)`);
    if (r.seed !== first.seed || r.campaignRuns !== first.campaignRuns || r.path !== first.path) {
      throw new MergeError(
        `report ${
          i + 1
        } is from another campaign (seed ${r.seed}, --runs ${r.campaignRuns}, --path ${r.path}; ` +
          `the first is seed ${first.seed}, --runs ${first.campaignRuns}, --path ${first.path})`,
      );
    }
    if (r.shards.count !== count) {
      throw new MergeError(`report ${i + 1} is a shard of ${r.shards.count}, the first of ${count}`);
    }
    for (const s of r.shards.indices) {
      if (seen.has(s)) throw new MergeError(`shard ${s}/${count} appears twice`);
      seen.add(s);
    }
  }
  const missing = Array.from({ length: count! }, (_, k) => k + 1).filter((s) => !seen.has(s));
  if (missing.length) {
    throw new MergeError(`shard${missing.length > 1 ? "s" : ""} ${missing.join(", ")} of ${count} missing`);
  }
  const out: CampaignReport = {
    runs: 0,
    seed: first.seed,
    campaignRuns: first.campaignRuns,
    path: first.path,
    shards: { count: count!, indices: [...seen].sort((a, b) => a - b) },
    violations: 0,
    undetectable: 0,
    undetectableRuns: [],
    protocolLimits: 0,
    firstViolation: null,
    faults: {},
    outcomes: {},
    recoveries: {},
    paths: {},
    chips: {},
    quirks: {},
    seconds: 0,
    scenariosPerSecond: 0,
    virtualHours: 0,
    truncated: false,
    failures: [],
  };
  for (const r of reports) {
    out.runs += r.runs;
    out.violations += r.violations;
    out.undetectable += r.undetectable;
    out.protocolLimits += r.protocolLimits;
    out.undetectableRuns.push(...r.undetectableRuns);
    // run indices are global, so the campaign's first violation is the least of the shards'
    if (r.firstViolation !== null && (out.firstViolation === null || r.firstViolation < out.firstViolation)) {
      out.firstViolation = r.firstViolation;
    }
    for (const key of COUNT_MAPS) add(out[key] as Record<string, number>, r[key]);
    out.seconds += r.seconds;
    out.virtualHours += r.virtualHours;
    out.truncated ||= r.truncated;
    out.failures.push(...r.failures);
  }
  out.undetectableRuns.sort((a, b) => a - b);
  out.failures.sort((a, b) => Number(a.runPath.split(":")[0]) - Number(b.runPath.split(":")[0]));
  out.scenariosPerSecond = out.seconds > 0 ? out.runs / out.seconds : 0;
  sortCounts(out);
  return out;
}

/** The fields of a report that sharding must not change, as one string. */
export function countsOf(report: CampaignReport): string {
  const { runs, seed, violations, firstViolation, undetectable, undetectableRuns, protocolLimits } = report;
  const copy = { ...report };
  sortCounts(copy);
  const { faults, outcomes, recoveries, paths, chips, quirks } = copy;
  return JSON.stringify({
    runs,
    seed,
    violations,
    firstViolation,
    undetectable,
    undetectableRuns,
    protocolLimits,
    faults,
    outcomes,
    recoveries,
    paths,
    chips,
    quirks,
  });
}
