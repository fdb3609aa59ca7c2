/**
 * `deno task flash`: an esptool-shaped command line for Beken BK72xx chips.
 *
 * ```sh
 * deno task flash --port virtual:bk7231n chip-info --json
 * deno task flash --port /dev/ttyUSB0 read-flash --out backup.bin
 * deno task flash --port /dev/ttyUSB0 write-flash app.bin --addr 0x11000
 * ```
 *
 * {@link main} runs the CLI in-process (tests pass their own streams), and returns the exit
 * status: 0 only on verified success. This module holds the program, its global options and
 * the session around each command; the commands themselves are defined in `flash_commands.ts`.
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import { FlashError } from "../core/errors.ts";
import type { EntryParams } from "../core/spi/entry.ts";
import type { CommandEnv } from "./command_env.ts";
import { isStdout, type OutputFile, streamOutput } from "../core/flasher/files.ts";
import { parseAtLeast, parseBaud, parseNumber, parsePositiveDuration } from "./numbers.ts";
import { type CliIO, exitCodeFor, Output, processIO, toFlashError } from "./output.ts";
import { parsePortSpec } from "../core/io/port_spec.ts";
import { progressView } from "./progress.ts";
import { checkFaultKinds, parseFaultPlan } from "./faults.ts";
import { startCliRecording } from "./record.ts";
import { type Session, withSession } from "./session.ts";
import { defineCommands } from "./flash_commands.ts";

/** Where `main` writes and what it may use. */
export interface MainOptions {
  io?: CliIO;
  /** Cancels the running command (Ctrl-C in the real process). */
  signal?: AbortSignal;
  /** Wall clock for backup names (tests pin it). */
  now?: () => Date;
  /** Answers confirmations (default: ask on the terminal, "no" without one). */
  confirm?: (question: string) => Promise<boolean>;
}

/** Ask on stderr and read one line from stdin, when stdin is a terminal. */
async function askOnTerminal(io: CliIO, question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) return false;
  io.stderr(question);
  const buf = new Uint8Array(256);
  const n = await Deno.stdin.read(buf);
  const answer = n === null ? "" : new TextDecoder().decode(buf.subarray(0, n)).trim().toLowerCase();
  return answer === "y" || answer === "yes";
}

/** Default working baud rate of UART paths. */
export const DEFAULT_BAUD = 921600;

/** Global options, as commander hands them over. */
export interface Globals {
  port?: string;
  chip?: string;
  baud: string;
  json?: boolean;
  verbose?: boolean;
  linkTimeout: string;
  backup: boolean;
  backupDir: string;
  overwriteBootloader?: boolean;
  skipKeyCheck?: boolean;
  state?: string;
  seed?: string;
  yes?: boolean;
  cen?: string;
  spiMode: string;
  spiSpeed: string;
  spiAttempts?: string;
  cenLow?: string;
  d2Count?: string;
  pollBudget?: string;
  record?: string;
  faults?: string;
  readAhead?: boolean;
  sparse: boolean;
}

/** Beken SPI-mode entry overrides given on the command line. */
function spiEntryOf(g: Globals): Partial<EntryParams> {
  const e: Partial<EntryParams> = {};
  if (g.spiAttempts !== undefined) e.attempts = parseAtLeast(g.spiAttempts, 1, "--spi-attempts");
  if (g.cenLow !== undefined) {
    e.cenLowMs = parsePositiveDuration(`${g.cenLow}${/^\d+$/.test(g.cenLow) ? "ms" : ""}`, "--cen-low");
  }
  if (g.d2Count !== undefined) e.d2Count = parseNumber(g.d2Count, "--d2-count");
  if (g.pollBudget !== undefined) e.pollBudget = parseAtLeast(g.pollBudget, 1, "--poll-budget");
  return e;
}

/**
 * Run the CLI with `args` (without the program name); resolves to the exit status.
 *
 * @example
 * ```ts
 * const code = await main(["--port", "virtual:bk7231n", "chip-info", "--json"]);
 * ```
 */
