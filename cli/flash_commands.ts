/**
 * The commands of `deno task flash` (chip-info, read-flash, write-flash, …): their arguments
 * and options, checked and handed to the command bodies in `commands.ts` and its siblings.
 * The program, its global options and the session around each command are `flash.ts`'s.
 *
 * @module
 */

import type { Command } from "commander";
import { FlashError } from "../core/errors.ts";
import {
  chipInfo,
  eraseRegionCommand,
  readFlashCommand,
  readKeyCommand,
  rebootCommand,
  verifyFlashCommand,
  writeFlashCommand,
} from "./commands.ts";
import type { CommandEnv } from "./command_env.ts";
import {
  checkNotOwnFile,
  checkWritable,
  isStdout,
  openImage,
  type OutputFile,
  readImage,
} from "../core/flasher/files.ts";
import { listPortsCommand } from "./list_ports.ts";
import { parseNumber } from "./numbers.ts";
import { BAUD_TOLERANCE, baudTable } from "../core/uart/baud.ts";
import { UART_CLOCK_HZ } from "../core/chips/loaders.ts";
import type { Output } from "./output.ts";
import { inspectBytes, readForInspect } from "./inspect.ts";
import { restoreRfCommand } from "./restore_rf.ts";
import { obkConfigCommand } from "./obk_config.ts";
import type { Globals } from "./flash.ts";
import type { Session } from "./session.ts";

/** What the command definitions need from the program. */
export interface CommandWiring {
  /** Where results and notes go. */
  out: Output;
  /** Open the session the global options name, run `body` in it, close it. */
  run(
    cmd: { optsWithGlobals(): unknown },
    body: (s: Session, env: CommandEnv) => Promise<void>,
  ): Promise<void>;
  /** `--out -`: a sink writing the flash bytes to stdout, or undefined for a file. */
  stdoutSink(path: string): OutputFile | undefined;
  /** The global options as seen from a command. */
  globalsOf(cmd: { optsWithGlobals(): unknown }): Globals;
}

/** Commander's collector for repeatable options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Add every command to `program`. */
export function defineCommands(program: Command, w: CommandWiring): void {
  const { out, run, stdoutSink, globalsOf } = w;
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
        await run(cmd, (s, env) => writeFlashCommand(s, env, { image, data, addr, resume, restoreOutside }));
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
        const { contextFor } = await import("./command_env.ts");
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
}
