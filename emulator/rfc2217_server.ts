/**
 * The emulator as an RFC 2217 server (`deno task emulate --rfc2217 127.0.0.1:0`): a telnet port
 * with the COM-PORT-OPTION, so a client that speaks `rfc2217://` (ours, pyserial, esptool-style
 * tools) sets the baud rate it talks at, and its DTR/RTS reach the chip model through the
 * board's reset wiring ({@link ResetLine}). Unlike a PTY or a raw socket, the rate is told, not
 * guessed: bytes at a rate other than the chip's are garbled as on a wire.
 *
 * One client at a time, loopback only, as `serveTcp`. Facts: docs/rfc2217.md.
 *
 * @module
 */

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
} from "../core/io/telnet.ts";
import { chipLines, type ResetLine } from "./reset_wiring.ts";
import { type EmulatorServer, serveConnections, type ServeOptions } from "./serve.ts";
import type { Channel } from "./serve_session.ts";
import type { UartDevice } from "./uart_device.ts";

/** Options of {@link serveRfc2217}. */
export interface Rfc2217ServeOptions extends ServeOptions {
  /** Which modem line drives the chip's CEN (default "rts"). */
  resetLine?: ResetLine;
}

/**
 * Serve `device` as an RFC 2217 port on loopback. The address is `rfc2217://<host>:<port>`.
 *
 * @throws {FlashError} code "USAGE" for a non-loopback host.
 *
 * @example
 * ```ts
 * import type { UartDevice } from "./uart_device.ts";
 * declare const chip: UartDevice;
 * const server = serveRfc2217(chip, { port: 0 });
 * console.log(server.address); // rfc2217://127.0.0.1:40125
 * ```
 */
export function serveRfc2217(
  device: UartDevice,
  listen: { hostname?: string; port?: number } = {},
  options: Rfc2217ServeOptions = {},
): EmulatorServer {
  const log = options.log ?? (() => {});
  const wiring = options.resetLine ?? "rts";
  let clock = (): number => 0;
  const server = serveConnections(device, "rfc2217", listen, options, {
    channelFor(conn) {
      const channel = new ComPortChannel(conn, {
        log,
        signals: (lines) => {
          const chip = chipLines(wiring, lines);
          if (chip) device.signals(chip, clock());
        },
      });
      return { channel, end: () => channel.end() };
    },
  });
  clock = server.now;
  return server;
}