export async function main(args: readonly string[], opts: MainOptions = {}): Promise<number> {
  const io = opts.io ?? processIO();
  const out = new Output(io, {
    json: args.includes("--json"),
    verbose: args.includes("-v") || args.includes("--verbose"),
  });
  const program = buildProgram(io, out, opts, args);
  try {
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      if (e.code === "commander.help") {
        // no command: commander has printed the help on stderr, which is all the user needs
        if (out.json) {
          io.stdout(
            JSON.stringify({
              ok: false,
              code: "USAGE",
              error: "no command given",
              remedy: "pass a command, e.g. chip-info",
            }) + "\n",
          );
        }
        return exitCodeFor("USAGE");
      }
      return out.error(
        new FlashError(
          "USAGE",
          e.message.replace(/^error:\s*/i, ""),
          "see `deno task flash --help` for commands and options",
        ),
      );
    }
    return out.error(opts.signal?.aborted ? asCancelled(e, args.includes("write-flash")) : e);
  }
}

/**
 * A failure after Ctrl-C is reported as the interruption it is (exit 130), whatever the
 * phase made of it, keeping the range a write may have left.
 */
export function asCancelled(e: unknown, write: boolean): unknown {
  const fe = toFlashError(e);
  if (!fe || fe.code === "CANCELLED") return e;
  return new FlashError(
    "CANCELLED",
    `interrupted (${fe.message})`,
    !fe.damage
      ? "run the command again when ready"
      : write
      ? "run the same command with --resume to finish the write"
      : "run the same command again to finish it",
    { damage: fe.damage, cause: e },
  );
}

