/**
 * `deno task hil`: the hardware-in-the-loop suite against one target, the same on the
 * emulator and on a bench board.
 *
 * ```sh
 * deno task hil --target virtual:bk7231n --json
 * deno task hil --target /dev/ttyUSB0 --chip bk7231n --destructive --junit hil.xml
 * deno task hil --target ch341a --chip bk7231n --only detect,full-backup
 * deno task hil --target spidev:/dev/spidev0.0 --cen gpiochip0:17 --chip bk7231n
 * deno task hil --target replay:fixtures/traces/bk7231n-uart.jsonl
 * ```
 *
 * Exit status: 0 when every scenario that ran passed (and a hardware run's restore
 * verified), 1 when a scenario failed, the CLI's error-family codes when the bench itself
 * failed (no chip answering: 6; bad port: 5; usage: 2).
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import { FlashError } from "../core/errors.ts";
import { openTraceFile } from "../core/io/trace_file.ts";
import type { TraceSink } from "../core/io/trace.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import { type HilTargetOptions, openBench } from "../hil/open.ts";
import { ReplayBench } from "../hil/replay_bench.ts";
import { formatMs, formatTable, toJson, toJunit } from "../hil/report.ts";
import { type HilReport, runHil } from "../hil/runner.ts";
import { SCENARIOS } from "../hil/scenarios/mod.ts";
import { DirectoryStore } from "../core/flasher/files.ts";
import { parseAtLeast, parseBaud, parseDuration, parseNumber } from "./numbers.ts";
import { type CliIO, exitCodeFor, processIO } from "./output.ts";

/** Where `main` writes, and the clock for backup names. */
export interface HilMainOptions {
  io?: CliIO;
  now?: () => Date;
  /** Replace the port registry's opener of some kinds (tests: a fake spidev). */
  openers?: HilTargetOptions["openers"];
}

interface HilFlags {
  target?: string;
  chip?: string;
  only?: string;
  json?: boolean;
  junit?: string;
  destructive?: boolean;
  powerCycleCmd?: string;
  record?: string;
  baud: string;
  linkTimeout: string;
  backupDir: string;
  seed?: string;
  cen?: string;
  spiMode: string;
  spiSpeed: string;
}

function program(io: CliIO): Command {
  return new Command()
    .name("hil")
    .description("Run the HIL scenario suite against a virtual chip, a bench board, or a recorded trace.")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s), outputError: () => {} })
    .option(
      "-t, --target <spec>",
      "virtual:<chip>, ch341a:virtual:<chip>, /dev/ttyUSB0, COM3, tcp://host:port, rfc2217://host:port, ch341a[:<n>], spidev:<dev>, replay:<trace>",
    )
    .option("-c, --chip <id>", "chip mode of the board (default for virtual targets: theirs)")
    .option("--only <ids>", `comma-separated scenarios: ${SCENARIOS.map((s) => s.id).join(", ")}`)
    .option("--json", "print one JSON object with the results on stdout")
    .option("--junit <file>", "also write JUnit XML here")
    .option("--destructive", "real hardware: run the scenarios that write or erase (backed up and restored)")
    .option("--power-cycle-cmd <cmd>", "shell command that power-cycles the board (a relay, a smart plug)")
    .option("--record <file>", "record the wire of the whole run as JSON Lines (.gz: compressed)")
    .option("-b, --baud <rate>", "working baud rate of UART connections", "921600")
    .option("--link-timeout <time>", "real hardware: give up linking after this long", "3s")
    .option("--backup-dir <dir>", "real hardware: where the safety backup goes", "hil-backups")
    .option("--seed <n>", "virtual targets: seed of the chips' randomness")
    .option("--cen <gpio>", "spidev: GPIO line wired to CEN, e.g. gpiochip0:17 (required)")
    .option("--spi-mode <0-3>", "spidev: SPI mode", "3")
    .option("--spi-speed <hz>", "spidev: SPI clock in Hz", "30000");
}

/**
 * Run the HIL CLI with `args`; resolves to the exit status.
 *
 * @example
 * ```ts
 * const code = await main(["--target", "virtual:bk7231n", "--json"]);
 * ```
 */
