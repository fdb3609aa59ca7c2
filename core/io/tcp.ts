/**
 * `tcp://host:port` targets: a raw TCP byte stream to a serial bridge (ser2net-style, an
 * ESP-Link, a Wi-Fi UART bridge) or to `deno task emulate --tcp`. There are no modem lines
 * and no baud rate on a socket: `setBaud` only records the rate the far side is expected to
 * use (a bridge keeps its own UART rate; our emulator carries the rate in the bytes it
 * delivers), so a reset has to go through the application's `reboot` text or the user.
 *
 * @module
 */

import { ChunkQueue } from "./chunk_queue.ts";
import { type Clock, realClock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "./link.ts";

/**
 * What `deno task emulate --tcp` sends a client it turns away (it serves one at a time) before
 * closing the connection, so the client can say "busy" instead of blaming a cable.
 */
export const EMULATOR_BUSY_NOTICE = "bekenlab emulator: busy with another client\r\n";

const BUSY_BYTES = new TextEncoder().encode(EMULATOR_BUSY_NOTICE);

/** Options of {@link openTcp}. */
export interface TcpOptions {
  /** Give up connecting after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Baud rate the bridge's UART is assumed to run at (default 115200). */
  baud?: number;
}

/** Host and port of a `tcp://host:port` address (IPv6 literals in brackets). */
export function parseTcpUrl(url: string): { hostname: string; port: number } {
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new FlashError(
      "USAGE",
      `"${url}" is not a tcp://host:port address`,
      "write it as tcp://192.168.1.50:8888",
    );
  }
  return { hostname: m[1].replace(/^\[|\]$/g, ""), port };
}

/**
 * Connect to a serial bridge.
 *
 * @throws {FlashError} code "PORT" when nothing answers at the address.
 *
 * @example
 * ```ts
 * const link = await openTcp("tcp://127.0.0.1:7231");
 * await link.write(Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00));
 * await link.read(64, 100);
 * await link.close();
 * ```
 */
export async function openTcp(url: string, options: TcpOptions = {}): Promise<TcpLink> {
  const { hostname, port } = parseTcpUrl(url);
  const conn = await dialTcp(url, hostname, port, {
    timeoutMs: options.connectTimeoutMs,
    what: "the serial bridge",
    remedy: "check the bridge is powered and reachable and the host and port are right; " +
      "for the emulator run `deno task emulate --tcp 127.0.0.1:0` and pass the tcp:// address it prints",
  });
  return new TcpLink(url, conn, options.baud ?? 115200);
}

/**
 * Open a TCP connection for a `tcp://` or `rfc2217://` port, with Nagle off.
 *
 * @throws {FlashError} code "PORT" naming `what` when nothing answers (refused, timed out,
 * unknown host) or when the process may not use the network.
 */
export async function dialTcp(
  url: string,
  hostname: string,
  port: number,
  opts: { timeoutMs?: number; what: string; remedy: string },
): Promise<Deno.TcpConn> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const conn = await Deno.connect({ hostname, port, signal: abort.signal });
    try {
      conn.setNoDelay(true);
    } catch {
      // not every platform lets us change it; the link works either way
    }
    return conn;
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new FlashError(
        "PORT",
        `not allowed to connect to ${url}`,
        "run with --allow-net (deno task flash passes it)",
        {
          cause: e,
        },
      );
    }
    const why = abort.signal.aborted
      ? `no answer within ${timeoutMs} ms`
      : e instanceof Deno.errors.ConnectionRefused
      ? "connection refused"
      : (e as Error).message;
    throw new FlashError("PORT", `cannot reach ${opts.what} at ${url} (${why})`, opts.remedy, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** A {@link ByteLink} over a TCP connection. */
export class TcpLink implements ByteLink {
  readonly name: string;
  readonly clock: Clock = realClock;
  readonly hasModemLines = false;
  #conn: Deno.Conn;
  #baud: number;
  #chunks = new ChunkQueue();
  #ended = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #pump: Promise<void>;
  /** The first bytes received, to recognise the emulator's busy notice. */
  #head = new Uint8Array(BUSY_BYTES.length);
  #headLength = 0;

  /** Wrap a connected socket; starts receiving at once. */
  constructor(name: string, conn: Deno.Conn, baud: number) {
    this.name = name;
    this.#conn = conn;
    this.#baud = baud;
    this.#pump = this.#receive();
  }

  get baud(): number {
    return this.#baud;
  }

  async #receive(): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        const take = Math.min(n, this.#head.length - this.#headLength);
        this.#head.set(buf.subarray(0, take), this.#headLength);
        this.#headLength += take;
        this.#chunks.push(buf.slice(0, n));
        this.#notify();
      }
    } catch {
      // a reset or a local close ends the stream the same way as an orderly close
    }
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
    if (this.#chunks.empty && !this.#ended && timeoutMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    if (this.#chunks.empty) {
      if (this.#closed) throw new LinkClosedError(this.name, "port closed");
      if (this.#ended && this.#turnedAway()) throw this.#busy();
      if (this.#ended) throw new LinkClosedError(this.name, "the bridge closed the connection");
      return new Uint8Array(0);
    }
    return this.#chunks.take(Math.max(1, max));
  }

  #busy(): FlashError {
    return new FlashError(
      "PORT",
      `${this.name} is busy: the emulator there is serving another client`,
      "let the other client finish (or stop it), then run the command again",
    );
  }

  /** Whether the far side sent the emulator's busy notice and nothing else. */
  #turnedAway(): boolean {
    return this.#headLength === BUSY_BYTES.length && this.#head.every((b, i) => b === BUSY_BYTES[i]);
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
    let at = 0;
    try {
      while (at < data.length) at += await this.#conn.write(data.subarray(at));
    } catch (e) {
      if (this.#turnedAway()) throw this.#busy();
      throw new LinkClosedError(this.name, (e as Error).message);
    }
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  flushInput(): Promise<void> {
    this.#chunks.clear();
    return Promise.resolve();
  }

  setBaud(baud: number): Promise<void> {
    this.#baud = baud;
    return Promise.resolve();
  }

  setSignals(_signals: ModemSignals): Promise<void> {
    return Promise.resolve();
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