function buildProgram(io: CliIO, out: Output, opts: MainOptions, args: readonly string[]): Command {
  const program = new Command()
    .name("flash")
    .description("Flash, back up and recover Beken BK72xx chips over the boot UART or SPI (CH341A).")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s), outputError: () => {} })
    .option(
      "-p, --port <spec>",
      "virtual:<chip>, /dev/ttyUSB0, COM3, tcp://host:port, rfc2217://host:port, ch341a[:<n>], ch341a:virtual:<chip>, spidev:<dev>",
    )
    .option("-c, --chip <id>", "chip mode (bk7231n, bk7231t, …; beken-spi or spi-generic on SPI ports)")
    .option(
      "-b, --baud <rate>",
      "working baud rate of the UART (the link starts at 115200; `baud-rates` lists what works)",
      String(DEFAULT_BAUD),
    )
    .option("--json", "print exactly one JSON object on stdout")
    .option("-v, --verbose", "more detail on stderr, and stack traces on errors")
    .option("--link-timeout <time>", "give up linking after this long (20s, 500ms)", "20s")
    .option("--no-backup", "do not back up the whole flash before writing or erasing (not recommended)")
    .option("--backup-dir <dir>", "where backups, sidecars and journals go", "backups")
    .option(
      "--overwrite-bootloader",
      "allow writing or erasing 0x0..0x10fff (a failure there bricks the chip)",
    )
    .option(
      "--skip-key-check",
      "continue when the efuse key or chip ID does not fit the chip mode, or the image is built for another key",
    )
    .option(
      "--state <file>",
      "virtual ports: load and save the chip's flash, efuse and status registers here",
    )
    .option("--seed <n>", "virtual ports: seed of the wire's randomness")
    .option("-y, --yes", "answer yes to confirmations (SPI bootloader writes)")
    .option("--cen <gpio>", "spidev: GPIO line wired to CEN, e.g. gpiochip0:17")
    .option("--spi-mode <0-3>", "spidev: SPI mode", "3")
    .option("--spi-speed <hz>", "spidev: SPI clock in Hz", "30000")
    .option("--spi-attempts <n>", "SPI-mode entry: reset + 0xD2 sequences before giving up")
    .option("--cen-low <ms>", "SPI-mode entry: how long CEN is held low")
    .option("--d2-count <n>", "SPI-mode entry: 0xD2 bytes streamed after the release")
    .option("--poll-budget <n>", "SPI-mode entry: JEDEC polls per attempt")
    .option("--record <file>", "record the wire (bytes, baud, modem lines; USB on CH341A) as JSON Lines")
    .option(
      "--faults <plan>",
      `virtual ports: inject seeded faults, a plan as JSON or a .json file, e.g. '{"seed":1,"rates":{"rx-flip":0.01}}'`,
    )
    .option(
      "--read-ahead",
      "send the next read request while a reply still arrives, even where the loader is not known to keep it",
    )
    .option(
      "--no-read-ahead",
      "one read request at a time (default where the loader is not known to keep a queued request)",
    )
    .option(
      "--no-sparse",
      "read every byte (by default regions the chip's CRC shows to be erased are not read)",
    );

  const globalsOf = (cmd: { optsWithGlobals(): unknown }) => cmd.optsWithGlobals() as Globals;

  /** `--out -`: the flash bytes go to stdout, so the result line goes to stderr. */
  const stdoutSink = (path: string): OutputFile | undefined => {
    if (!isStdout(path)) return undefined;
    if (out.json) {
      throw new FlashError(
        "USAGE",
        `--out ${path} sends the flash bytes to stdout, where --json prints its result`,
        "drop --json, or pass --out a file",
      );
    }
    if (!io.stdoutBytes) {
      throw new FlashError("USAGE", `--out ${path}: this caller has no binary stdout`, "pass --out a file");
    }
    out.resultOnStderr = true;
    return streamOutput((chunk) => io.stdoutBytes!(chunk));
  };

  const run = async (
    cmd: { optsWithGlobals(): unknown },
    body: (s: Session, env: CommandEnv) => Promise<void>,
  ): Promise<void> => {
    const g = globalsOf(cmd);
    const spec = parsePortSpec(g.port);
    const record = g.record ? await startCliRecording(g.record, spec, args) : undefined;
    const progress = progressView(io.stderrIsTTY);
    out.beforeNote = () => progress.clearLine();
    const env: CommandEnv = {
      out,
      progress,
      now: opts.now ?? (() => new Date()),
      signal: opts.signal,
      backupDir: g.backupDir,
      noBackup: !g.backup,
      overwriteBootloader: g.overwriteBootloader ?? false,
      yes: g.yes ?? false,
      confirm: opts.confirm ?? ((q) => (out.json ? Promise.resolve(false) : askOnTerminal(io, q))),
      readAhead: g.readAhead !== false,
      skipKeyCheck: g.skipKeyCheck ?? false,
      sparse: g.sparse,
    };
    return withSession(
      {
        spec,
        portText: g.port ?? "",
        chip: g.chip,
        baud: parseBaud(g.baud),
        readAhead: g.readAhead,
        linkTimeoutMs: parsePositiveDuration(g.linkTimeout, "--link-timeout"),
        skipKeyCheck: g.skipKeyCheck ?? false,
        state: g.state,
        seed: g.seed === undefined ? undefined : parseNumber(g.seed, "--seed"),
        signal: opts.signal,
        spiEntry: spiEntryOf(g),
        spidev: {
          cen: g.cen,
          mode: parseAtLeast(g.spiMode, 0, "--spi-mode", 3),
          speedHz: parseAtLeast(g.spiSpeed, 1, "--spi-speed"),
        },
        onMessage: (line, level) => (level === "info" ? out.note(line) : out.debug(line)),
        record,
        faults: g.faults === undefined ? undefined : checkFaultKinds(await parseFaultPlan(g.faults), spec),
      },
      (s) => body(s, env),
    ).finally(async () => {
      progress.stop();
      await record?.close();
    });
  };

  defineCommands(program, { out, run, stdoutSink, globalsOf });

  return program;
}

if (import.meta.main) {
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  const code = await main(Deno.args, { signal: ac.signal });
  Deno.removeSignalListener("SIGINT", onSigint);
  Deno.exit(code);
}
