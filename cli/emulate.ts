/**
 * `deno task emulate`: serve one emulated chip until stopped, on a pseudo-terminal (`--pty`),
 * a loopback TCP port (`--tcp 127.0.0.1:0`) or a loopback RFC 2217 port (`--rfc2217 127.0.0.1:0`),
 * optionally with a control socket (`--control <path>`) for resets and modem lines. The first line on stdout is exactly the
 * address to give a flasher (`/dev/pts/5` or `tcp://127.0.0.1:40123`); everything else goes
 * to stderr.
 *
 * @example
 * ```sh
 * deno task emulate --chip bk7231n --pty            # prints /dev/pts/5
 * deno task flash --port /dev/pts/5 --baud 2000000 chip-info --json
 * ```
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { chipById, CHIPS } from "../core/chips/profiles.ts";
import { type HeldLock, lockPath } from "../core/io/lock.ts";
import { FlashError } from "../core/errors.ts";
import { type EmulatorServer, type Pace, parseListenAddress, servePty, serveTcp } from "../emulator/serve.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { type ControlServer, serveControl } from "../emulator/control.ts";
import { RESET_LINES, type ResetLine } from "../emulator/reset_wiring.ts";
import { serveRfc2217 } from "../emulator/rfc2217_server.ts";
import { readImage } from "../core/flasher/files.ts";
import { parseNumber } from "./numbers.ts";
import { type CliIO, exitCodeFor, processIO } from "./output.ts";

/** How {@link main} is run: the process's streams and signals, or a test's. */
export interface EmulateOptions {
  /** Where output goes (default: the process's stdout and stderr). */
  io?: CliIO;
  /** Resolves when serving should stop (default: SIGINT or SIGTERM). */
  stop?: Promise<void>;
}

interface Flags {
  chip: string;
  pty?: boolean;
  tcp?: string;
  rfc2217?: string;
  control?: string;
  resetLine: ResetLine;
  pace: Pace;
  state?: string;
  image?: string;
  key?: string;
  flashId?: string;
  protect?: string;
  seed?: string;
  verbose?: boolean;
}

/** Parse `--key`: four 32-bit words, hex, separated by spaces, commas or colons. */
export function parseKeyWords(text: string): number[] {
  const words = text.trim().split(/[\s,:]+/).map((w) => w.replace(/^0x/i, ""));
  if (words.length !== 4 || !words.every((w) => /^[0-9a-f]{1,8}$/i.test(w))) {
    throw new FlashError(
      "USAGE",
      `--key "${text}" is not four hex words`,
      'write it as chip-info prints it, e.g. --key "510fb093 a3cbeadc 5993a17e c7adeb03"',
    );
  }
  return words.map((w) => parseInt(w, 16) >>> 0);
}

