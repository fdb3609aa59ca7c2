/**
 * The RFC 2217 link itself: one telnet connection with the COM-PORT-OPTION, as a
 * {@link ByteLink} (negotiation, the remote UART's settings, DTR/RTS, purges, flow control and
 * the server's notifications). `rfc2217.ts` parses the address and opens it; the server's
 * confirmations are matched by `rfc2217_acks.ts`. Facts: docs/rfc2217.md.
 *
 * Longer than 400 lines because it is one state machine: what arrives (data, negotiation, the
 * server's notifications and confirmations) and every link operation read and change the same
 * connection state (purging, flow suspension, modem control, the baud rate); split further it
 * would only pass that state around.
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { ChunkQueue } from "./chunk_queue.ts";
import { type Clock, realClock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import { wireMs } from "../timing.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "./link.ts";
import { ackKey, AckWaiters } from "./rfc2217_acks.ts";
import {
  baudBytes,
  COM_PORT,
  comPortCommand,
  CONTROL,
  escapeData,
  OPTION,
  OptionTable,
  PARITY,
  PURGE,
  readBaud,
  SERVER_REPLY,
  STOPSIZE,
  TelnetDecoder,
  type TelnetEvent,
} from "./telnet.ts";

/** Options of an RFC 2217 link (`openRfc2217`). */
export interface Rfc2217Options {
  /** Give up connecting after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** How long the server may take to accept the COM-PORT-OPTION (default 3000 ms). */
  negotiationTimeoutMs?: number;
  /** How long to wait for the server to confirm a setting (default 1000 ms). */
  ackTimeoutMs?: number;
  /** Baud rate to set on the remote UART at once (default 115200). */
  baud?: number;
  /** One-line notices: a server that does not confirm something, once per kind. */
  onNotice?: (message: string) => void;
}

/** Whether the server carries out DTR/RTS changes: not known until the first one. */
export type ModemControl = "unknown" | "confirmed" | "absent";

/** What we call ourselves when the server asks (SIGNATURE). */
const SIGNATURE = "bekenlab";
/** Time a request needs to reach the bridge and its UART, beyond the bytes' wire time. */
const HOP_MS = 2;

