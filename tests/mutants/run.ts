/**
 * `deno task mutants`: plant each regression of the catalogue (./catalogue.ts), one at a time,
 * in a temporary copy of the repository, and see whether the fast fuzz profile alone catches it,
 * and whether `deno task test` does.
 *
 * ```
 * deno task mutants [--json] [--only <name>[,<name>…]] [--no-tests] [--runs N] [--seed S] [--keep]
 * ```
 *
 * The fast fuzz profile is a pinned-seed campaign ({@link FAST_RUNS} runs, seed {@link FAST_SEED},
 * stopping at the first violation): every path of the safety logic the catalogue plants a
 * regression in is exercised by many of its runs, and the report gives, per mutant, the index of
 * the first run that caught it, so the margin is visible. `--json` prints
 * `{ "mutants": N, "killedByFuzz": k1, "killedByTests": k2, "survivors": [names], "baselineTestsPass", … }`, where
 * survivors are the mutants the fuzz profile did not kill and `killedByTests` is null with
 * `--no-tests`. Exit status: 0 when the fuzz profile killed every mutant, 1 otherwise, 2 when the
 * catalogue no longer matches the source.
 *
 * @module
 */

import { join } from "node:path";
import { type Mutant, MUTANTS } from "./catalogue.ts";

/** Runs of the fast fuzz profile. */
export const FAST_RUNS = 1000;
/** Seed of the fast fuzz profile. */
export const FAST_SEED = 1;

const ROOT = new URL("../../", import.meta.url).pathname;
/** Not copied: history, dependencies (linked instead) and output of earlier runs. */
const SKIP = new Set([".git", "node_modules", "fuzz-failures", "backups"]);
const FUZZ_FLAGS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys"];
/** The tests column runs the copy's own `deno task test`, with the permissions its deno.json gives. */
const TEST_TASK = ["task", "test"];

/** What one mutant did. */
export interface MutantResult {
  name: string;
  file: string;
  killedByFuzz: boolean;
  /** Index of the first violating run of the profile (null: none). */
  fuzzRun: number | null;
  /** The first violation the fuzz campaign reported, shortened. */
  fuzzFinding: string | null;
  /** null when tests were not run. */
  killedByTests: boolean | null;
  seconds: number;
}

/** Check that every original text occurs exactly once; returns the problems. */
export async function checkCatalogue(root: string, mutants: readonly Mutant[]): Promise<string[]> {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const m of mutants) {
    if (names.has(m.name)) problems.push(`${m.name}: the name is used twice`);
    names.add(m.name);
    let text: string;
    try {
      text = await Deno.readTextFile(join(root, m.file));
    } catch (e) {
      problems.push(`${m.name}: cannot read ${m.file}: ${(e as Error).message}`);
      continue;
    }
    const n = text.split(m.original).length - 1;
    if (n !== 1) problems.push(`${m.name}: the original text occurs ${n} times in ${m.file} (must be once)`);
    if (m.original === m.replacement) problems.push(`${m.name}: the replacement changes nothing`);
  }
  return problems;
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (SKIP.has(e.name)) continue;
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory) await copyTree(src, dst);
    else if (e.isFile) await Deno.copyFile(src, dst);
    else if (e.isSymlink) await Deno.symlink(await Deno.readLink(src), dst);
  }
}

async function run(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function fuzz(
  cwd: string,
  runs: number,
  seed: number,
): Promise<{ killed: boolean; run: number | null; finding: string | null }> {
  const r = await run(cwd, [
    "run",
    ...FUZZ_FLAGS,
    "tests/fuzz/campaign.ts",
    "--runs",
    String(runs),
    "--seed",
    String(seed),
    "--json",
    "--first",
    "--shrink",
    "0",
  ]);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  let report: { violations?: number; firstViolation?: number | null } | null = null;
  try {
    report = JSON.parse(line);
  } catch {
    report = null;
  }
  const violation = r.stderr.split("\n").find((l) => l.startsWith("violation in run"));
  if (!report) {
    // the campaign itself crashed under the mutant: that is caught, loudly
    const why = r.stderr.trim().split("\n").slice(-3).join(" | ");
    return { killed: true, run: null, finding: `campaign crashed (exit ${r.code}): ${why.slice(0, 200)}` };
  }
  const killed = (report.violations ?? 0) > 0;
  return {
    killed,
    run: report.firstViolation ?? null,
    finding: killed && violation
      ? violation.replace(/^violation in run \d+ \([^)]*\): /, "").slice(0, 200)
      : null,
  };
}

