/**
 * Replaying a recorded UART link: a {@link ByteLink} whose far end is the trace instead of a
 * chip (the CH341A counterpart is `replay_usb.ts`). It answers the core's reads with the recorded replies
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
 * import { chipById } from "../chips/profiles.ts";
 * import { parseTrace } from "../io/trace.ts";
 * import { openUartTarget } from "../uart/target.ts";
 * const trace = parseTrace(await Deno.readTextFile("bk7231n.jsonl"));
 * const link = new ReplayLink(trace.links[0], { clock: trace.header.clock });
 * const { identity } = await openUartTarget(link, { chip: chipById("bk7231n") });
 * link.assertConsumed(); // throws when the core stopped before the recording did
 * ```
 *
 * @module
 */

import { VirtualClock } from "../clock.ts";
import { hexByte } from "../hex.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "../io/link.ts";
import type { TraceEvent, TraceLink } from "../io/trace.ts";
import { describeEvent, describeRequest, signalText } from "./describe.ts";
import { hexDiff, hexRows } from "./hex_diff.ts";
import { type ReplayOptions, TraceDivergenceError } from "./replay.ts";

/** Index of the last `01 E0 FC` preamble that starts at or before `at`, or -1. */
function frameStart(bytes: Uint8Array, at: number): number {
  for (let i = Math.min(at, bytes.length - 3); i >= 0; i--) {
    if (bytes[i] === 0x01 && bytes[i + 1] === 0xe0 && bytes[i + 2] === 0xfc) return i;
  }
  return -1;
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
      `the core sent 0x${hexByte(data[k])} where the recording has 0x${hexByte(e.data[this.#within])}`,
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
