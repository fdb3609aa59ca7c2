/**
 * The replay bench: a recorded HIL run played back. It behaves like the bench that was
 * recorded (a fresh chip per scenario on a virtual recording, one chip on a hardware one),
 * but every link is a {@link ReplayLink} or {@link ReplayUsbDevice} over the trace, so the
 * runner re-runs the same scenarios through today's core and the first byte the core sends
 * differently becomes the bench's {@link Bench.failure}, a readable diff.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { type Clock, VirtualClock } from "../core/clock.ts";
import type { ByteLink } from "../core/io/link.ts";
import { TraceDivergenceError } from "../core/trace/replay.ts";
import { ReplayLink } from "../core/trace/replay_link.ts";
import { ReplayUsbDevice } from "../core/trace/replay_usb.ts";
import type { Trace, TraceLink } from "../core/io/trace.ts";
import {
  type Bench,
  ch341aOpener,
  checkPath,
  type ConnectDefaults,
  type Connection,
  type ConnectOptions,
  connectSpi,
  connectUart,
  type PathKind,
  type VirtualSetup,
} from "./bench.ts";
import { BaudCeilingLink } from "./links.ts";
import { ch341aPower, type PowerControl, rtsPower } from "./power.ts";

/** What a recorded HIL run was, as its trace header's `run` says. */
export interface RecordedRun {
  tool: "hil";
  target: string;
  chip: string;
  path: PathKind;
  bench: "virtual" | "hardware";
  /** Power control kind used, or null. */
  power: string | null;
  powerDescription?: string;
  only?: string[];
  destructive?: boolean;
  baud: number;
  linkTimeoutMs: number;
}

interface Links {
  uart: ReplayLink | null;
  usb: ReplayUsbDevice | null;
  clock: VirtualClock;
  link: ByteLink | null;
}

/** Plays a recorded run back. */
export class ReplayBench implements Bench {
  readonly kind: "virtual" | "hardware";
  readonly target: string;
  readonly path: PathKind;
  readonly paths: readonly PathKind[];
  readonly virtualSetups: boolean;
  readonly timeKind: "modelled" | "real";
  readonly power: PowerControl | null;
  readonly #trace: Trace;
  readonly #defaults: ConnectDefaults;
  readonly #byOrder: boolean;
  #used = new Set<number>();
  #current: Links | null = null;
  #all: (ReplayLink | ReplayUsbDevice)[] = [];
  #failure: Error | null = null;

  constructor(trace: Trace, run: RecordedRun, profile: ChipProfile, file: string) {
    this.#trace = trace;
    this.kind = run.bench;
    this.target = `replay:${file}`;
    this.path = run.path;
    this.paths = run.bench === "virtual" ? ["uart", "spi"] : [run.path];
    this.virtualSetups = run.bench === "virtual";
    this.timeKind = trace.header.clock === "virtual" ? "modelled" : "real";
    this.#byOrder = trace.header.clock === "real";
    this.#defaults = { profile, baud: run.baud, linkTimeoutMs: run.linkTimeoutMs };
    this.power = run.power === null ? null : {
      kind: run.power,
      description: `replayed: ${run.powerDescription ?? run.power}`,
      cycle: () => this.#powerCycle(run.power!),
    };
  }

  /** The first divergence any replayed link hit, or the core stopping early. */
  get failure(): Error | null {
    return this.#failure;
  }

  get clock(): Clock {
    return this.#links().clock;
  }

  begin(id: string, setup: VirtualSetup = {}): Promise<void> {
    if (this.kind === "hardware" && this.#current) return Promise.resolve();
    const label = this.kind === "hardware" ? "bench" : id;
    const clock = new VirtualClock();
    const uart = this.#take(label, "uart");
    const usb = this.#take(label, "usb");
    const links: Links = {
      clock,
      uart: uart ? new ReplayLink(uart, { clock: this.#trace.header.clock, virtualClock: clock }) : null,
      usb: usb ? new ReplayUsbDevice(usb, { clock: this.#trace.header.clock, virtualClock: clock }) : null,
      link: null,
    };
    if (links.uart) links.link = setup.maxBaud ? new BaudCeilingLink(links.uart, setup.maxBaud) : links.uart;
    this.#all.push(...[links.uart, links.usb].filter((l) => l !== null));
    this.#current = links;
    return Promise.resolve();
  }

  connect(opts: ConnectOptions = {}): Promise<Connection> {
    const path = opts.path ?? this.path;
    checkPath(this, path);
    const cur = this.#links();
    if (path === "uart") {
      if (!cur.link) return Promise.reject(this.#missing("UART"));
      return connectUart(cur.link, this.#defaults, opts);
    }
    if (!cur.usb) return Promise.reject(this.#missing("USB"));
    return connectSpi(ch341aOpener(cur.usb, cur.clock, this.target), cur.clock, this.#defaults);
  }

  end(): Promise<void> {
    if (this.kind === "virtual") this.#check(true);
    return Promise.resolve();
  }

  verify(): void {
    this.#check(true);
    const left = this.#trace.links.filter((l) => !this.#used.has(l.id));
    if (left.length && !this.#failure) {
      const l = left[0];
      this.#failure = new TraceDivergenceError(
        `trace replay diverged: the run ended, but the recording has ${left.length} more link(s), first ` +
          `"${l.name}"${l.label ? ` (${l.label})` : ""}: a scenario the core no longer runs`,
        l.events[0]?.line ?? 0,
        null,
      );
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #links(): Links {
    if (!this.#current) throw new Error("ReplayBench: begin() a scenario first");
    return this.#current;
  }

  #take(label: string, kind: "uart" | "usb"): TraceLink | undefined {
    const l = this.#trace.links.find((x) =>
      !this.#used.has(x.id) && x.kind === kind && (x.label ?? "") === label
    );
    if (l) this.#used.add(l.id);
    return l;
  }

  #missing(kind: string): TraceDivergenceError {
    const e = new TraceDivergenceError(
      `trace replay diverged: the core opened a ${kind} link that the recording does not have`,
      0,
      null,
    );
    this.#failure ??= e;
    return e;
  }

  /** Pick up a divergence of the scenario's links; at the end, also actions never made. */
  #check(consumed: boolean): void {
    for (const l of this.#all) {
      if (this.#failure) return;
      if (l.divergence) this.#failure = l.divergence;
      else if (consumed) {
        try {
          l.assertConsumed();
        } catch (e) {
          this.#failure = e as Error;
        }
      }
    }
    if (this.kind === "virtual") this.#all = [];
  }

  #powerCycle(kind: string): Promise<void> {
    const cur = this.#links();
    if (kind === "command") return cur.clock.sleep(50);
    if (this.path === "uart" && cur.link) return rtsPower(cur.link).cycle();
    if (cur.usb) return ch341aPower(this.target, ch341aOpener(cur.usb, cur.clock, this.target)).cycle();
    return Promise.reject(this.#missing(this.path === "uart" ? "UART" : "USB"));
  }
}
