/**
 * Serve one emulated {@link UartDevice} to other programs: over a pseudo-terminal (any serial
 * client opens the slave path as if it were a USB-UART adapter) or over loopback TCP (as a
 * serial bridge would).
 *
 * Time: the device runs on the server's clock, milliseconds since the server started. With
 * `pace: "wire"` (the default) a reply leaves at the time the device stamped on it and its
 * bytes trickle out at 10 bits per byte at its baud rate, so a client sees the timing of a
 * real chip on a real wire. With `pace: "none"` replies go out as soon as the device has
 * them and the device's clock jumps ahead to their end instead; only a reply at a new baud
 * rate (the SetBaudRate answer) still waits its own delay, so a client switching its UART
 * in between hears it.
 *
 * Baud rates: on a PTY the server reads the client's termios before each chunk in either
 * direction; when the client's rate and the device's differ, the bytes are garbled as a UART
 * would garble them ({@link misheard}). TCP carries no rate, so nothing is garbled there.
 *
 * Resets: DTR/RTS cannot reach a PTY or a socket, so the device is reset when a client opens
 * the PTY or connects; otherwise it runs as its own logic dictates (`reboot` text, link-check
 * reboots).
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { EMULATOR_BUSY_NOTICE } from "../core/io/tcp.ts";
import { wireMs } from "../core/timing.ts";
import { misheard } from "./baud_mismatch.ts";
import { Pty } from "./pty.ts";
import type { TxChunk, UartDevice } from "./uart_device.ts";
import { baudsMatch } from "./wire.ts";

/** How replies are timed: "wire" = real time at the line rate; "none" = at once. */
export type Pace = "wire" | "none";

/** Options of {@link servePty} and {@link serveTcp}. */
export interface ServeOptions {
  /** Default "wire". */
  pace?: Pace;
  /** One line per session event (client arriving or leaving, a baud mismatch starting). */
  log?: (line: string) => void;
  /** Called after each client has gone (a good moment to save the chip's state). */
  onDisconnect?: () => void;
}

/** A running server. */
export interface EmulatorServer {
  /** The PTY slave path, or `tcp://127.0.0.1:<port>`. */
  readonly address: string;
  /** The device's current time (ms on the server's clock), for logs. */
  now(): number;
  /** Resolves when the server has stopped. */
  readonly done: Promise<void>;
  /** Stop serving: the client sees the device disappear. Safe to call twice. */
  close(): Promise<void>;
}

/** Longest stretch of a paced reply written in one go (ms of wire time). */
const SLICE_MS = 4;
/** How long a new TCP client waits for the previous one's session to wind down. */
const HANDOVER_MS = 250;
/** Longest a baud-switch reply is held back with `pace: "none"`. */
const MAX_SWITCH_HOLD_MS = 1000;

/**
 * Serve `device` on a new pseudo-terminal (Linux). The address is the slave path.
 *
 * @example
 * ```ts
 * import type { UartDevice } from "./uart_device.ts";
 * declare const chip: UartDevice;
 * const server = servePty(chip);
 * console.log(server.address); // /dev/pts/5
 * await server.done;
 * ```
 */
export function servePty(device: UartDevice, options: ServeOptions = {}): EmulatorServer {
  const pty = Pty.open();
  const clock = new ServerClock();
  const log = options.log ?? (() => {});
  const channel: Channel = {
    async receive() {
      for (;;) {
        const ev = await pty.next();
        if (ev === "connected") continue;
        if (ev !== "data") return null;
        const data = pty.read(65536);
        if (data.length) return data;
      }
    },
    send: (data) => pty.write(data),
    clientBaud: () => pty.clientBaud(),
  };
  const done = (async () => {
    for (let ev = await pty.next(); ev !== "closed"; ev = await pty.next()) {
      if (ev !== "connected") continue;
      log(`client opened ${pty.path} at ${pty.clientBaud()} baud; chip reset`);
      await runSession(device, channel, clock, options.pace ?? "wire", log);
      log("client closed the port");
      options.onDisconnect?.();
    }
  })();
  return {
    address: pty.path,
    now: () => clock.now(),
    done,
    async close() {
      await pty.close();
      await done;
    },
  };
}

/**
 * Parse `--tcp` (`127.0.0.1:7231`, `localhost:0`, `[::1]:0`). Only loopback addresses are
 * accepted: the emulator is a test fixture, not a network service.
 *
 * @throws {FlashError} code "USAGE" for other addresses or a malformed value.
 */
export function parseListenAddress(text: string): { hostname: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new FlashError(
      "USAGE",
      `--tcp "${text}" is not host:port`,
      "write --tcp 127.0.0.1:7231 (port 0 picks one)",
    );
  }
  const host = m[1].replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost") return { hostname: "127.0.0.1", port };
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "::1") return { hostname: host, port };
  throw new FlashError(
    "USAGE",
    `refusing to listen on ${host}: the emulator serves loopback only`,
    "use --tcp 127.0.0.1:<port>; reach it from elsewhere through an SSH tunnel if you must",
  );
}