/** A {@link ByteLink} over an RFC 2217 telnet connection. */
export class Rfc2217Link implements ByteLink {
  readonly name: string;
  readonly clock: Clock = realClock;
  #conn: Deno.Conn;
  #ackMs: number;
  #notice: (message: string) => void;
  #noticed = new Set<string>();
  #options = new OptionTable(
    [OPTION.BINARY, OPTION.SGA, OPTION.COM_PORT],
    [OPTION.BINARY, OPTION.SGA, OPTION.COM_PORT],
  );
  #decoder: TelnetDecoder;
  #baud = 115200;
  #modemControl: ModemControl = "unknown";
  #modemState: number | null = null;
  #lineState: number | null = null;
  #serverSignature: string | null = null;
  #chunks = new ChunkQueue();
  #purging = false;
  #suspended = false;
  #txFree = 0;
  #ended = false;
  #closed = false;
  #wakers = new Set<() => void>();
  #acks: AckWaiters;
  #sending: Promise<void> = Promise.resolve();
  #pump: Promise<void>;

  /** Wrap a connected socket; starts receiving at once. Call {@link start} before use. */
  constructor(name: string, conn: Deno.Conn, options: Rfc2217Options = {}) {
    this.name = name;
    this.#conn = conn;
    this.#ackMs = options.ackTimeoutMs ?? 1000;
    this.#acks = new AckWaiters(this.#ackMs);
    this.#notice = options.onNotice ?? (() => {});
    this.#decoder = new TelnetDecoder(() => this.#options.them(OPTION.BINARY));
    this.#pump = this.#receive();
  }

  get baud(): number {
    return this.#baud;
  }

  /** DTR/RTS reach the device unless the server has shown it does not carry them out. */
  get hasModemLines(): boolean {
    return this.#modemControl !== "absent";
  }

  /** Whether the server has confirmed a DTR/RTS change, ignored one, or not been asked yet. */
  get modemControl(): ModemControl {
    return this.#modemControl;
  }

  /** The last NOTIFY-MODEMSTATE (CTS, DSR, RI, CD bits; see `MODEM`), null before one came. */
  get modemState(): number | null {
    return this.#modemState;
  }

  /** The last NOTIFY-LINESTATE, null before one came. */
  get lineState(): number | null {
    return this.#lineState;
  }

  /** The server's SIGNATURE text, when it sent one. */
  get serverSignature(): string | null {
    return this.#serverSignature;
  }

  /**
   * Negotiate: WILL COM-PORT-OPTION (and BINARY and SGA both ways), then the line settings.
   * Called by `openRfc2217`.
   */
  async start(baud: number, negotiationMs: number): Promise<void> {
    const asks = [
      this.#options.request(OPTION.COM_PORT, "us"),
      this.#options.request(OPTION.BINARY, "us"),
      this.#options.request(OPTION.BINARY, "them"),
      this.#options.request(OPTION.SGA, "us"),
      this.#options.request(OPTION.SGA, "them"),
    ];
    await this.#send(concat(asks.filter((a): a is Uint8Array => a !== null)));
    const deadline = performance.now() + negotiationMs;
    while (
      !this.#options.us(OPTION.COM_PORT) && !this.#options.refused(OPTION.COM_PORT, "us") && !this.#ended &&
      performance.now() < deadline
    ) {
      await this.#waitForInput(deadline - performance.now());
    }
    const rawRemedy =
      "configure an RFC 2217 port on the bridge (ser2net 4: `accepter: telnet(rfc2217),tcp,<port>`), " +
      "or use tcp://host:port for a raw bridge (no baud switching, no resets)";
    if (this.#options.refused(OPTION.COM_PORT, "us")) {
      throw new FlashError(
        "PORT",
        `${this.name} refused RFC 2217 serial port control (DONT COM-PORT-OPTION): a plain telnet port`,
        rawRemedy,
      );
    }
    if (this.#ended) {
      throw new FlashError("PORT", `${this.name} closed the connection during telnet negotiation`, rawRemedy);
    }
    if (!this.#options.us(OPTION.COM_PORT)) {
      throw new FlashError(
        "PORT",
        `${this.name} answered no telnet negotiation within ${negotiationMs} ms: not an RFC 2217 server`,
        rawRemedy,
      );
    }
    const settings: [number, Uint8Array, string][] = [
      [COM_PORT.SET_BAUDRATE, baudBytes(baud), `${baud} baud`],
      [COM_PORT.SET_DATASIZE, Uint8Array.of(8), "8 data bits"],
      [COM_PORT.SET_PARITY, Uint8Array.of(PARITY.NONE), "no parity"],
      [COM_PORT.SET_STOPSIZE, Uint8Array.of(STOPSIZE.ONE), "1 stop bit"],
    ];
    const acks = settings.map(([cmd, value]) => this.#expect(ackKey(cmd, value)));
    await this.#send(concat(settings.map(([cmd, value]) => comPortCommand(cmd, value))));
    // flow control is a SET-CONTROL too; a server without modem control may not confirm it
    this.#expect(ackKey(COM_PORT.SET_CONTROL, [CONTROL.FLOW_NONE])).catch(() => {});
    await this.#send(comPortCommand(COM_PORT.SET_CONTROL, [CONTROL.FLOW_NONE]));
    const got = await Promise.all(acks);
    const unconfirmed = settings.filter((_, i) => got[i] === null).map((s) => s[2]);
    if (unconfirmed.length) {
      this.#noticeOnce(
        "settings",
        `${this.name} did not confirm ${
          unconfirmed.join(", ")
        } within ${this.#ackMs} ms; assuming it applied them`,
      );
    }
    this.#checkBaud(baud, got[0]);
    this.#baud = baud;
  }

  async #receive(): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        for (const ev of this.#decoder.push(buf.subarray(0, n))) this.#handle(ev);
        this.#notify();
      }
    } catch {
      // a reset or a local close ends the stream the same way as an orderly close
    }
    this.#ended = true;
    this.#acks.closeAll();
    this.#suspended = false;
    this.#notify();
  }

  #handle(ev: TelnetEvent): void {
    switch (ev.type) {
      case "data":
        // what arrives between a purge request and its confirmation was sent before the purge
        if (!this.#purging) this.#chunks.push(ev.data);
        return;
      case "negotiate": {
        const answer = this.#options.receive(ev.verb, ev.option);
        if (answer) this.#send(answer).catch(() => {});
        return;
      }
      case "sub":
        if (ev.option === OPTION.COM_PORT && ev.payload.length > 0) this.#comPort(ev.payload);
        return;
      case "command":
        return;
    }
  }

  #comPort(payload: Uint8Array): void {
    const code = payload[0] - SERVER_REPLY;
    const value = payload.slice(1);
    switch (code) {
      case COM_PORT.SIGNATURE:
        if (value.length === 0) {
          this.#send(comPortCommand(COM_PORT.SIGNATURE, new TextEncoder().encode(SIGNATURE))).catch(() => {});
        } else this.#serverSignature = new TextDecoder("latin1").decode(value);
        return;
      case COM_PORT.NOTIFY_MODEMSTATE:
        this.#modemState = value[0] ?? null;
        return;
      case COM_PORT.NOTIFY_LINESTATE:
        this.#lineState = value[0] ?? null;
        return;
      case COM_PORT.FLOWCONTROL_SUSPEND:
        this.#suspended = true;
        return;
      case COM_PORT.FLOWCONTROL_RESUME:
        this.#suspended = false;
        this.#notify();
        return;
      case COM_PORT.PURGE_DATA:
        this.#purging = false;
        break;
    }
    this.#acks.settle(ackKey(code, value), value);
  }

  /** Wait for the server's answer to a command; null when it does not come in time. */
  #expect(key: string): Promise<Uint8Array | null> {
    if (this.#ended || this.#closed) return Promise.reject(this.#closedError());
    return this.#acks.expect(key).then((v) => {
      if (v === "closed") throw this.#closedError();
      return v;
    });
  }

  #closedError(): LinkClosedError {
    return new LinkClosedError(
      this.name,
      this.#closed ? "port closed" : "the RFC 2217 server closed the connection",
    );
  }

  #notify(): void {
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const wake of wakers) wake();
  }

  /** Wait up to `ms` for anything to arrive (or the end); reads and writers may wait at once. */
  async #waitForInput(ms: number): Promise<void> {
    if (ms <= 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake!: () => void;
    await new Promise<void>((resolve) => {
      wake = resolve;
      this.#wakers.add(wake);
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wakers.delete(wake);
  }

  /** Bytes onto the socket, one write after another. */
  #send(bytes: Uint8Array): Promise<void> {
    const next = this.#sending.then(async () => {
      if (this.#closed) throw new LinkClosedError(this.name, "port closed");
      try {
        for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
      } catch (e) {
        throw new LinkClosedError(this.name, (e as Error).message);
      }
    });
    this.#sending = next.catch(() => {});
    return next;
  }

  #noticeOnce(kind: string, message: string): void {
    if (this.#noticed.has(kind)) return;
    this.#noticed.add(kind);
    this.#notice(message);
  }

  #checkBaud(baud: number, ack: Uint8Array | null): void {
    const actual = ack ? readBaud(ack) : null;
    if (actual !== null && actual !== 0 && Math.abs(actual - baud) > baud * 0.03) {
      throw new FlashError(
        "PORT",
        `${this.name} cannot run at ${baud} baud (the server set ${actual})`,
        "choose a rate the bridge's adapter supports with --baud",
      );
    }
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
    if (this.#chunks.empty && !this.#ended && timeoutMs > 0) await this.#waitForInput(timeoutMs);
    if (this.#chunks.empty) {
      if (this.#closed || this.#ended) throw this.#closedError();
      return new Uint8Array(0);
    }
    return this.#chunks.take(Math.max(1, max));
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#closed || this.#ended) throw this.#closedError();
    // the bridge asked us to hold off (FLOWCONTROL-SUSPEND): wait for RESUME or the end
    while (this.#suspended && !this.#ended && !this.#closed) await this.#waitForInput(50);
    this.#purging = false;
    const now = performance.now();
    this.#txFree = Math.max(now, this.#txFree) + wireMs(data.length, this.#baud);
    await this.#send(escapeData(data, this.#options.us(OPTION.BINARY)));
  }

  /** Wait until the bytes written have left the bridge's UART, as far as their wire time tells. */
  async drain(): Promise<void> {
    await this.#sending;
    const left = this.#txFree + HOP_MS - performance.now();
    if (left > 0) await this.clock.sleep(left);
  }

  /**
   * Discard what has arrived. When that was anything (stale bytes are flowing), also ask the
   * bridge to discard what its UART received but did not pass on yet (PURGE-DATA); data that
   * arrives before the bridge confirms, and before the next write, is from before the purge and
   * is dropped too. A clean flush sends nothing: ser2net answers a purge and the next reply in
   * two small segments, and the second waits for the host's delayed ACK (~40 ms a command).
   */
  async flushInput(): Promise<void> {
    if (this.#closed || this.#ended) throw this.#closedError();
    const stale = !this.#chunks.empty;
    this.#chunks.clear();
    if (!stale) return;
    this.#purging = true;
    this.#expect(ackKey(COM_PORT.PURGE_DATA, [PURGE.RECEIVE])).then((ack) => {
      if (ack === null) this.#purging = false;
    }, () => {});
    await this.#send(comPortCommand(COM_PORT.PURGE_DATA, [PURGE.RECEIVE]));
  }

  /**
   * SET-BAUDRATE, waiting for the server's confirmation.
   *
   * @throws {FlashError} code "PORT" when the server sets another rate.
   */
  async setBaud(baud: number): Promise<void> {
    if (!Number.isInteger(baud) || baud <= 0) {
      throw new FlashError("USAGE", `invalid baud rate ${baud}`, "use a positive integer rate");
    }
    await this.drain();
    const value = baudBytes(baud);
    const ack = this.#expect(ackKey(COM_PORT.SET_BAUDRATE, value));
    await this.#send(comPortCommand(COM_PORT.SET_BAUDRATE, value));
    const got = await ack;
    if (got === null) {
      this.#noticeOnce(
        "baud",
        `${this.name} did not confirm the baud rate change within ${this.#ackMs} ms; assuming it applied it`,
      );
    }
    this.#checkBaud(baud, got);
    this.#baud = baud;
  }

  /**
   * SET-CONTROL for the lines given. When the server does not confirm, the link says so once
   * and from then on has no modem lines (the change did not reach the device).
   */
  async setSignals(signals: ModemSignals): Promise<void> {
    if (this.#closed || this.#ended) throw this.#closedError();
    if (this.#modemControl === "absent") return;
    const values: number[] = [];
    if (signals.dtr !== undefined) values.push(signals.dtr ? CONTROL.DTR_ON : CONTROL.DTR_OFF);
    if (signals.rts !== undefined) values.push(signals.rts ? CONTROL.RTS_ON : CONTROL.RTS_OFF);
    if (values.length === 0) return;
    const acks = values.map((v) => this.#expect(ackKey(COM_PORT.SET_CONTROL, [v])));
    await this.#send(concat(values.map((v) => comPortCommand(COM_PORT.SET_CONTROL, [v]))));
    const got = await Promise.all(acks);
    if (got.every((g) => g !== null)) {
      this.#modemControl = "confirmed";
      return;
    }
    this.#modemControl = "absent";
    this.#noticeOnce(
      "modem",
      `${this.name} does not confirm DTR/RTS changes (a bridge serving a pseudo-terminal or an adapter ` +
        "without modem lines): resets through DTR/RTS are not possible there; reset the chip by hand or " +
        "with a power command",
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer
    }
    this.#notify();
    await this.#pump;
  }
}
