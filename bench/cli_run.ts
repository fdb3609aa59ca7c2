/**
 * Running the real CLI in-process for the benchmark, exactly as a user would type it, and
 * taking the figures from its `--json` result (the `accounting` object).
 *
 * @module
 */

import { main } from "../cli/flash.ts";
import type { Accounting } from "../core/flasher/accounting.ts";

/** A JSON result of the CLI. */
export type CliJson = Record<string, unknown>;

/** The accounting of one operation as the CLI reports it (the core's figures, as JSON). */
export type OpFigures = Accounting;

let tick = 0;

/**
 * Run `flash <args> --json` in this process; throws with the CLI's stderr when it fails. Each
 * call gets its own wall time, so backups of successive runs never share a name.
 */
export async function runCli(args: string[]): Promise<CliJson> {
  let stdout = "";
  let stderr = "";
  const now = new Date(Date.UTC(2026, 0, 1, 0, 0, tick++));
  const code = await main([...args, "--json"], {
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
