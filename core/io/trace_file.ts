/**
 * Trace files on disk: a {@link TraceSink} that appends each line as it is recorded (so a
 * crash keeps everything up to it), gzip-compressed at close when the name ends in `.gz`;
 * and reading one back.
 *
 * @module
 */

import { gunzipSync, gzipSync } from "node:zlib";
import { FlashError } from "../errors.ts";
import type { TraceSink } from "./trace.ts";

/**
 * Create (or truncate) `path` for a trace.
 *
 * @example
 * ```ts
 * import { TraceWriter } from "./trace.ts";
 * const writer = new TraceWriter(await openTraceFile("session.jsonl"), { clock: "real" });
 * ```
 */
export async function openTraceFile(path: string): Promise<TraceSink> {
  const gz = path.endsWith(".gz");
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, create: true, truncate: true });
  } catch (e) {
    throw new FlashError(
      "USAGE",
      `cannot write the trace ${path}: ${(e as Error).message}`,
      "pass --record a path in a directory you can write to",
    );
  }
  const enc = new TextEncoder();
  const pending: string[] = [];
  let closed = false;
  return {
    write(line: string) {
      if (closed) return;
      if (gz) pending.push(line + "\n");
      else writeAll(file, enc.encode(line + "\n"));
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      try {
        if (gz) writeAll(file, gzipSync(enc.encode(pending.join(""))));
      } finally {
        file.close();
      }
      return Promise.resolve();
    },
  };
}

function writeAll(file: Deno.FsFile, data: Uint8Array): void {
  for (let at = 0; at < data.length;) at += file.writeSync(data.subarray(at));
}

/** The JSONL text of a trace file (gunzipped when it ends in `.gz`). */
export async function readTraceFile(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new FlashError("USAGE", `cannot read the trace ${path}: ${(e as Error).message}`, "check the path");
  }
  return new TextDecoder().decode(path.endsWith(".gz") ? gunzipSync(bytes) : bytes);
}
