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
 * status: 0 only on verified success.
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import { FlashError } from "../core/errors.ts";
import type { EntryParams } from "../core/spi/entry.ts";
import {
  chipInfo,
  type CommandEnv,
  eraseRegionCommand,
  readFlashCommand,
  readKeyCommand,
  rebootCommand,
  verifyFlashCommand,
  writeFlashCommand,
} from "./commands.ts";
import { checkWritable, openImage } from "./files.ts";
import { listPortsCommand } from "./list_ports.ts";
import { parseDuration, parseNumber } from "./numbers.ts";
import { type CliIO, Output, processIO } from "./output.ts";
import { parsePortSpec } from "./ports.ts";
import { progressView } from "./progress.ts";
import { parseFaultPlan } from "./faults.ts";
import { startCliRecording } from "./record.ts";
import { type Session, withSession } from "./session.ts";

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
interface Globals {
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
  readAhead: boolean;
  sparse: boolean;
}

/** Beken SPI-mode entry overrides given on the command line. */
function spiEntryOf(g: Globals): Partial<EntryParams> {
  const e: Partial<EntryParams> = {};
  if (g.spiAttempts !== undefined) e.attempts = parseNumber(g.spiAttempts, "--spi-attempts");
  if (g.cenLow !== undefined) {
    e.cenLowMs = parseDuration(`${g.cenLow}${/^\d+$/.test(g.cenLow) ? "ms" : ""}`, "--cen-low");
  }
  if (g.d2Count !== undefined) e.d2Count = parseNumber(g.d2Count, "--d2-count");
  if (g.pollBudget !== undefined) e.pollBudget = parseNumber(g.pollBudget, "--poll-budget");
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
      return out.error(
        new FlashError(
          "USAGE",
          e.message.replace(/^error:\s*/i, ""),
          "see `deno task flash --help` for commands and options",
        ),
      );
    }
    return out.error(e);
  }
}

function buildProgram(io: CliIO, out: Output, opts: MainOptions, args: readonly string[]): Command {
  const program = new Command()
    .name("flash")
    .description("Flash, back up and recover Beken BK72xx chips over the boot UART or SPI (CH341A).")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s), outputError: () => {} })
    .option(
      "-p, --port <spec>",
      "virtual:<chip>, /dev/ttyUSB0, COM3, tcp://host:port, ch341a[:<n>], ch341a:virtual:<chip>, spidev:<dev>",
    )
    .option("-c, --chip <id>", "chip mode (bk7231n, bk7231t, …; beken-spi or spi-generic on SPI ports)")
    .option(
      "-b, --baud <rate>",
      "working baud rate of the UART (the link starts at 115200)",
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
    .option("--skip-key-check", "continue when the efuse key or chip ID does not fit the chip mode")
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
      "--no-read-ahead",
      "one read request at a time (by default the next request is sent while a reply still arrives)",
    )
    .option(
      "--no-sparse",
      "read every byte (by default regions the chip's CRC shows to be erased are not read)",
    );

  const globalsOf = (cmd: { optsWithGlobals(): unknown }) => cmd.optsWithGlobals() as Globals;

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
      readAhead: g.readAhead,
      sparse: g.sparse,
    };
    return withSession(
      {
        spec,
        portText: g.port ?? "",
        chip: g.chip,
        baud: parseNumber(g.baud, "--baud"),
        linkTimeoutMs: parseDuration(g.linkTimeout, "--link-timeout"),
        skipKeyCheck: g.skipKeyCheck ?? false,
        state: g.state,
        seed: g.seed === undefined ? undefined : parseNumber(g.seed, "--seed"),
        signal: opts.signal,
        spiEntry: spiEntryOf(g),
        spidev: {
          cen: g.cen,
          mode: parseNumber(g.spiMode, "--spi-mode") & 3,
          speedHz: parseNumber(g.spiSpeed, "--spi-speed"),
        },
        onMessage: (line, level) => (level === "info" ? out.note(line) : out.debug(line)),
        record,
        faults: g.faults === undefined ? undefined : await parseFaultPlan(g.faults),
      },
      (s) => body(s, env),
    ).finally(async () => {
      progress.stop();
      await record?.close();
    });
  };

  program.command("chip-info")
    .description("identify the chip: mode, bootloader, flash ID and size, key, status registers")
    .action((_o, cmd) => run(cmd, chipInfo));

  program.command("read-flash")
    .description("read flash into a file (whole chip by default)")
    .option("--addr <n>", "start address", "0")
    .option("--size <n>", "bytes to read (default: to the end of the flash)")
    .requiredOption("-o, --out <file>", "output file")
    .action(async (o, cmd) => {
      const args = {
        addr: parseNumber(o.addr, "--addr"),
        size: o.size === undefined ? undefined : parseNumber(o.size, "--size"),
        out: o.out,
      };
      await checkWritable(o.out);
      await run(cmd, (s, env) => readFlashCommand(s, env, args));
    });

  program.command("write-flash")
    .description("write an image (full backup first, unchanged sectors skipped, verified)")
    .argument("<image>", "firmware image")
    .requiredOption("--addr <n>", "flash address of the image's first byte (the app goes at 0x11000)")
    .option(
      "--resume [journal]",
      "finish an interrupted write of this image: reuse its backup and journal (default: the newest unfinished one in --backup-dir)",
    )
    .action(async (image, o, cmd) => {
      const addr = parseNumber(o.addr, "--addr");
      const data = await openImage(image);
      const resume = o.resume as string | boolean | undefined;
      try {
        await run(cmd, (s, env) => writeFlashCommand(s, env, { image, data, addr, resume }));
      } finally {
        data.close();
      }
    });

  program.command("verify-flash")
    .description("check by CRC that the flash holds an image")
    .argument("<image>", "firmware image")
    .requiredOption("--addr <n>", "flash address of the image's first byte")
    .action(async (image, o, cmd) => {
      const addr = parseNumber(o.addr, "--addr");
      const data = await openImage(image);
      try {
        await run(cmd, (s, env) => verifyFlashCommand(s, env, { image, data, addr }));
      } finally {
        data.close();
      }
    });

  program.command("erase-region")
    .description("erase a 4 KiB-aligned range (full backup first, verified blank)")
    .requiredOption("--addr <n>", "start address (multiple of 4K)")
    .requiredOption("--size <n>", "bytes (multiple of 4K)")
    .action(async (o, cmd) => {
      const args = { addr: parseNumber(o.addr, "--addr"), size: parseNumber(o.size, "--size") };
      await run(cmd, (s, env) => eraseRegionCommand(s, env, args));
    });

  program.command("spi-enter")
    .description("SPI ports: put the chip into SPI flash mode and leave it there; print the flash ID")
    .action((_o, cmd) =>
      run(cmd, (s, env) => {
        if (s.kind !== "spi") {
          throw new FlashError(
            "USAGE",
            "spi-enter needs an SPI port",
            "use --port ch341a or ch341a:virtual:<chip>",
          );
        }
        return chipInfo(s, env);
      })
    );

  program.command("read-key")
    .description("read the efuse encryption key (BootROM loaders)")
    .action((_o, cmd) => run(cmd, readKeyCommand));

  program.command("reboot")
    .description("restart the chip into its application")
    .action((_o, cmd) => run(cmd, rebootCommand));

  program.command("list-ports")
    .description("list serial ports and programmers")
    .action(() => listPortsCommand(out));

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
