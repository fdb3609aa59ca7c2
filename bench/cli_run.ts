/**
 * Running the real CLI in-process for the benchmark, exactly as a user would type it, and
 * taking the figures from its `--json` result (the `accounting` object). The CLI sits above the
 * benchmark in the import order, so its entry point is handed in by `cli/bench.ts` (`deno task
 * bench`) through {@link useCli}.
 *
 * @module
 */

import type { Accounting } from "../core/flasher/accounting.ts";

/** A JSON result of the CLI. */
export type CliJson = Record<string, unknown>;

/** The accounting of one operation as the CLI reports it (the core's figures, as JSON). */
export type OpFigures = Accounting;

/** The CLI's in-process entry point (`main` of `cli/flash.ts`). */
export type CliMain = (
  args: string[],
  options: {
    io: { stdout: (t: string) => void; stderr: (t: string) => void; stderrIsTTY: boolean };
    now: () => Date;
  },
) => Promise<number>;

let cliMain: CliMain | null = null;

/** Hand the benchmark the CLI to run. */
export function useCli(main: CliMain): void {
  cliMain = main;
}

let tick = 0;

/**
 * Run `flash <args> --json` in this process; throws with the CLI's stderr when it fails. Each
 * call gets its own wall time, so backups of successive runs never share a name.
 */
export async function runCli(args: string[]): Promise<CliJson> {
  let stdout = "";
  let stderr = "";
  const now = new Date(Date.UTC(2026, 0, 1, 0, 0, tick++));
  if (!cliMain) {
    throw new Error("the benchmark runs the CLI it is given: start it with `deno task bench` (cli/bench.ts)");
  }
  const code = await cliMain([...args, "--json"], {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => now,
  });
  if (code !== 0) throw new Error(`flash ${args.join(" ")} exited ${code}:\n${stderr}`);
  return JSON.parse(stdout.trim());
}

/** The operation and backup figures of a CLI result. */
export function figuresOf(
  result: CliJson,
): { operation: OpFigures; backup: (OpFigures & { reused: boolean }) | null } {
  const a = result.accounting as { operation: OpFigures; backup: (OpFigures & { reused: boolean }) | null };
  return { operation: a.operation, backup: a.backup };
}
