/**
 * Replaying a recorded trace: a {@link ByteLink} (and a CH341A {@link UsbDeviceLike}) whose far
 * end is the trace instead of a chip. It answers the core's reads with the recorded replies
 * and checks that every byte, baud change and modem-line change the core makes is the one
 * recorded. The first difference throws a {@link TraceDivergenceError} with a hex diff and the
 * command decoded through the boot-protocol table; the replay then stays failed.
 *
 * Matching is by content and order, not by chunking: the core may write a recorded frame in
 * several pieces or several frames at once. Time follows the trace: the replay runs on its own
 * virtual clock, moved to each recorded event's time as the event is consumed. A read returns
 * the next recorded chunk when it arrived within the read's timeout (on real-clock traces:
 * whenever it is next, since the host's own timing jitters) and times out otherwise.
 *
 * @example
 * ```ts
 * const trace = parseTrace(await Deno.readTextFile("bk7231n.jsonl"));
 * const link = new ReplayLink(trace.links[0], { clock: trace.header.clock });
 * const { identity } = await openUartTarget(link, { chip: chipById("bk7231n") });
 * link.assertConsumed(); // throws when the core stopped before the recording did
 * ```
 *
 * @module
 */

import { type Clock, VirtualClock } from "../clock.ts";
import { decodeFields } from "../uart/codec.ts";
import { commandByKey } from "../uart/table.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "./link.ts";
import type { TraceEvent, TraceLink } from "./trace.ts";
import type { UsbDeviceLike, UsbInResult, UsbOutResult } from "./usb.ts";

/** The core did something other than what the trace recorded. */
export class TraceDivergenceError extends Error {
  /** Trace line of the recorded event that was expected (0 past the end of the trace). */
  readonly line: number;
  /** Byte offset in the link's host-to-device stream where the difference is, when it is a byte. */
  readonly offset: number | null;
  constructor(message: string, line: number, offset: number | null) {
    super(message);
    this.name = "TraceDivergenceError";
    this.line = line;
    this.offset = offset;
  }
}

/** Options of a replay. */
export interface ReplayOptions {
  /** The trace header's clock; "real" matches reads by order rather than by time. */
  clock?: "virtual" | "real";
  /** Clock to run on (default: a fresh virtual clock starting at 0). */
  virtualClock?: VirtualClock;
}

const hx = (n: number) => n.toString(16).padStart(2, "0");

/**
 * One-line description of a host request frame: the command name from the table and its
 * fields (`FlashRead4K addr=0x12000`), the text for ASCII (`text "reboot\r\n"`), or "bytes".
 */