export async function main(args: readonly string[], opts: HilMainOptions = {}): Promise<number> {
  const io = opts.io ?? processIO();
  const json = args.includes("--json");
  const fail = (e: unknown): number => {
    const fe = e instanceof FlashError
      ? e
      : new FlashError("USAGE", e instanceof Error ? e.message : String(e), "see deno task hil --help");
    io.stderr(fe.lines().join("\n") + "\n");
    if (json) {
      io.stdout(JSON.stringify({ ok: false, code: fe.code, error: fe.message, remedy: fe.remedy }) + "\n");
    }
    return exitCodeFor(fe.code);
  };
  let flags: HilFlags;
  try {
    const cmd = program(io);
    cmd.parse([...args], { from: "user" });
    flags = cmd.opts() as HilFlags;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      return fail(new FlashError("USAGE", e.message.replace(/^error:\s*/i, ""), "see deno task hil --help"));
    }
    return fail(e);
  }

  let sink: TraceSink | undefined;
  let report: HilReport;
  try {
    if (!flags.target) {
      throw new FlashError(
        "USAGE",
        "no --target given",
        "pass --target virtual:<chip> or a port; see --help",
      );
    }
    const only = flags.only?.split(",").map((s) => s.trim()).filter(Boolean);
    if (flags.record) sink = await openTraceFile(flags.record);
    const target: HilTargetOptions = {
      target: flags.target,
      chip: flags.chip,
      baud: parseBaud(flags.baud),
      linkTimeoutMs: parseDuration(flags.linkTimeout, "--link-timeout"),
      powerCycleCmd: flags.powerCycleCmd,
      seed: flags.seed === undefined ? undefined : parseNumber(flags.seed, "--seed"),
      only,
      destructive: flags.destructive ?? false,
      record: sink,
      spidev: {
        cen: flags.cen,
        mode: parseAtLeast(flags.spiMode, 0, "--spi-mode", 3),
        speedHz: parseAtLeast(flags.spiSpeed, 1, "--spi-speed"),
      },
      openers: opts.openers,
    };
    const opened = await openBench(target);
    try {
      report = await runHil(opened.bench, {
        profile: opened.profile,
        only: opened.only ?? only,
        destructive: opened.destructive ?? target.destructive,
        store: opened.bench.kind === "hardware" && !(opened.bench instanceof ReplayBench)
          ? new DirectoryStore(flags.backupDir)
          : new MemoryStore(),
        now: opts.now,
        onResult: (r) => {
          io.stderr(`${r.id}: ${r.status}${r.ms === null ? "" : ` (${formatMs(r.ms)})`}\n`);
        },
      });
      opened.bench.verify?.();
      if (!report.error && opened.bench.failure) {
        const f = opened.bench.failure;
        report.error = { code: "REPLAY_DIVERGED", message: f.message, remedy: "see the diff above" };
      }
    } finally {
      await opened.writer?.close();
      await opened.close().catch(() => {});
    }
  } catch (e) {
    await sink?.close().catch(() => {});
    return fail(e);
  }

  if (flags.junit) {
    try {
      await Deno.writeTextFile(flags.junit, toJunit(report, opts.now?.() ?? new Date()));
    } catch (e) {
      return fail(
        new FlashError(
          "USAGE",
          `cannot write ${flags.junit}: ${(e as Error).message}`,
          "pass --junit a writable path",
        ),
      );
    }
  }
  if (json) io.stdout(JSON.stringify(toJson(report)) + "\n");
  else io.stdout(formatTable(report) + "\n");
  if (report.error) {
    io.stderr(`error: ${report.error.message}\nremedy: ${report.error.remedy}\n`);
    const code = report.error.code;
    return code in EXIT_BY_CODE ? EXIT_BY_CODE[code] : exitCodeFor(code as FlashError["code"]);
  }
  return report.failed > 0 ? 1 : 0;
}

/** Exit statuses of run-level failures that are not flash error codes. */
const EXIT_BY_CODE: Record<string, number> = { REPLAY_DIVERGED: 1, RESTORE_FAILED: 10, INTERNAL: 1 };

if (import.meta.main) Deno.exit(await main(Deno.args));
