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
import { Pty } from "./pty.ts";
import { type Channel, type Pace, runSession, ServerClock } from "./serve_session.ts";
import type { UartDevice } from "./uart_device.ts";

export { type Channel, type Pace, runSession, ServerClock, type SessionControl } from "./serve_session.ts";

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

/** How long a new TCP client waits for the previous one's session to wind down. */
const HANDOVER_MS = 250;

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
  return serveConnections(device, "tcp", listen, options, {
    channelFor: (conn) => ({ channel: tcpChannel(conn) }),
    turnAway,
  });
}

/** How {@link serveConnections} turns a connection into a session. */
export interface ConnectionServing {
  /** The channel over `conn`, and what to do when its session has ended. */
  channelFor(conn: Deno.Conn): { channel: Channel; end?: () => void };
  /** What a second client gets while one is served (default: its connection is closed at once). */
  turnAway?: (conn: Deno.Conn) => Promise<void>;
}

/**
 * Listen on loopback and serve `device` to one client at a time over a `scheme://host:port`
 * address: the accept loop of the TCP and RFC 2217 servers. A second client is turned away
 * (after a short grace period, in case the other one has just left).
 *
 * @throws {FlashError} code "USAGE" for a non-loopback host.
 */
export function serveConnections(
  device: UartDevice,
  scheme: string,
  listen: { hostname?: string; port?: number },
  options: ServeOptions,
  serving: ConnectionServing,
): EmulatorServer {
  const { hostname, port } = parseListenAddress(
    `${formatHost(listen.hostname ?? "127.0.0.1")}:${listen.port ?? 0}`,
  );
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  const address = `${scheme}://${formatHost(hostname)}:${listener.addr.port}`;
  const clock = new ServerClock();
  const log = options.log ?? (() => {});
  const away = serving.turnAway ?? ((conn: Deno.Conn) => Promise.resolve(closeQuietly(conn)));
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
          const gone = away(conn).finally(() => turnedAway.delete(conn));
          turnedAway.set(conn, gone);
          continue;
        }
        current = conn;
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // the replies still arrive, only later
        }
        log(`client connected from ${describeAddr(conn.remoteAddr)}; chip reset`);
        const { channel, end } = serving.channelFor(conn);
        session = runSession(device, channel, clock, options.pace ?? "wire", log).finally(() => {
          end?.();
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
      const gone = [...turnedAway.values()];
      for (const conn of turnedAway.keys()) closeQuietly(conn);
      await Promise.all(gone);
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