export function describeRequest(frame: Uint8Array): string {
  if (frame.length >= 5 && frame[0] === 0x01 && frame[1] === 0xe0 && frame[2] === 0xfc) {
    const long = frame[3] === 0xff;
    if (long && frame.length < 8) return "long frame (truncated)";
    const code = long ? frame[7] : frame[4];
    const len = long ? frame[5] | (frame[6] << 8) : frame[3];
    const payload = frame.subarray(long ? 8 : 5, (long ? 7 : 4) + len);
    const spec = commandByKey(long ? "long" : "short", code);
    if (!spec) return `unknown ${long ? "long" : "short"} command 0x${hx(code)}`;
    const v = decodeFields(spec.request, payload);
    if (!v) return `${spec.name} (payload of ${payload.length} bytes does not fit its layout)`;
    const fields = Object.entries(v).map(([k, x]) =>
      typeof x === "number"
        ? `${k}=0x${x.toString(16)}`
        : `${k}=${x.length <= 4 ? [...x].map(hx).join("") : `<${x.length} bytes>`}`
    );
    return [spec.name, ...fields].join(" ");
  }
  if (frame.length > 0 && frame.every((b) => b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) {
    return `text ${JSON.stringify(new TextDecoder().decode(frame))}`;
  }
  return `${frame.length} bytes`;
}

/** Index of the last `01 E0 FC` preamble that starts at or before `at`, or -1. */
function frameStart(bytes: Uint8Array, at: number): number {
  for (let i = Math.min(at, bytes.length - 3); i >= 0; i--) {
    if (bytes[i] === 0x01 && bytes[i + 1] === 0xe0 && bytes[i + 2] === 0xfc) return i;
  }
  return -1;
}

/** Rows of 16 bytes of `bytes` around `at` (the row before and the row holding it), `at` in brackets. */
export function hexRows(label: string, bytes: Uint8Array, at: number, width = label.length): string[] {
  const first = Math.max(0, Math.floor(at / 16) * 16 - 16);
  const out: string[] = [];
  for (let r = first; r <= at; r += 16) {
    const cells: string[] = [];
    for (let i = r; i < Math.min(r + 16, bytes.length); i++) {
      cells.push(i === at ? `[${hx(bytes[i])}]` : hx(bytes[i]));
    }
    if (at >= bytes.length && r + 16 > at) cells.push("[--]");
    out.push(`  ${label.padEnd(width)}  +${r.toString(16).padStart(4, "0")}  ${cells.join(" ")}`);
  }
  return out;
}

/**
 * The rows of {@link hexRows} for two byte strings that differ at `at`, interleaved so each
 * recorded row sits above the matching row of the other side.
 *
 * @example
 * ```ts
 * hexDiff(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 9, 3), 1, ["recorded", "core"]);
 * // ["  recorded  +0000  01 [02] 03", "  core      +0000  01 [09] 03"]
 * ```
 */
export function hexDiff(a: Uint8Array, b: Uint8Array, at: number, labels: [string, string]): string[] {
  const width = Math.max(labels[0].length, labels[1].length);
  const ra = hexRows(labels[0], a, at, width);
  const rb = hexRows(labels[1], b, at, width);
  return ra.flatMap((row, i) => [row, rb[i]]);
}

function describeEvent(e: TraceEvent | undefined): string {
  if (!e) return "the end of the recording";
  switch (e.kind) {
    case "tx":
      return `a write of ${describeRequest(e.data)} (line ${e.line})`;
    case "rx":
      return `a reply of ${e.data.length} bytes (line ${e.line})`;
    case "baud":
      return `a baud change to ${e.baud} (line ${e.line})`;
    case "signals":
      return `modem lines ${signalText(e)} (line ${e.line})`;
    case "usb-out":
      return `a USB OUT of ${e.data.length} bytes on endpoint ${e.ep} (line ${e.line})`;
    case "usb-in":
      return `a USB IN of ${e.length} bytes on endpoint ${e.ep} (line ${e.line})`;
    default:
      return `${e.kind} (line ${e.line})`;
  }
}

function signalText(s: ModemSignals): string {
  const parts: string[] = [];
  if (s.dtr !== undefined) parts.push(`DTR=${s.dtr ? 1 : 0}`);
  if (s.rts !== undefined) parts.push(`RTS=${s.rts ? 1 : 0}`);
  return parts.join(" ") || "(none)";
}

const INFORMATIONAL = new Set(["flush", "drain", "close", "usb"]);

/** A ByteLink answering from one recorded UART link. */
export class ReplayLink implements ByteLink {
  readonly name: string;
  readonly clock: VirtualClock;
  readonly hasModemLines: boolean;
  readonly #events: TraceEvent[];
  readonly #byOrder: boolean;
  readonly #label: string;
  #baud: number;
  #i = 0;
  /** Bytes of `#events[#i]` (a tx or rx) already consumed. */
  #within = 0;
  #inbox: Uint8Array[] = [];
  /** Host-to-device bytes matched so far, for offsets and frame context. */
  #sent: number[] = [];
  #failure: TraceDivergenceError | null = null;
  #closed = false;

  constructor(link: TraceLink, options: ReplayOptions = {}) {
    if (link.kind !== "uart") throw new TypeError(`trace link ${link.id} is a ${link.kind} link, not uart`);
    this.name = link.name;
    this.clock = options.virtualClock ?? new VirtualClock();
    this.hasModemLines = link.modemLines ?? false;
    this.#baud = link.baud ?? 115200;
    this.#events = link.events;
    this.#byOrder = options.clock === "real";
    this.#label = `link ${link.id} "${link.name}"${link.label ? ` (${link.label})` : ""}`;
  }

  get baud(): number {
    return this.#baud;
  }

  /** The divergence that failed this replay, if any. */
  get divergence(): TraceDivergenceError | null {
    return this.#failure;
  }

  write(data: Uint8Array): Promise<void> {
    try {
      this.#live();
      for (let k = 0; k < data.length; k++) {
        const e = this.#nextHostEvent();
        if (!e || e.kind !== "tx") {
          this.#fail(
            `the core wrote ${describeRequest(this.#coreFrame(data, k))} where the recording has ${
              describeEvent(e)
            }`,
            e?.line ?? 0,
            this.#sent.length,
            this.#coreFrameLines(data, k),
          );
        }
        if (this.#within === 0) this.clock.advanceTo(e.t);
        if (e.data[this.#within] !== data[k]) this.#byteMismatch(e, data, k);
        this.#sent.push(data[k]);
        if (++this.#within === e.data.length) this.#advance();
      }
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  read(max: number, timeoutMs: number): Promise<Uint8Array> {
    try {
      this.#live();
      if (this.#inbox.length) return Promise.resolve(this.#fromInbox(max));
      this.#skipInformational();
      const e = this.#events[this.#i];
      const deadline = this.clock.now() + timeoutMs;
      if (e?.kind === "rx" && (this.#byOrder || e.t <= deadline)) {
        this.clock.advanceTo(e.t);
        const take = Math.min(max, e.data.length - this.#within);
        const out = e.data.slice(this.#within, this.#within + take);
        this.#within += take;
        if (this.#within === e.data.length) this.#advance();
        return Promise.resolve(out);
      }
      this.clock.advanceTo(deadline);
      return Promise.resolve(new Uint8Array(0));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  drain(): Promise<void> {
    return this.#informational("drain");
  }

  flushInput(): Promise<void> {
    try {
      this.#live();
      this.#inbox = [];
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#informational("flush");
  }

  setBaud(baud: number): Promise<void> {
    try {
      this.#live();
      const e = this.#nextHostEvent();
      if (!e || e.kind !== "baud" || e.baud !== baud) {
        this.#fail(
          `the core set ${baud} baud where the recording has ${describeEvent(e)}`,
          e?.line ?? 0,
          null,
        );
      }
      this.clock.advanceTo(e.t);
      this.#baud = baud;
      this.#advance();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  setSignals(signals: ModemSignals): Promise<void> {
    try {
      this.#live();
      const e = this.#nextHostEvent();
      if (!e || e.kind !== "signals" || e.dtr !== signals.dtr || e.rts !== signals.rts) {
        this.#fail(
          `the core set modem lines ${signalText(signals)} where the recording has ${describeEvent(e)}`,
          e?.line ?? 0,
          null,
        );
      }
      this.clock.advanceTo(e.t);
      this.#advance();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /**
   * Throw (and keep) a divergence when the recording still holds host actions the core never
   * made: the core stopped early or skipped a command. Replies left unread are fine.
   */
  assertConsumed(): void {
    if (this.#failure) throw this.#failure;
    for (let i = this.#i; i < this.#events.length; i++) {
      const e = this.#events[i];
      if (e.kind === "tx" || e.kind === "baud" || e.kind === "signals") {
        this.#i = i;
        this.#fail(`the core stopped where the recording continues with ${describeEvent(e)}`, e.line, null);
      }
    }
  }

  #live(): void {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new LinkClosedError(this.name, "replay closed");
  }

  #advance(): void {
    this.#i++;
    this.#within = 0;
  }

  #skipInformational(): void {
    while (this.#i < this.#events.length && INFORMATIONAL.has(this.#events[this.#i].kind)) this.#advance();
  }

  /** Move past replies the core did not read (they wait in the inbox) and informational lines. */
  #nextHostEvent(): TraceEvent | undefined {
    for (;;) {
      const e = this.#events[this.#i];
      if (!e) return undefined;
      if (e.kind === "rx") {
        this.#inbox.push(e.data.subarray(this.#within));
        this.#advance();
      } else if (INFORMATIONAL.has(e.kind)) this.#advance();
      else return e;
    }
  }

  #informational(kind: "drain" | "flush"): Promise<void> {
    try {
      this.#live();
      const e = this.#events[this.#i];
      if (e?.kind === kind) {
        this.clock.advanceTo(e.t);
        this.#advance();
      }
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #fromInbox(max: number): Uint8Array {
    const first = this.#inbox[0];
    if (first.length <= max) {
      this.#inbox.shift();
      return first.slice();
    }
    this.#inbox[0] = first.subarray(max);
    return first.slice(0, max);
  }

  /** What the core is sending: the bytes matched since its frame began, then the rest of this write. */
  #coreFrame(data: Uint8Array, k: number): Uint8Array {
    if (k === 0) return data;
    const sent = Uint8Array.from(this.#sent);
    const head = sent.subarray(Math.max(0, frameStart(sent, sent.length - 1)));
    const out = new Uint8Array(head.length + data.length - k);
    out.set(head);
    out.set(data.subarray(k), head.length);
    return out;
  }

  #coreFrameLines(data: Uint8Array, k: number): string[] {
    const frame = this.#coreFrame(data, k);
    return hexRows("core", frame, frame.length - (data.length - k));
  }

  #byteMismatch(e: TraceEvent & { kind: "tx" }, data: Uint8Array, k: number): never {
    // the recorded frame: from its preamble (possibly in an earlier write) to the end of this event
    const sent = Uint8Array.from(this.#sent);
    const recordedRest = e.data.subarray(this.#within);
    const joined = new Uint8Array(sent.length + recordedRest.length);
    joined.set(sent);
    joined.set(recordedRest, sent.length);
    const at = sent.length;
    let start = frameStart(joined, at);
    if (start < 0) start = Math.max(0, at - 16);
    const recorded = joined.subarray(start);
    const core = new Uint8Array(at - start + data.length - k);
    core.set(joined.subarray(start, at));
    core.set(data.subarray(k), at - start);
    const rel = at - start;
    this.#fail(
      `the core sent 0x${hx(data[k])} where the recording has 0x${hx(e.data[this.#within])}`,
      e.line,
      at,
      [
        `  recorded: ${describeRequest(recorded)}`,
        `  core:     ${describeRequest(core)}`,
        ...hexDiff(recorded, core, rel, [`recorded (line ${e.line})`, "core"]),
      ],
    );
  }

  #fail(what: string, line: number, offset: number | null, detail: string[] = []): never {
    const where = [
      `at ${this.#label}`,
      offset !== null ? `host-to-device byte ${offset}` : null,
      line ? `trace line ${line}` : "past the end of the trace",
      `t=${this.clock.now().toFixed(3)} ms`,
    ].filter(Boolean).join(", ");
    this.#failure = new TraceDivergenceError(
      [`trace replay diverged: ${what}`, `  ${where}`, ...detail].join("\n"),
      line,
      offset,
    );
    throw this.#failure;
  }
}

/** Names of CH341A command bytes (docs/spi-ch341.md A.4), for diffs. */
const CH341_COMMANDS: Record<number, string> = {
  0xa8: "SPI stream",
  0xab: "UIO stream",
  0xaa: "I2C stream",
  0xa0: "get version",
};

/** One-line description of a CH341A bulk OUT packet stream. */
export function describeCh341(data: Uint8Array): string {
  const names: string[] = [];
  for (let i = 0; i < data.length; i += 32) {
    const name = CH341_COMMANDS[data[i]] ?? `0x${hx(data[i])}`;
    if (names[names.length - 1] !== name) names.push(name);
  }
  return `${data.length} bytes: ${names.join(", ")}`;
}

/**
 * A USB device answering a CH341A driver from one recorded USB link. OUT transfers are
 * matched in order against the recorded OUTs, IN requests are answered in order from the
 * recorded INs: the interleaving of the two (INs queued ahead) may differ from the recording.
 */
export class ReplayUsbDevice implements UsbDeviceLike {
  readonly vendorId: number;
  readonly productId: number;
  readonly productName = "replay";
  readonly serialNumber = null;
  /** Clock moved to each recorded transfer's completion time. */
  readonly clock: Clock & VirtualClock;
  opened = false;
  /** OUT and IN transfers, each in the order the driver issued them. */
  readonly #outs: (TraceEvent & { kind: "usb-out" })[];
  readonly #ins: (TraceEvent & { kind: "usb-in" })[];
  readonly #controls: (TraceEvent & { kind: "usb" })[];
  readonly #label: string;
  #o = 0;
  #n = 0;
  #c = 0;
  #outBytes = 0;
  #failure: TraceDivergenceError | null = null;

  constructor(link: TraceLink, options: ReplayOptions = {}) {
    if (link.kind !== "usb") throw new TypeError(`trace link ${link.id} is a ${link.kind} link, not usb`);
    const m = /^usb:([0-9a-f]{4}):([0-9a-f]{4})$/.exec(link.name);
    this.vendorId = m ? parseInt(m[1], 16) : 0x1a86;
    this.productId = m ? parseInt(m[2], 16) : 0x5512;
    this.clock = options.virtualClock ?? new VirtualClock();
    this.#outs = link.events.filter((e) => e.kind === "usb-out");
    this.#ins = link.events.filter((e) => e.kind === "usb-in");
    this.#controls = link.events.filter((e) => e.kind === "usb");
    this.#label = `link ${link.id} "${link.name}"${link.label ? ` (${link.label})` : ""}`;
  }

  /** The divergence that failed this replay, if any. */
  get divergence(): TraceDivergenceError | null {
    return this.#failure;
  }

  open(): Promise<void> {
    this.opened = true;
    return this.#control("open");
  }
  close(): Promise<void> {
    this.opened = false;
    return this.#control("close");
  }
  selectConfiguration(_configurationValue: number): Promise<void> {
    return this.#control("configuration");
  }
  claimInterface(_interfaceNumber: number): Promise<void> {
    return this.#control("claim");
  }
  releaseInterface(_interfaceNumber: number): Promise<void> {
    return this.#control("release");
  }
  detachKernelDriver(_interfaceNumber: number): Promise<void> {
    return this.#control("detach");
  }

  transferOut(endpointNumber: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
    try {
      this.#live();
      const e = this.#outs[this.#o];
      if (!e || e.ep !== endpointNumber) {
        this.#fail(
          `the driver sent a USB OUT (${describeCh341(data)}) where the recording has ${describeEvent(e)}`,
          e?.line ?? 0,
          this.#outBytes,
        );
      }
      const n = Math.max(data.length, e.data.length);
      for (let k = 0; k < n; k++) {
        if (data[k] !== e.data[k]) {
          this.#fail(
            `the driver sent ${k < data.length ? `0x${hx(data[k])}` : "nothing"} where the recording has ${
              k < e.data.length ? `0x${hx(e.data[k])}` : "nothing"
            } in a USB OUT`,
            e.line,
            this.#outBytes + k,
            [
              `  recorded: ${describeCh341(e.data)}`,
              `  driver:   ${describeCh341(data)}`,
              ...hexDiff(e.data, data, k, [`recorded (line ${e.line})`, "driver"]),
            ],
          );
        }
      }
      this.#outBytes += data.length;
      this.clock.advanceTo(e.t);
      this.#o++;
      return Promise.resolve({ bytesWritten: data.length, status: "ok" });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  transferIn(endpointNumber: number, length: number): Promise<UsbInResult> {
    try {
      this.#live();
      const e = this.#ins[this.#n];
      if (!e || e.ep !== endpointNumber || e.length !== length) {
        this.#fail(
          `the driver asked for a USB IN of ${length} bytes on endpoint ${endpointNumber} where the recording has ${
            describeEvent(e)
          }`,
          e?.line ?? 0,
          null,
        );
      }
      this.clock.advanceTo(e.t);
      this.#n++;
      const data = e.data.slice();
      return Promise.resolve({
        data: new DataView(data.buffer),
        status: (e.status ?? "ok") as UsbInResult["status"],
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Like {@link ReplayLink.assertConsumed}: transfers left in the recording are a divergence. */
  assertConsumed(): void {
    if (this.#failure) throw this.#failure;
    const e = this.#outs[this.#o] ?? this.#ins[this.#n];
    if (e) {
      this.#fail(`the driver stopped where the recording continues with ${describeEvent(e)}`, e.line, null);
    }
  }

  #live(): void {
    if (this.#failure) throw this.#failure;
  }

  #control(op: string): Promise<void> {
    const e = this.#controls[this.#c];
    if (e?.op === op) {
      this.clock.advanceTo(e.t);
      this.#c++;
    }
    return this.#failure ? Promise.reject(this.#failure) : Promise.resolve();
  }

  #fail(what: string, line: number, offset: number | null, detail: string[] = []): never {
    const where = [
      `at ${this.#label}`,
      offset !== null ? `OUT byte ${offset}` : null,
      line ? `trace line ${line}` : "past the end of the trace",
    ].filter(Boolean).join(", ");
    this.#failure = new TraceDivergenceError(
      [`trace replay diverged: ${what}`, `  ${where}`, ...detail].join("\n"),
      line,
      offset,
    );
    throw this.#failure;
  }
}
