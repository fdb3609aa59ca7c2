/**
 * Wire traces: what went over a link, both ways, with timestamps, as JSON Lines. One file can
 * hold several links (a HIL run opens one per scenario on virtual targets), each introduced by
 * an `open` line; every later line names its link with `l`.
 *
 * ```text
 * {"trace":"bekenlab","version":1,"clock":"virtual","createdAt":"…","run":{…}}
 * {"open":1,"kind":"uart","name":"virtual:bk7231n","baud":115200,"modemLines":true,"label":"detect"}
 * {"l":1,"t":0,"tx":"01e0fc0100"}
 * {"l":1,"t":1.5868,"rx":"040e0501e0fc0100"}
 * {"l":1,"t":2.1,"baud":921600}
 * {"l":1,"t":2.1,"signals":{"dtr":false,"rts":true}}
 * {"l":2,"t":0.3,"out":"ab…","ep":2}
 * {"l":2,"t":0.4,"in":"00…","ep":2,"len":32}
 * ```
 *
 * `tx` is host to device, `rx` device to host (what a read returned), `t` the link clock in
 * ms since the link was opened. USB lines (`out`, `in`, `usb`) record the CH341A path.
 *
 * @module
 */

import { toHex } from "../hex.ts";

/** Version written into, and required of, every trace header. */
export const TRACE_VERSION = 1;

/** First line of a trace. */
export interface TraceHeader {
  trace: "bekenlab";
  version: number;
  /** "virtual" when recorded on the emulator's clock, "real" on hardware. */
  clock: "virtual" | "real";
  /** ISO time the recording started. */
  createdAt: string;
  /** What was run, so a replay can run it again (HIL options or CLI arguments). */
  run?: Record<string, unknown>;
}

/** A link as announced by its `open` line. */
export interface TraceLinkInfo {
  /** "uart" for a {@link ByteLink}, "usb" for a CH341A's USB device. */
  kind: "uart" | "usb";
  /** Port name at recording time. */
  name: string;
  /** Host baud rate when recording started (UART only). */
  baud?: number;
  /** Whether DTR/RTS reached the device (UART only). */
  modemLines?: boolean;
  /** What the link was opened for (a scenario id, a CLI command). */
  label?: string;
}

/** One recorded event of a link. `line` is the 1-based line number in the trace file. */
export type TraceEvent =
  | { kind: "tx"; t: number; data: Uint8Array; line: number }
  | { kind: "rx"; t: number; data: Uint8Array; line: number }
  | { kind: "baud"; t: number; baud: number; line: number }
  | { kind: "signals"; t: number; dtr?: boolean; rts?: boolean; line: number }
  | { kind: "flush"; t: number; line: number }
  | { kind: "drain"; t: number; line: number }
  | { kind: "close"; t: number; line: number }
  | { kind: "usb-out"; t: number; ep: number; data: Uint8Array; line: number }
  | { kind: "usb-in"; t: number; ep: number; length: number; data: Uint8Array; status?: string; line: number }
  | { kind: "usb"; t: number; op: string; arg?: number; line: number };

/** A link and its events, in order. */
export interface TraceLink extends TraceLinkInfo {
  id: number;
  events: TraceEvent[];
}

/** A parsed trace. */
export interface Trace {
  header: TraceHeader;
  links: TraceLink[];
  /** Free-text notes (`{"note":…}` lines), e.g. a power cycle by an external command. */
  notes: { t: number; text: string; line: number }[];
}

export { toHex };

/** Bytes of a hex string (no separators). Throws on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new SyntaxError(`not a hex string: ${hex.slice(0, 40)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Where trace lines go: a file, memory. */
export interface TraceSink {
  /** Append one line (without its newline). */
  write(line: string): void;
  /** Flush and release. */
  close(): Promise<void>;
}

/** A {@link TraceSink} keeping lines in memory; `text()` gives the JSONL. */
export class MemoryTraceSink implements TraceSink {
  /** The lines written so far. */
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  /** The whole trace as JSONL text. */
  text(): string {
    return this.lines.map((l) => l + "\n").join("");
  }
}

/** A recorded event before it gets its link id and line number. */
export type TraceEventInput =
  | { kind: "tx" | "rx"; t: number; data: Uint8Array }
  | { kind: "baud"; t: number; baud: number }
  | { kind: "signals"; t: number; dtr?: boolean; rts?: boolean }
  | { kind: "flush" | "drain" | "close"; t: number }
  | { kind: "usb-out"; t: number; ep: number; data: Uint8Array }
  | { kind: "usb-in"; t: number; ep: number; length: number; data: Uint8Array; status?: string }
  | { kind: "usb"; t: number; op: string; arg?: number };

/**
 * Writes a trace: the header at construction, then `open` lines and events.
 *
 * @example
 * ```ts
 * const sink = new MemoryTraceSink();
 * const writer = new TraceWriter(sink, { clock: "virtual" });
 * const id = writer.open({ kind: "uart", name: "virtual:bk7231n", baud: 115200, modemLines: true });
 * writer.event(id, { kind: "tx", t: 0, data: Uint8Array.of(1, 0xe0, 0xfc, 1, 0) });
 * ```
 */
export class TraceWriter {
  readonly #sink: TraceSink;
  #next = 1;
  #closed = false;

