/**
 * `--record <file>` for `deno task flash`: a trace of the command's wire (UART bytes both
 * ways, baud and modem-line changes, or the CH341A's USB transfers), stamped with the
 * command line that produced it. Virtual ports record their modelled time, real ones the
 * wall clock.
 *
 * @module
 */

import { TraceWriter } from "../core/io/trace.ts";
import { openTraceFile } from "../core/io/trace_file.ts";
import { isVirtualPort, type PortSpec } from "../core/io/port_spec.ts";

/**
 * Open `path` and write the header for a CLI run of `argv` on `spec`.
 *
 * @example
 * ```ts
 * const writer = await startCliRecording("t.jsonl", parsePortSpec("virtual:bk7231n"), args);
 * ```
 */
export async function startCliRecording(
  path: string,
  spec: PortSpec,
  argv: readonly string[],
): Promise<TraceWriter> {
  return new TraceWriter(await openTraceFile(path), {
    clock: isVirtualPort(spec) ? "virtual" : "real",
    run: { tool: "flash", argv: [...argv] },
  });
}