/**
 * Serve `device` on a loopback TCP port, one client at a time: a client arriving while another
 * is connected is disconnected (after a short grace period, in case the other one has just
 * left). The address is `tcp://<host>:<port>` with the port actually bound.
 *
 * @throws {FlashError} code "USAGE" for a non-loopback host.
 */
export function serveTcp(
  device: UartDevice,
  listen: { hostname?: string; port?: number } = {},
  options: ServeOptions = {},
): EmulatorServer {
  const { hostname, port } = parseListenAddress(
    `${formatHost(listen.hostname ?? "127.0.0.1")}:${listen.port ?? 0}`,
  );
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  const address = `tcp://${formatHost(hostname)}:${listener.addr.port}`;
  const clock = new ServerClock();
  const log = options.log ?? (() => {});
  let current: Deno.Conn | null = null;
  let session: Promise<void> = Promise.resolve();
  const turnedAway = new Map<Deno.Conn, Promise<void>>();
  const done = (async () => {
    try {
      for await (const conn of listener) {
        // a client that just hung up may not have been noticed yet: give its session a moment
        if (current) await settleWithin(session, HANDOVER_MS);
        if (current) {
          log("a second client was turned away (one client at a time)");
          const away = turnAway(conn).finally(() => turnedAway.delete(conn));
          turnedAway.set(conn, away);
          continue;
        }
        current = conn;
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // the replies still arrive, only later
        }
        log(`client connected from ${describeAddr(conn.remoteAddr)}; chip reset`);
        session = runSession(device, tcpChannel(conn), clock, options.pace ?? "wire", log).finally(() => {
          closeQuietly(conn);
          current = null;
          log("client disconnected");
          options.onDisconnect?.();
        });
      }
    } catch {
      // the listener was closed
    }
    await session;
  })();
  return {
    address,
    now: () => clock.now(),
    done,
    async close() {
      try {
        listener.close();
      } catch {
        // closed already
      }
      if (current) closeQuietly(current);
      const away = [...turnedAway.values()];
      for (const conn of turnedAway.keys()) closeQuietly(conn);
      await Promise.all(away);
      await done;
    },
  };
}

/** Wait for `p` to settle, or `ms` at most. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A host for an address: IPv6 literals in brackets. */
export function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** `host:port` of a peer, for logs. */
export function describeAddr(addr: Deno.Addr): string {
  return addr.transport === "tcp" ? `${formatHost(addr.hostname)}:${addr.port}` : addr.transport;
}

/** How long a turned-away client may keep writing before its connection is closed. */
const TURN_AWAY_MS = 3000;

/**
 * Tell a client the emulator is busy (bekenlab's TCP link recognises the notice) and end our
 * side of the stream; what the client still sends is read and dropped until it hangs up, so
 * its writes do not fail (a reset could discard the notice before the client reads it).
 */
async function turnAway(conn: Deno.Conn): Promise<void> {
  const notice = new TextEncoder().encode(EMULATOR_BUSY_NOTICE);
  const timer = setTimeout(() => closeQuietly(conn), TURN_AWAY_MS);
  try {
    for (let at = 0; at < notice.length;) at += await conn.write(notice.subarray(at));
    await conn.closeWrite();
    const sink = new Uint8Array(4096);
    while ((await conn.read(sink)) !== null) {
      // dropped
    }
  } catch {
    // gone, or closed by the timer
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Close a connection that may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

function tcpChannel(conn: Deno.Conn): Channel {
  const buf = new Uint8Array(65536);
  return {
    async receive() {
      try {
        const n = await conn.read(buf);
        return n === null ? null : buf.slice(0, n);
      } catch {
        return null;
      }
    },
    async send(data) {
      try {
        for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
        return true;
      } catch {
        return false;
      }
    },
    clientBaud: () => undefined,
  };
}

/** What a channel may do to its session beyond passing bytes. */
export interface SessionControl {
  /** Drop the device's replies not yet delivered (a purge of the bridge's receive buffer). */
  purgeOutput(): void;
}

/** One client's connection as a session sees it. */
export interface Channel {
  /** The next bytes from the client; `null` once it has gone. */
  receive(): Promise<Uint8Array | null>;
  /** Deliver bytes; `false` when the client has gone. */
  send(data: Uint8Array): Promise<boolean>;
  /** The client's current baud rate, where the transport shows it. */
  clientBaud(): number | undefined;
  /** Called once when the session starts, with what the channel may do to it. */
  attach?(control: SessionControl): void;
}

/**
 * The device's time: real milliseconds since start, plus however far `pace: "none"` has run
 * ahead. Time keeps flowing after a jump, so a chip reset while the clock is ahead still leaves
 * its reset state and opens its boot window (a frozen clock kept it in reset for good).
 */
export class ServerClock {
  #origin = performance.now();
  #ahead = 0;

  real(): number {
    return performance.now() - this.#origin;
  }

  now(): number {
    return this.real() + this.#ahead;
  }

  advanceTo(t: number): void {
    const lead = t - this.real();
    if (lead > this.#ahead) this.#ahead = lead;
  }
}

/** setTimeout-based sleeps that can all be ended at once (no timer outlives a session). */
class Sleeps {
  #pending = new Map<ReturnType<typeof setTimeout>, () => void>();

  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const id = setTimeout(() => {
        this.#pending.delete(id);
        resolve();
      }, ms);
      this.#pending.set(id, resolve);
    });
  }

  cancelAll(): void {
    for (const [id, resolve] of this.#pending) {
      clearTimeout(id);
      resolve();
    }
    this.#pending.clear();
  }
}

