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
import {
  checkNotOwnFile,
  checkWritable,
  isStdout,
  openImage,
  type OutputFile,
  readImage,
  streamOutput,
} from "../core/flasher/files.ts";
import { listPortsCommand } from "./list_ports.ts";
import { parseAtLeast, parseBaud, parseNumber, parsePositiveDuration } from "./numbers.ts";
import { BAUD_TOLERANCE, baudTable } from "../core/uart/baud.ts";
import { UART_CLOCK_HZ } from "../core/chips/loaders.ts";
import { type CliIO, exitCodeFor, Output, processIO, toFlashError } from "./output.ts";
import { parsePortSpec } from "../core/io/port_spec.ts";
import { progressView } from "./progress.ts";
import { checkFaultKinds, parseFaultPlan } from "./faults.ts";
import { startCliRecording } from "./record.ts";
import { inspectBytes, readForInspect } from "./inspect.ts";
import { restoreRfCommand } from "./restore_rf.ts";
import { obkConfigCommand } from "./obk_config.ts";

import { type Session, withSession } from "./session.ts";

/** Commander's collector for repeatable options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

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
    job: { writes: boolean } = { writes: false },
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
        lockBackupDir: job.writes ? g.backupDir : undefined,
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

  program.command("chip-info")
    .description("identify the chip: mode, bootloader, flash ID and size, key, status registers")
    .action((_o, cmd) => run(cmd, chipInfo));

  program.command("read-flash")
    .description("read flash into a file (whole chip by default)")
    .option("--addr <n>", "start address", "0")
    .option("--size <n>", "bytes to read (default: to the end of the flash)")
    .requiredOption("-o, --out <file>", "output file; - (or /dev/stdout) writes the bytes to stdout")
    .action(async (o, cmd) => {
      const args = {
        addr: parseNumber(o.addr, "--addr"),
        size: o.size === undefined ? undefined : parseNumber(o.size, "--size"),
        out: isStdout(o.out) ? "stdout" : o.out,
        sink: stdoutSink(o.out),
      };
      if (!args.sink) {
        const g = globalsOf(cmd);
        await checkNotOwnFile(o.out, { state: g.state, record: g.record, backupDir: g.backupDir });
        await checkWritable(o.out);
      }
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
    .option(
      "--restore-outside",
      "with --resume: write the backup's copy back over sectors outside the image that changed since the interruption (saved first)",
    )
    .action(async (image, o, cmd) => {
      const addr = parseNumber(o.addr, "--addr");
      const resume = o.resume as string | boolean | undefined;
      const restoreOutside = o.restoreOutside ?? false;
      if (restoreOutside && !resume) {
        throw new FlashError(
          "USAGE",
          "--restore-outside only applies to --resume",
          "add --resume to finish an interrupted write, or drop --restore-outside",
        );
      }
      const data = await openImage(image);
      try {
        await run(cmd, (s, env) => writeFlashCommand(s, env, { image, data, addr, resume, restoreOutside }), {
          writes: true,
        });
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
      await run(cmd, (s, env) => eraseRegionCommand(s, env, args), { writes: true });
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

  program.command("baud-rates")
    .description(
      "the --baud rates clients offer, the rate the chip's 26 MHz UART really makes of each, and which work",
    )
    .action(() => {
      const rows = baudTable();
      out.result(
        { uartClockHz: UART_CLOCK_HZ, tolerancePercent: BAUD_TOLERANCE * 100, rates: rows },
        [
          `chip UART clock ${UART_CLOCK_HZ / 1e6} MHz: real rate = clock / floor(clock / baud)`,
          ...rows.map((r) =>
            `${String(r.baud).padStart(8)} -> ${String(r.real).padStart(8)} (${
              r.errorPercent >= 0 ? "+" : ""
            }${r.errorPercent.toFixed(2)} %) ${
              r.works ? "works" : `garbage: refused (more than ${BAUD_TOLERANCE * 100} % off)`
            }`
          ),
        ],
      );
    });

  program.command("inspect")
    .description(
      "what a dump (or, with --port, the chip) holds: chip, bootloader, app key, Tuya config, RF/MAC",
    )
    .argument("[file]", "whole-flash dump, Tuya storage region or image (default: read the chip on --port)")
    .option("--show-secrets", "print Wi-Fi credentials and Tuya device secrets instead of masking them")
    .option("--obk-template <file>", "write an OpenBeken device template made from the Tuya pins")
    .action(async (file, o, cmd) => {
      const opts = { showSecrets: o.showSecrets ?? false, obkTemplate: o.obkTemplate };
      if (file !== undefined) {
        await inspectBytes(out, await readImage(file), { ...opts, source: file });
        return;
      }
      await run(cmd, async (s, env) => {
        const { contextFor } = await import("./commands.ts");
        const data = await readForInspect(await contextFor(s, env));
        env.progress.stop();
        await inspectBytes(out, data, { ...opts, source: s.port });
      });
    });

  program.command("restore-rf")
    .description("write the RF calibration / MAC sector from a backup of this chip, or a fresh template")
    .option("--from <backup>", "whole-flash backup of this very chip")
    .option("--template", "a fresh sector with a random MAC tail (BK7231N/M family)")
    .action((o, cmd) =>
      run(cmd, (s, env) => restoreRfCommand(s, env, { from: o.from, template: o.template ?? false }))
    );

  program.command("obk-config")
    .description("write OpenBeken's configuration sector: Wi-Fi, MQTT, name, pins (backup first, verified)")
    .option(
      "--set <key=value>",
      "a setting, e.g. wifi.ssid=lab, wifi.pass=…, mqtt.host=… (repeatable)",
      collect,
      [],
    )
    .option("--pins <template>", "pins (and start-up commands) from an OpenBeken template JSON")
    .option("--from-dump <backup>", "pins from the Tuya configuration in a backup of the device")
    .option("--name <name>", "device name (long name; the short name is derived from it)")
    .option("--config <file>", 'settings as JSON ({"wifi": {"ssid": …}} or {"wifi.ssid": …})')
    .action((o, cmd) =>
      run(cmd, (s, env) =>
        obkConfigCommand(s, env, {
          set: o.set as string[],
          pins: o.pins,
          fromDump: o.fromDump,
          name: o.name,
          config: o.config,
        }))
    );

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
