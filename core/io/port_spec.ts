/**
 * Port specifications as `--port` accepts them.
 *
 * | spec | meaning |
 * |---|---|
 * | (none) | the only likely serial adapter, or a prompt |
 * | `virtual:<chip>` | the in-process emulator |
 * | `/dev/ttyUSB0`, `COM3` | a serial port (UART boot protocol) |
 * | `tcp://host:port` | a serial bridge or the emulator's TCP server |
 * | `rfc2217://host:port` | a serial port shared with RFC 2217 (ser2net, labgrid, `emulate --rfc2217`) |
 * | `ch341a`, `ch341a:<n>` | the first / n-th CH341A programmer (SPI) |
 * | `ch341a:virtual:<chip>` | a virtual CH341A wired to a virtual chip (SPI) |
 * | `spidev:/dev/spidevX.Y` | Linux spidev + GPIO (SPI) |
 *
 * @module
 */

import { chipById, CHIPS } from "../chips/profiles.ts";
import { FlashError } from "../errors.ts";
import { portKind } from "./registry.ts";

/** A parsed `--port`. */
export type PortSpec =
  | { kind: "auto" }
  | { kind: "virtual"; chip: string }
  | { kind: "serial"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "rfc2217"; host: string; port: number }
  | { kind: "ch341a"; index: number }
  | { kind: "ch341a-virtual"; chip: string }
  | { kind: "spidev"; path: string };

const FORMS =
  "virtual:<chip>, /dev/ttyUSB0, COM3, tcp://host:port, rfc2217://host:port, ch341a[:<n>], ch341a:virtual:<chip>, spidev:/dev/spidevX.Y";

function usage(spec: string, why: string): FlashError {
  return new FlashError("USAGE", `--port "${spec}": ${why}`, `write --port as one of: ${FORMS}`);
}

function virtualChip(spec: string, id: string): string {
  if (!id) throw usage(spec, "no chip after virtual:");
  const profile = chipById(id);
  if (!profile) {
    throw new FlashError(
      "USAGE",
      `--port "${spec}": unknown chip "${id}"`,
      `use one of: ${CHIPS.map((c) => c.id).join(", ")}`,
    );
  }
  return profile.id;
}

/**
 * Parse a `--port` value.
 *
 * @example
 * ```ts
 * parsePortSpec("virtual:bk7231n"); // { kind: "virtual", chip: "bk7231n" }
 * parsePortSpec("tcp://127.0.0.1:7231"); // { kind: "tcp", host: "127.0.0.1", port: 7231 }
 * ```
 */
export function parsePortSpec(spec: string | undefined): PortSpec {
  if (spec === undefined || spec === "") return { kind: "auto" };
  const lower = spec.toLowerCase();
  if (lower.startsWith("virtual:")) return { kind: "virtual", chip: virtualChip(spec, spec.slice(8)) };
  if (lower.startsWith("ch341a:virtual:")) {
    return { kind: "ch341a-virtual", chip: virtualChip(spec, spec.slice(15)) };
  }
  if (lower === "ch341a") return { kind: "ch341a", index: 0 };
  if (lower.startsWith("ch341a:")) {
    const n = spec.slice(7);
    if (!/^\d+$/.test(n)) throw usage(spec, "expected ch341a:<n> with n a number (0 = first programmer)");
    return { kind: "ch341a", index: Number(n) };
  }
  if (lower.startsWith("spidev:")) {
    const path = spec.slice(7);
    if (!path) throw usage(spec, "no device after spidev:");
    return { kind: "spidev", path };
  }
  if (lower.startsWith("tcp://")) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/i.exec(spec);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) throw usage(spec, "expected tcp://host:port");
    return { kind: "tcp", host: m[1].replace(/^\[|\]$/g, ""), port };
  }
  if (lower.startsWith("rfc2217://")) {
    const m = /^rfc2217:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/i.exec(spec);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) throw usage(spec, "expected rfc2217://host:port");
    return { kind: "rfc2217", host: m[1].replace(/^\[|\]$/g, ""), port };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw usage(spec, "unknown scheme");
  return { kind: "serial", path: spec };
}

/** Whether the port speaks SPI (raw flash) rather than the UART boot protocol (its registry row says). */
export function isSpiPort(spec: PortSpec): boolean {
  return portKind(spec).bus === "spi";
}

/** Whether the chip behind the port is the emulator (its registry row says). */
export function isVirtualPort(spec: PortSpec): spec is Extract<PortSpec, { chip: string }> {
  return portKind(spec).virtual;
}