/** Parse `--flash-id`: three JEDEC ID bytes in wire order (`EB6015`, `eb 60 15`, `0xEB6015`). */
export function parseFlashId(text: string): number[] {
  const hex = text.trim().replace(/^0x/i, "").replace(/[\s:,-]/g, "");
  if (!/^[0-9a-f]{6}$/i.test(hex)) {
    throw new FlashError(
      "USAGE",
      `--flash-id "${text}" is not three hex bytes`,
      "write it as --flash-id EB6015",
    );
  }
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/** One line of `-v` output per command: time, name, request and reply bytes (abridged). */
export function formatCommand(
  name: string,
  request: Uint8Array | null,
  reply: Uint8Array | null,
  at: number,
): string {
  const bytes = (b: Uint8Array | null) => {
    if (!b) return "-";
    const shown = [...b.subarray(0, 24)].map((x) => x.toString(16).padStart(2, "0")).join(" ");
    return b.length > 24 ? `${shown} … (${b.length} bytes)` : shown || "(empty)";
  };
  return `[${(at / 1000).toFixed(3)} s] ${name}: request ${bytes(request)} | reply ${bytes(reply)}`;
}

/**
 * Run `deno task emulate` with `args`; resolves to the exit status once serving stops.
 */
export async function main(args: readonly string[], options: EmulateOptions = {}): Promise<number> {
  const io = options.io ?? processIO();
  const err = (line: string) => io.stderr(`${line}\n`);
  const program = new Command()
    .name("emulate")
    .description("Serve one emulated Beken chip on a pseudo-terminal or a loopback TCP port until stopped.")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s), outputError: () => {} })
    .option("--chip <name>", `chip to emulate (${CHIPS.map((c) => c.id).join(", ")})`, "bk7231n")
    .option("--pty", "serve on a new pseudo-terminal; prints its path (Linux)")
    .option("--tcp <host:port>", "serve on a loopback TCP port (port 0 picks one); prints tcp://host:port")
    .option(
      "--rfc2217 <host:port>",
      "serve an RFC 2217 port on loopback (port 0 picks one); prints rfc2217://host:port",
    )
    .option(
      "--control <socket>",
      'also take JSON lines on this Unix socket: {"dtr":false,"rts":true}, {"reset":true}',
    )
    .addOption(
      new Option("--reset-line <line>", "modem line wired to the chip's CEN (reset)")
        .choices(RESET_LINES)
        .default("rts" as ResetLine),
    )
    .addOption(
      new Option("--pace <mode>", "wire: real timing at the line rate; none: replies at once")
        .choices(["wire", "none"] as const)
        .default("wire" as const),
    )
    .option("--state <file>", "keep the chip's flash, status registers and efuse in this file")
    .option("--image <file>", "preload flash with this image (a new chip only)")
    .option("--key <words>", "efuse key as four hex words")
    .option("--flash-id <hex>", "JEDEC ID of the flash part, e.g. EB6015")
    .option("--protect <sr>", "start with this status-register word (SR1 | SR2 << 8), e.g. 0x4004")
    .option("--seed <n>", "seed of the chip's randomness")
    .option("-v, --verbose", "log each decoded command and reply to stderr");
  let flags: Flags;
  try {
    program.parse([...args], { from: "user" });
    flags = program.opts() as Flags;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      return report(
        io,
        new FlashError("USAGE", e.message.replace(/^error:\s*/i, ""), "see `deno task emulate --help`"),
      );
    }
    return report(io, e);
  }

  let server: EmulatorServer | undefined;
  let control: ControlServer | undefined;
  let save: (() => Promise<void>) | undefined;
  let lock: HeldLock | undefined;
  try {
    if ([flags.pty, flags.tcp, flags.rfc2217].filter(Boolean).length !== 1) {
      throw new FlashError(
        "USAGE",
        "choose where to serve: one of --pty, --tcp or --rfc2217",
        "e.g. --pty, --tcp 127.0.0.1:0 or --rfc2217 127.0.0.1:0",
      );
    }
    const listen = flags.tcp ? parseListenAddress(flags.tcp) : undefined;
    const listenRfc2217 = flags.rfc2217 ? parseListenAddress(flags.rfc2217) : undefined;
    const profile = chipById(flags.chip);
    if (!profile) {
      throw new FlashError(
        "USAGE",
        `unknown chip "${flags.chip}"`,
        `use one of: ${CHIPS.map((c) => c.id).join(", ")}`,
      );
    }
    // a flash command on the same state file would write over the served chip's saves
    if (flags.state) lock = await lockPath(flags.state, { directory: false });
    const virtual = await createVirtualChip({
      chip: profile.id,
      state: flags.state,
      image: flags.image ? await readImage(flags.image) : undefined,
      key: flags.key ? parseKeyWords(flags.key) : undefined,
      flashId: flags.flashId ? parseFlashId(flags.flashId) : undefined,
      protect: flags.protect ? parseNumber(flags.protect, "--protect") : undefined,
      seed: flags.seed ? parseNumber(flags.seed, "--seed") : undefined,
      chipFlag: (id) => `--chip ${id}`,
    });
    // one save at a time: the state file is replaced through a shared temporary name
    let saving = Promise.resolve();
    save = () => (saving = saving.catch(() => {}).then(() => virtual.save()));
    if (flags.verbose) {
      virtual.chip.onCommand = (name, request, reply, at) => err(formatCommand(name, request, reply, at));
    }
    const serveOptions = {
      pace: flags.pace,
      log: (line: string) => err(`[${((server?.now() ?? 0) / 1000).toFixed(3)} s] ${line}`),
      onDisconnect: () => {
        save?.().catch((e) => err(`warning: could not save ${flags.state}: ${(e as Error).message}`));
      },
    };
    server = listenRfc2217
      ? serveRfc2217(virtual.chip, listenRfc2217, { ...serveOptions, resetLine: flags.resetLine })
      : listen
      ? serveTcp(virtual.chip, listen, serveOptions)
      : servePty(virtual.chip, serveOptions);
    if (flags.control) {
      const running = server;
      control = await serveControl(flags.control, {
        device: virtual.chip,
        now: () => running.now(),
        resetLine: flags.resetLine,
        log: serveOptions.log,
      });
    }
    io.stdout(`${server.address}\n`);
    err(
      `emulating ${profile.name} (${profile.id}) on ${server.address}, pace ${flags.pace}; ` +
        "the chip resets when a client opens the port. Stop with Ctrl-C.",
    );
    if (listenRfc2217 || control) {
      err(
        `${flags.resetLine === "none" ? "no modem line" : flags.resetLine.toUpperCase()} drives CEN` +
          (control ? `; control socket ${control.path}` : ""),
      );
    }
    await Promise.race([options.stop ?? stopSignal(), server.done]);
    await control?.close();
    await server.close();
    await save();
    return 0;
  } catch (e) {
    await control?.close();
    await server?.close();
    await save?.().catch(() => {});
    return report(io, e);
  } finally {
    lock?.release();
  }
}

function report(io: CliIO, e: unknown): number {
  if (e instanceof FlashError) {
    for (const line of e.lines()) io.stderr(`${line}\n`);
    return exitCodeFor(e.code);
  }
  io.stderr(`error: ${(e as Error)?.stack ?? e}\n`);
  return 1;
}

/** Resolves on the first SIGINT or SIGTERM, and stops listening for them. */
function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const handler = () => {
      for (const s of signals) Deno.removeSignalListener(s, handler);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, handler);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