  constructor(
    sink: TraceSink,
    header: Omit<TraceHeader, "trace" | "version" | "createdAt"> & { createdAt?: string },
  ) {
    this.#sink = sink;
    const h: TraceHeader = {
      trace: "bekenlab",
      version: TRACE_VERSION,
      clock: header.clock,
      createdAt: header.createdAt ?? new Date().toISOString(),
      ...(header.run ? { run: header.run } : {}),
    };
    sink.write(JSON.stringify(h));
  }

  /** Announce a link; returns its id for {@link event}. */
  open(info: TraceLinkInfo): number {
    const id = this.#next++;
    this.#write({ open: id, ...info });
    return id;
  }

  /** Record one event of link `id`. */
  event(id: number, e: TraceEventInput): void {
    const base = { l: id, t: e.t };
    switch (e.kind) {
      case "tx":
      case "rx":
        return this.#write({ ...base, [e.kind]: toHex(e.data) });
      case "baud":
        return this.#write({ ...base, baud: e.baud });
      case "signals": {
        const signals: Record<string, boolean> = {};
        if (e.dtr !== undefined) signals.dtr = e.dtr;
        if (e.rts !== undefined) signals.rts = e.rts;
        return this.#write({ ...base, signals });
      }
      case "flush":
      case "drain":
      case "close":
        return this.#write({ ...base, [e.kind]: true });
      case "usb-out":
        return this.#write({ ...base, out: toHex(e.data), ep: e.ep });
      case "usb-in":
        return this.#write({
          ...base,
          in: toHex(e.data),
          ep: e.ep,
          len: e.length,
          ...(e.status && e.status !== "ok" ? { status: e.status } : {}),
        });
      case "usb":
        return this.#write({ ...base, usb: e.op, ...(e.arg === undefined ? {} : { arg: e.arg }) });
    }
  }

  /** Record a free-text note (not replayed, shown in diffs for context). */
  note(t: number, text: string): void {
    this.#write({ t, note: text });
  }

  /** Close the sink. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sink.close();
  }

  #write(obj: Record<string, unknown>): void {
    if (!this.#closed) this.#sink.write(JSON.stringify(obj));
  }
}

/** A trace file that cannot be understood; names the line. */
export class TraceFormatError extends Error {
  constructor(line: number, detail: string) {
    super(`trace line ${line}: ${detail}`);
    this.name = "TraceFormatError";
  }
}

/**
 * Parse a JSONL trace.
 *
 * @example
 * ```ts
 * const trace = parseTrace(await Deno.readTextFile("fixtures/traces/bk7231n-uart.jsonl"));
 * trace.links[0].events.length;
 * ```
 */
export function parseTrace(text: string): Trace {
  const lines = text.split("\n");
  let header: TraceHeader | null = null;
  const links = new Map<number, TraceLink>();
  const notes: Trace["notes"] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    const line = i + 1;
    if (!raw) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(raw);
    } catch (e) {
      throw new TraceFormatError(line, `not JSON (${(e as Error).message})`);
    }
    if (!header) {
      if (o.trace !== "bekenlab") throw new TraceFormatError(line, "not a bekenlab trace (no header)");
      if (o.version !== TRACE_VERSION) {
        throw new TraceFormatError(line, `trace version ${o.version}, this build reads ${TRACE_VERSION}`);
      }
      header = o as unknown as TraceHeader;
      continue;
    }
    if (typeof o.open === "number") {
      const { open, ...info } = o;
      links.set(open, { ...(info as unknown as TraceLinkInfo), id: open, events: [] });
      continue;
    }
    const t = typeof o.t === "number" ? o.t : 0;
    if (typeof o.note === "string") {
      notes.push({ t, text: o.note, line });
      continue;
    }
    const link = links.get(o.l as number);
    if (!link) throw new TraceFormatError(line, `event for link ${o.l}, which was never opened`);
    link.events.push(parseEvent(o, t, line));
  }
  if (!header) throw new TraceFormatError(1, "empty trace");
  return { header, links: [...links.values()], notes };
}

function parseEvent(o: Record<string, unknown>, t: number, line: number): TraceEvent {
  const hex = (k: string) => {
    try {
      return fromHex(String(o[k]));
    } catch (e) {
      throw new TraceFormatError(line, (e as Error).message);
    }
  };
  if ("tx" in o) return { kind: "tx", t, data: hex("tx"), line };
  if ("rx" in o) return { kind: "rx", t, data: hex("rx"), line };
  if ("baud" in o) return { kind: "baud", t, baud: Number(o.baud), line };
  if ("signals" in o) {
    const s = o.signals as { dtr?: boolean; rts?: boolean };
    return { kind: "signals", t, dtr: s.dtr, rts: s.rts, line };
  }
  if ("flush" in o) return { kind: "flush", t, line };
  if ("drain" in o) return { kind: "drain", t, line };
  if ("close" in o) return { kind: "close", t, line };
  if ("out" in o) return { kind: "usb-out", t, ep: Number(o.ep), data: hex("out"), line };
  if ("in" in o) {
    const status = typeof o.status === "string" ? o.status : undefined;
    return { kind: "usb-in", t, ep: Number(o.ep), length: Number(o.len), data: hex("in"), status, line };
  }
  if ("usb" in o) {
    return { kind: "usb", t, op: String(o.usb), arg: typeof o.arg === "number" ? o.arg : undefined, line };
  }
  throw new TraceFormatError(line, `unknown event ${JSON.stringify(o).slice(0, 60)}`);
}
