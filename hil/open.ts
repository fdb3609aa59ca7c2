/**
 * From `--target` to a bench: the CLI's port specs (`virtual:<chip>`, a tty path,
 * `tcp://host:port`, `rfc2217://host:port`, `ch341a[:<n>]`, `ch341a:virtual:<chip>`,
 * `spidev:/dev/spidevX.Y`), opened through the port registry (`core/io/registry.ts`), plus
 * `replay:<trace>`, which plays a recorded run back. Opening a real port only opens it;
 * whether a chip answers is the runner's first question.
 *
 * @module
 */

import { type ChipProfile, requireChip } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import { parseTrace, TraceFormatError, type TraceSink, TraceWriter } from "../core/io/trace.ts";
import { readTraceFile } from "../core/io/trace_file.ts";
import { isVirtualPort, parsePortSpec } from "../core/io/port_spec.ts";
import { openPort, portKind, type PortOpenOptions, type SpidevSettings } from "../core/io/registry.ts";
import type { Bench } from "./bench.ts";
import { HardwareBench, type HardwarePort } from "./hardware_bench.ts";
import { type RecordedRun, ReplayBench } from "./replay_bench.ts";
import { VirtualBench } from "./virtual_bench.ts";

/** What a HIL run is asked to do. */
export interface HilTargetOptions {
  /** `--target` as typed. */
  target: string;
  /** `--chip` as typed (optional for virtual targets and replays). */
  chip?: string;
  /** Working baud rate of UART connections. */
  baud: number;
  /** Link-check give-up time on real ports (ms). */
  linkTimeoutMs: number;
  powerCycleCmd?: string;
  /** Notices from the port (an RFC 2217 server without modem control); default: stderr. */
  onNotice?: (line: string) => void;
  /** Seed of virtual chips. */
  seed?: number;
  /** Scenario ids (recorded into a trace, taken from one on replay). */
  only?: string[];
  destructive?: boolean;
  /** Record the wire into this sink. */
  record?: TraceSink;
  /** Time written into the trace header (default: now). */
  createdAt?: string;
  /** spidev targets: SPI mode, clock and the GPIO line on CEN (`--cen`, required: entry pulses it). */
  spidev?: Omit<SpidevSettings, "cenRequired">;
  /** Replace the registry's opener of some port kinds (tests: a fake spidev). */
  openers?: PortOpenOptions["openers"];
}

/** An opened bench and what it runs. */
export interface OpenedBench {
  bench: Bench;
  profile: ChipProfile;
  /** The recorder, when recording; close it after the run. */
  writer: TraceWriter | null;
  /** The options a replay re-runs with (the recorded ones). */
  only?: string[];
  destructive?: boolean;
  /** Release the port. */
  close(): Promise<void>;
}

const REPLAY = "replay:";

const profileFor = (chip: string): ChipProfile => requireChip(chip);

/**
 * Open `opts.target` as a bench.
 *
 * @example
 * ```ts
 * const { bench, profile } = await openBench({ target: "virtual:bk7231n", baud: 921600, linkTimeoutMs: 3000 });
 * ```
 */
