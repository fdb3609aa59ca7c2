/**
 * What the CLI prints: results on stdout (one JSON object with `--json`, or a few human
 * lines), everything else (events, warnings, progress, errors) on stderr. Errors are one
 * line of cause and one of remedy (plus the damage line of a failed write), with an exit
 * status per error family and no stack trace unless `-v`.
 *
 * @module
 */

import { type ErrorCode, FlashError } from "../core/errors.ts";
import { LinkClosedError } from "../core/io/link.ts";

/** Where the CLI writes; the real process streams, or buffers in tests. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress bars are drawn only then). */
  readonly stderrIsTTY: boolean;
  /** Binary data on stdout (`read-flash --out -`); without it `--out -` is refused. */
  stdoutBytes?(data: Uint8Array): Promise<void>;
}

/** The process's own streams. */
export function processIO(): CliIO {
  const enc = new TextEncoder();
  const write = (file: typeof Deno.stdout, text: string) => {
    const data = enc.encode(text);
    for (let off = 0; off < data.length;) off += file.writeSync(data.subarray(off));
  };
  return {
    stdout: (t) => write(Deno.stdout, t),
    stderr: (t) => write(Deno.stderr, t),
    stderrIsTTY: Deno.stderr.isTerminal(),
    async stdoutBytes(data) {
      for (let off = 0; off < data.length;) off += await Deno.stdout.write(data.subarray(off));
    },
  };
}

/** Exit status of each error family; 0 is reserved for verified success. */
export const EXIT_CODES: Readonly<Partial<Record<ErrorCode, number>>> = {
  USAGE: 2,
  BAD_RANGE: 3,
  BAD_IMAGE: 3,
  BOOTLOADER_GUARD: 4,
  PORT: 5,
  USB: 5,
  DISCONNECTED: 5,
  NO_LINK: 6,
  TIMEOUT: 6,
  BAD_REPLY: 6,
  CHIP_STATUS: 6,
  CRC_MISMATCH: 6,
  SPI_ENTRY: 6,
  WRONG_CHIP: 7,
  WRONG_KEY: 7,
  UNKNOWN_FLASH: 7,
  UNSUPPORTED: 7,
  FLASH_LOCKED: 8,
  BACKUP_FAILED: 9,
  WRITE_FAILED: 10,
  VERIFY_FAILED: 11,
  CANCELLED: 130,
};

/** Exit status of anything that is not a {@link FlashError} (a bug). */
export const EXIT_INTERNAL = 1;

/** Exit status for an error code. */
export function exitCodeFor(code: ErrorCode): number {
  return EXIT_CODES[code] ?? EXIT_INTERNAL;
}

/** Turn any thrown value into a {@link FlashError} the user can act on. */
export function toFlashError(e: unknown): FlashError | null {
  if (e instanceof FlashError) return e;
  if (e instanceof LinkClosedError) {
    return new FlashError(
      "DISCONNECTED",
      e.message,
      "check the USB cable and adapter, then run the command again",
      {
        cause: e,
      },
    );
  }
  if (e instanceof Deno.errors.Interrupted) {
    return new FlashError("CANCELLED", "interrupted", "run the command again when ready", { cause: e });
  }
  return null;
}

/** Printer bound to the command's `--json` / `-v` choice. */
export class Output {
  readonly io: CliIO;
  readonly json: boolean;
  readonly verbose: boolean;
  /** Called before a stderr line is written, so a progress bar can clear its line. */
  beforeNote: (() => void) | null = null;
  /** Human result lines go to stderr (stdout carries data, `read-flash --out -`). */
  resultOnStderr = false;
  #printedResult = false;

  constructor(io: CliIO, opts: { json: boolean; verbose: boolean }) {
    this.io = io;
    this.json = opts.json;
    this.verbose = opts.verbose;
  }

  /** A line on stderr. */
  note(line: string): void {
    this.beforeNote?.();
    this.io.stderr(line + "\n");
  }

  /** A line on stderr with `-v` only. */
  debug(line: string): void {
    if (this.verbose) this.note(line);
  }

  /** The command's result: one JSON object (with `ok: true` first), or human lines. */
  result(fields: Record<string, unknown>, human: readonly string[]): void {
    if (this.#printedResult) throw new Error("a command printed two results");
    this.#printedResult = true;
    if (this.json) this.io.stdout(JSON.stringify({ ok: true, ...fields }) + "\n");
    else for (const line of human) this.resultOnStderr ? this.note(line) : this.io.stdout(line + "\n");
  }

  /** Report a failure; returns the exit status. */
  error(e: unknown): number {
    const fe = toFlashError(e);
    const lines = fe ? fe.lines() : [
      `error: internal error: ${e instanceof Error ? e.message : String(e)}`,
      "remedy: run again with -v and report the output",
    ];
    for (const line of lines) this.note(line);
    if (this.verbose) this.note(stackOf(e));
    if (this.json && !this.#printedResult) {
      this.#printedResult = true;
      const obj: Record<string, unknown> = {
        ok: false,
        code: fe?.code ?? "INTERNAL",
        error: fe?.message ?? (e instanceof Error ? e.message : String(e)),
        remedy: fe?.remedy ?? "run again with -v and report the output",
      };
      if (fe?.damage) obj.damage = fe.damage;
      this.io.stdout(JSON.stringify(obj) + "\n");
    }
    return fe ? exitCodeFor(fe.code) : EXIT_INTERNAL;
  }
}

function stackOf(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur !== undefined && depth < 5; depth++) {
    parts.push(cur instanceof Error ? (cur.stack ?? String(cur)) : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
    if (cur !== undefined) parts.push("caused by:");
  }
  return parts.join("\n");
}