/** One RFC 2217 client: telnet decoding in, escaping out, COM-PORT commands carried out. */
class ComPortChannel implements Channel {
  #conn: Deno.Conn;
  #log: (line: string) => void;
  #signals: (lines: { dtr: boolean; rts: boolean }) => void;
  #options = new OptionTable([OPTION.BINARY, OPTION.SGA], [OPTION.BINARY, OPTION.SGA, OPTION.COM_PORT]);
  #decoder: TelnetDecoder;
  #pending: TelnetEvent[] = [];
  #buf = new Uint8Array(65536);
  #baud: number | undefined;
  #lines = { dtr: false, rts: false };
  #format: { datasize: number; parity: number; stopsize: number } = {
    datasize: 8,
    parity: PARITY.NONE,
    stopsize: STOPSIZE.ONE,
  };
  #suspended = false;
  #resume: (() => void) | null = null;
  #ended = false;
  #greeted = false;
  #sending: Promise<boolean> = Promise.resolve(true);
  #purge: () => void = () => {};

  constructor(
    conn: Deno.Conn,
    hooks: { log: (line: string) => void; signals: (lines: { dtr: boolean; rts: boolean }) => void },
  ) {
    this.#conn = conn;
    this.#log = hooks.log;
    this.#signals = hooks.signals;
    this.#decoder = new TelnetDecoder(() => this.#options.them(OPTION.BINARY));
    const offers = [
      this.#options.request(OPTION.BINARY, "us"),
      this.#options.request(OPTION.BINARY, "them"),
      this.#options.request(OPTION.SGA, "us"),
    ].filter((b): b is Uint8Array => b !== null);
    for (const o of offers) this.#raw(o);
  }

  attach(control: { purgeOutput(): void }): void {
    this.#purge = () => control.purgeOutput();
  }

  clientBaud(): number | undefined {
    return this.#baud;
  }

  /** The client's next data, with the commands before it carried out in stream order. */
  async receive(): Promise<Uint8Array | null> {
    for (;;) {
      const ev = this.#pending.shift();
      if (ev) {
        if (ev.type === "data") return ev.data;
        this.#apply(ev);
        continue;
      }
      let n: number | null;
      try {
        n = await this.#conn.read(this.#buf);
      } catch {
        n = null;
      }
      if (n === null) {
        this.end();
        return null;
      }
      this.#pending.push(...this.#decoder.push(this.#buf.subarray(0, n)));
    }
  }

  async send(data: Uint8Array): Promise<boolean> {
    while (this.#suspended && !this.#ended) await new Promise<void>((r) => (this.#resume = r));
    return await this.#raw(escapeData(data, this.#options.us(OPTION.BINARY)));
  }

  /** The client has gone: nothing waits for a flow-control resume any more. */
  end(): void {
    this.#ended = true;
    this.#resume?.();
  }

  #raw(bytes: Uint8Array): Promise<boolean> {
    this.#sending = this.#sending.then(async (ok) => {
      if (!ok) return false;
      try {
        for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
        return true;
      } catch {
        return false;
      }
    });
    return this.#sending;
  }

  #reply(code: number, value: Uint8Array | number[]): void {
    this.#raw(comPortCommand(code + SERVER_REPLY, value));
  }

  #apply(ev: Exclude<TelnetEvent, { type: "data" }>): void {
    if (ev.type === "negotiate") {
      const answer = this.#options.receive(ev.verb, ev.option);
      if (answer) this.#raw(answer);
      if (!this.#greeted && this.#options.them(OPTION.COM_PORT)) {
        this.#greeted = true;
        // the adapter's modem inputs (CD, RI, DSR, CTS) are not wired on the emulated board
        this.#reply(COM_PORT.NOTIFY_MODEMSTATE, [0]);
      }
      return;
    }
    if (ev.type === "sub" && ev.option === OPTION.COM_PORT && ev.payload.length > 0) {
      this.#comPort(ev.payload[0], ev.payload.subarray(1));
    }
  }

  #comPort(code: number, value: Uint8Array): void {
    switch (code) {
      case COM_PORT.SIGNATURE:
        if (value.length) this.#log(`client signature: ${new TextDecoder("latin1").decode(value)}`);
        else this.#reply(code, new TextEncoder().encode("bekenlab emulator"));
        return;
      case COM_PORT.SET_BAUDRATE: {
        const baud = readBaud(value);
        if (baud === null) return;
        if (baud !== 0 && baud !== this.#baud) {
          this.#baud = baud;
          this.#log(`client set ${baud} baud (RFC 2217)`);
        }
        this.#reply(code, baudBytes(this.#baud ?? 0));
        return;
      }
      case COM_PORT.SET_DATASIZE:
      case COM_PORT.SET_PARITY:
      case COM_PORT.SET_STOPSIZE: {
        const key = code === COM_PORT.SET_DATASIZE
          ? "datasize"
          : code === COM_PORT.SET_PARITY
          ? "parity"
          : "stopsize";
        const v = value[0] ?? 0;
        if (v !== 0 && v !== this.#format[key]) {
          this.#format[key] = v;
          const f = this.#format;
          if (f.datasize !== 8 || f.parity !== PARITY.NONE || f.stopsize !== STOPSIZE.ONE) {
            this.#log(
              `client set ${key} ${v}: the chip's loader speaks 8N1 and the emulator does not model other framing`,
            );
          }
        }
        this.#reply(code, [this.#format[key]]);
        return;
      }
      case COM_PORT.SET_CONTROL:
        this.#control(value[0] ?? 0);
        return;
      case COM_PORT.FLOWCONTROL_SUSPEND:
        this.#suspended = true;
        return;
      case COM_PORT.FLOWCONTROL_RESUME:
        this.#suspended = false;
        this.#resume?.();
        return;
      case COM_PORT.PURGE_DATA: {
        const v = value[0] ?? 0;
        // the client's bytes go to the chip as they come, so only the reply queue can be purged
        if (v === PURGE.RECEIVE || v === PURGE.BOTH) this.#purge();
        this.#reply(code, [v]);
        return;
      }
      case COM_PORT.SET_LINESTATE_MASK:
      case COM_PORT.SET_MODEMSTATE_MASK:
        this.#reply(code, [value[0] ?? 0]);
        return;
    }
  }

  #control(v: number): void {
    const before = { ...this.#lines };
    switch (v) {
      case CONTROL.DTR_ON:
      case CONTROL.DTR_OFF:
        this.#lines.dtr = v === CONTROL.DTR_ON;
        break;
      case CONTROL.RTS_ON:
      case CONTROL.RTS_OFF:
        this.#lines.rts = v === CONTROL.RTS_ON;
        break;
      case CONTROL.DTR_REQUEST:
        this.#reply(COM_PORT.SET_CONTROL, [this.#lines.dtr ? CONTROL.DTR_ON : CONTROL.DTR_OFF]);
        return;
      case CONTROL.RTS_REQUEST:
        this.#reply(COM_PORT.SET_CONTROL, [this.#lines.rts ? CONTROL.RTS_ON : CONTROL.RTS_OFF]);
        return;
      case CONTROL.BREAK_REQUEST:
        this.#reply(COM_PORT.SET_CONTROL, [CONTROL.BREAK_OFF]);
        return;
      case CONTROL.BREAK_ON: // the loader ignores a break: acknowledged and dropped
      case CONTROL.BREAK_OFF:
        this.#reply(COM_PORT.SET_CONTROL, [v]);
        return;
      default: {
        // flow control of either direction: the emulated board has none
        const inbound = v >= CONTROL.INBOUND_FLOW_REQUEST && v <= 16;
        this.#reply(COM_PORT.SET_CONTROL, [inbound ? CONTROL.INBOUND_FLOW_NONE : CONTROL.FLOW_NONE]);
        return;
      }
    }
    if (before.dtr !== this.#lines.dtr || before.rts !== this.#lines.rts) {
      this.#log(`client set DTR=${Number(this.#lines.dtr)} RTS=${Number(this.#lines.rts)}`);
      this.#signals({ ...this.#lines });
    }
    this.#reply(COM_PORT.SET_CONTROL, [v]);
  }
}
