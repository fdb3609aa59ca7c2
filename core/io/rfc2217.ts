/**
 * `rfc2217://host:port` targets: a serial port shared over the network by a bridge speaking
 * telnet with the COM-PORT-OPTION of RFC 2217 (ser2net's `telnet(rfc2217)` accepter, the
 * NetworkSerialPort of a labgrid place, `deno task emulate --rfc2217`). Unlike `tcp://`, the
 * link switches the remote UART's baud rate, drives DTR/RTS, purges the bridge's buffer and
 * hears its modem-state notifications, so baud switching and resets work as on a local adapter.
 *
 * Servers that take the option but never confirm modem control (ser2net on a pseudo-terminal
 * confirms no SET-CONTROL) are tolerated: the first unconfirmed DTR/RTS change is reported once
 * and the link then behaves as one without modem lines. This module parses the address and
 * opens the link (`rfc2217_link.ts`). Facts: docs/rfc2217.md.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { Rfc2217Link, type Rfc2217Options } from "./rfc2217_link.ts";
import { dialTcp } from "./tcp.ts";

export { type ModemControl, Rfc2217Link, type Rfc2217Options } from "./rfc2217_link.ts";

/** Host and port of an `rfc2217://host:port` address (IPv6 literals in brackets). */
export function parseRfc2217Url(url: string): { hostname: string; port: number } {
  const m = /^rfc2217:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]?]+):(\d{1,5})\/?$/i.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new FlashError(
      "USAGE",
      `"${url}" is not an rfc2217://host:port address`,
      "write it as rfc2217://192.168.1.50:4001",
    );
  }
  return { hostname: m[1].replace(/^\[|\]$/g, ""), port };
}

/**
 * Connect to an RFC 2217 server and agree on serial port control; the remote UART is set to
 * `options.baud`, 8 data bits, no parity, one stop bit, no flow control.
 *
 * @throws {FlashError} code "PORT" when nothing answers at the address, when the server refuses
 * the COM-PORT-OPTION or answers no telnet negotiation (a raw TCP port), or when it closes the
 * connection while negotiating.
 *
 * @example
 * ```ts
 * const link = await openRfc2217("rfc2217://127.0.0.1:4001", { onNotice: console.error });
 * await link.setBaud(921600);
 * await link.close();
 * ```
 */
export async function openRfc2217(url: string, options: Rfc2217Options = {}): Promise<Rfc2217Link> {
  const { hostname, port } = parseRfc2217Url(url);
  const conn = await dialTcp(url, hostname, port, {
    timeoutMs: options.connectTimeoutMs,
    what: "the RFC 2217 server",
    remedy: "check the bridge (ser2net) is running and reachable and the host and port are right; " +
      "for the emulator run `deno task emulate --rfc2217 127.0.0.1:0` and pass the address it prints",
  });
  const link = new Rfc2217Link(url, conn, options);
  try {
    await link.start(options.baud ?? 115200, options.negotiationTimeoutMs ?? 3000);
  } catch (e) {
    await link.close();
    throw e;
  }
  return link;
}