interface Queued {
  chunk: TxChunk;
  /** Device time the request that produced it finished arriving. */
  heardAt: number;
}

/** Run one client session until the client goes away (the chip is reset as it starts). */
export async function runSession(
  device: UartDevice,
  channel: Channel,
  clock: ServerClock,
  pace: Pace,
  log: (line: string) => void,
): Promise<void> {
  device.reset(clock.now());
  const queue: Queued[] = [];
  const sleeps = new Sleeps();
  let ended = false;
  const signal = { wake: (): void => {} };
  let rxFree = 0;
  channel.attach?.({ purgeOutput: () => void (queue.length = 0) });

  const mismatches = new Map<string, string>();
  const garbleFor = (data: Uint8Array, txBaud: number, rxBaud: number | undefined, direction: string) => {
    if (rxBaud === undefined || rxBaud <= 0 || baudsMatch(txBaud, rxBaud)) {
      mismatches.delete(direction);
      return data;
    }
    const line = `${direction}: sent at ${txBaud} baud, heard at ${rxBaud} baud; bytes garbled`;
    if (mismatches.get(direction) !== line) log(line);
    mismatches.set(direction, line);
    return misheard(data, txBaud, rxBaud);
  };

  const transmit = async () => {
    let wireFree = 0;
    let lastBaud = device.baudAt(clock.now());
    while (!ended) {
      const next = queue.shift();
      if (!next) {
        await new Promise<void>((resolve) => (signal.wake = resolve));
        continue;
      }
      const { chunk, heardAt } = next;
      const duration = wireMs(chunk.data.length, chunk.baud);
      if (pace === "wire") {
        const start = Math.max(chunk.at, wireFree);
        wireFree = start + duration;
        await sleeps.sleep(start - clock.real());
        if (ended) break;
        const data = garbleFor(chunk.data, chunk.baud, channel.clientBaud(), "chip → client");
        const slice = Math.max(1, Math.floor((data.length * SLICE_MS) / Math.max(duration, 1e-9)));
        // a slice leaves once its last byte is on the wire: a client cannot answer a reply before
        // it has ended (a loader that drops bytes while busy would lose that answer)
        for (let at = 0; at < data.length && !ended; at += slice) {
          const sent = Math.min(at + slice, data.length);
          await sleeps.sleep(start + (duration * sent) / data.length - clock.real());
          if (!ended) await channel.send(data.subarray(at, sent));
        }
      } else {
        if (chunk.baud !== lastBaud) {
          await sleeps.sleep(Math.min(MAX_SWITCH_HOLD_MS, chunk.at - heardAt));
          if (ended) break;
        }
        clock.advanceTo(chunk.at + duration);
        await channel.send(garbleFor(chunk.data, chunk.baud, channel.clientBaud(), "chip → client"));
      }
      lastBaud = chunk.baud;
    }
  };

  const sender = transmit();
  try {
    for (let data = await channel.receive(); data; data = await channel.receive()) {
      const clientBaud = channel.clientBaud();
      const t = clock.now();
      // bytes take their wire time in both paces: a loader that drops what arrives while it is
      // busy must not see a request begin before the reply that preceded it had ended
      const end = Math.max(t, rxFree) + wireMs(data.length, clientBaud || device.baudAt(t));
      if (pace === "none") clock.advanceTo(end);
      rxFree = end;
      const heard = clientBaud === undefined
        ? data
        : garbleFor(data, clientBaud, device.baudAt(end), "client → chip");
      for (const chunk of device.receive(heard, end)) {
        if (chunk.data.length) queue.push({ chunk, heardAt: end });
      }
      signal.wake();
    }
  } finally {
    ended = true;
    queue.length = 0;
    signal.wake();
    sleeps.cancelAll();
    await sender;
  }
}