function parseArgs(args: string[]) {
  const o = { json: false, tests: true, keep: false, only: [] as string[], runs: FAST_RUNS, seed: FAST_SEED };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--json") o.json = true;
    else if (a === "--no-tests") o.tests = false;
    else if (a === "--keep") o.keep = true;
    else if (a === "--only") o.only.push(...value().split(",").filter(Boolean));
    else if (a === "--runs") o.runs = Number(value());
    else if (a === "--seed") o.seed = Number(value());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error("--runs needs a positive integer");
  if (!Number.isInteger(o.seed)) throw new Error("--seed needs an integer");
  return o;
}

async function main(args: string[]): Promise<number> {
  let o;
  try {
    o = parseArgs(args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    console.error(
      "usage: deno task mutants [--json] [--only <name>[,<name>…]] [--no-tests] [--runs N] [--seed S] [--keep]",
    );
    return 2;
  }
  const problems = await checkCatalogue(ROOT, MUTANTS);
  if (problems.length) {
    console.error("error: the mutant catalogue no longer matches the source:");
    for (const p of problems) console.error(`  ${p}`);
    console.error(
      "update tests/mutants/catalogue.ts to the code as it is now (file, original text, replacement)",
    );
    return 2;
  }
  const unknown = o.only.filter((n) => !MUTANTS.some((m) => m.name === n));
  if (unknown.length) {
    console.error(`error: no mutant named ${unknown.join(", ")}`);
    console.error(`names: ${MUTANTS.map((m) => m.name).join(", ")}`);
    return 2;
  }
  const chosen = o.only.length ? MUTANTS.filter((m) => o.only.includes(m.name)) : MUTANTS;
  const tmp = await Deno.makeTempDir({ prefix: "bekenlab-mutants-" });
  const results: MutantResult[] = [];
  let baseline: boolean | null = null;
  try {
    await copyTree(ROOT, tmp);
    try {
      await Deno.symlink(join(ROOT, "node_modules"), join(tmp, "node_modules"));
    } catch {
      // no node_modules yet: Deno fills the copy's own from its cache
    }
    if (!o.json) {
      console.error(
        `${chosen.length} mutant(s); fuzz profile: ${o.runs} runs, seed ${o.seed}; tests: ${
          o.tests ? "deno task test" : "skipped (--no-tests)"
        }; copy in ${tmp}`,
      );
    }
    if (o.tests) {
      // a test that fails without any mutant (a real-time test under load) would count as a kill
      baseline = (await run(tmp, TEST_TASK)).code === 0;
      if (!o.json) console.error(`baseline (no mutant): deno task test ${baseline ? "passes" : "FAILS"}`);
    }
    for (const m of chosen) {
      const path = join(tmp, m.file);
      const original = await Deno.readTextFile(path);
      const t0 = performance.now();
      await Deno.writeTextFile(path, original.replace(m.original, () => m.replacement));
      let result: MutantResult;
      try {
        const f = await fuzz(tmp, o.runs, o.seed);
        let tests: boolean | null = null;
        // with a failing baseline a failing run says nothing about the mutant: no verdict
        if (o.tests && baseline) tests = (await run(tmp, TEST_TASK)).code !== 0;
        result = {
          name: m.name,
          file: m.file,
          killedByFuzz: f.killed,
          fuzzRun: f.run,
          fuzzFinding: f.finding,
          killedByTests: tests,
          seconds: (performance.now() - t0) / 1000,
        };
      } finally {
        await Deno.writeTextFile(path, original);
      }
      results.push(result);
      if (!o.json) {
        console.error(
          `${m.name.padEnd(40)} fuzz: ${
            result.killedByFuzz
              ? `killed${result.fuzzRun === null ? "" : ` (run ${result.fuzzRun})`}`
              : "SURVIVED"
          }  tests: ${result.killedByTests === null ? "-" : result.killedByTests ? "killed" : "SURVIVED"}  ${
            result.seconds.toFixed(0)
          } s${result.fuzzFinding ? `\n    ${result.fuzzFinding}` : ""}`,
        );
      }
    }
  } finally {
    if (!o.keep) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const survivors = results.filter((r) => !r.killedByFuzz).map((r) => r.name);
  const summary = {
    mutants: results.length,
    killedByFuzz: results.filter((r) => r.killedByFuzz).length,
    killedByTests: o.tests ? results.filter((r) => r.killedByTests).length : null,
    survivors,
    /** Whether `deno task test` passed on the copy without a mutant (null: tests not run). */
    baselineTestsPass: baseline,
    profile: { runs: o.runs, seed: o.seed },
    results,
  };
  if (o.json) console.log(JSON.stringify(summary));
  else {
    console.log(
      `mutants: ${summary.mutants}  killed by fuzz: ${summary.killedByFuzz}  killed by tests: ${
        summary.killedByTests ?? "not run"
      }  survivors (fuzz): ${survivors.length ? survivors.join(", ") : "none"}`,
    );
  }
  return survivors.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