export async function openBench(opts: HilTargetOptions): Promise<OpenedBench> {
  if (opts.target.toLowerCase().startsWith(REPLAY)) return await openReplay(opts);
  const spec = parsePortSpec(opts.target);
  if (spec.kind === "auto") {
    throw new FlashError(
      "USAGE",
      "no --target given",
      "pass --target virtual:<chip>, a serial port (/dev/ttyUSB0), tcp://host:port, rfc2217://host:port, ch341a or replay:<trace.jsonl>",
    );
  }
  const row = portKind(spec);
  if (isVirtualPort(spec)) {
    const profile = profileFor(opts.chip ?? spec.chip);
    if (profile.id !== spec.chip) {
      throw new FlashError(
        "USAGE",
        `${opts.target} is a ${spec.chip} but --chip says ${profile.id}`,
        `drop --chip, or use --target ${spec.kind === "virtual" ? "" : "ch341a:"}virtual:${profile.id}`,
      );
    }
    const path = row.bus;
    const writer = recorder(
      opts,
      { target: opts.target, chip: profile.id, path, bench: "virtual" },
      "virtual",
    );
    const bench = new VirtualBench({
      profile,
      path,
      baud: opts.baud,
      seed: opts.seed,
      record: writer ?? undefined,
    });
    return { bench, profile, writer, close: () => bench.close() };
  }
  if (!opts.chip) {
    throw new FlashError(
      "USAGE",
      `--chip is required for ${opts.target}`,
      "pass the chip mode of the board under test, e.g. --chip bk7231n",
    );
  }
  const profile = profileFor(opts.chip);
  if (opts.record && spec.kind === "spidev") {
    throw new FlashError(
      "UNSUPPORTED",
      `${opts.target}: --record cannot record an spidev port (only UART bytes and CH341A USB transfers)`,
      "drop --record, or record through a CH341A or a serial port",
    );
  }
  const opened = await openPort(spec, {
    text: opts.target,
    onNotice: opts.onNotice ?? ((line) => console.error(`warning: ${line}`)),
    // the runner connects over Beken SPI-mode entry, which pulses CEN
    spidev: { ...opts.spidev, cenRequired: true },
    openers: opts.openers,
  });
  if (opened.bus === "spi" && opened.via === "master") {
    // masters open per connection; open one now so a missing device or GPIO line fails here,
    // as a missing serial port or CH341A does, not in the first scenario
    await (await opened.open()).close();
  }
  const port: HardwarePort = opened.bus === "uart"
    ? { link: opened.link }
    : opened.via === "usb"
    ? { device: opened.device, name: opened.name, clock: opened.clock }
    : { master: () => opened.open(), name: opened.name };
  const path = row.bus;
  const power = opts.powerCycleCmd
    ? { power: "command", powerDescription: `command: ${opts.powerCycleCmd}` }
    : "link" in port
    ? (port.link.hasModemLines ? { power: "rts" } : { power: null })
    : { power: row.power };
  const writer = recorder(
    opts,
    { target: opts.target, chip: profile.id, path, bench: "hardware", ...power },
    "real",
  );
  const bench = new HardwareBench(port, {
    target: opts.target,
    profile,
    baud: opts.baud,
    linkTimeoutMs: opts.linkTimeoutMs,
    powerCycleCmd: opts.powerCycleCmd,
    record: writer ?? undefined,
    cen: opts.spidev?.cen,
  });
  return { bench, profile, writer, close: () => bench.close() };
}

function recorder(
  opts: HilTargetOptions,
  run: Partial<RecordedRun>,
  clock: "virtual" | "real",
): TraceWriter | null {
  if (!opts.record) return null;
  const full: RecordedRun = {
    tool: "hil",
    target: opts.target,
    chip: run.chip!,
    path: run.path!,
    bench: run.bench!,
    power: run.power ?? (run.bench === "virtual" ? "virtual" : null),
    ...(run.powerDescription ? { powerDescription: run.powerDescription } : {}),
    ...(opts.only ? { only: opts.only } : {}),
    destructive: opts.destructive ?? false,
    baud: opts.baud,
    linkTimeoutMs: run.bench === "virtual" ? 20_000 : opts.linkTimeoutMs,
  };
  return new TraceWriter(opts.record, { clock, run: { ...full }, createdAt: opts.createdAt });
}

async function openReplay(opts: HilTargetOptions): Promise<OpenedBench> {
  const file = opts.target.slice(REPLAY.length);
  let trace;
  try {
    trace = parseTrace(await readTraceFile(file));
  } catch (e) {
    if (e instanceof TraceFormatError) {
      throw new FlashError("USAGE", `${file}: ${e.message}`, "pass a trace written by --record");
    }
    throw e;
  }
  const run = trace.header.run as RecordedRun | undefined;
  if (!run || run.tool !== "hil") {
    throw new FlashError(
      "USAGE",
      `${file} was not recorded by a HIL run`,
      "replay traces of deno task hil --record here; CLI traces replay in deno test",
    );
  }
  const profile = profileFor(run.chip);
  if (opts.chip && profileFor(opts.chip).id !== profile.id) {
    throw new FlashError("USAGE", `${file} was recorded with --chip ${run.chip}`, "drop --chip for a replay");
  }
  const bench = new ReplayBench(trace, run, profile, file);
  return {
    bench,
    profile,
    writer: null,
    only: run.only,
    destructive: run.destructive,
    close: () => bench.close(),
  };
}
