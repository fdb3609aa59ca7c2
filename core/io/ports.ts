/**
 * Finding serial ports without udev: on Linux from sysfs (`/sys/class/tty/<name>/device`, the
 * parent USB device's `idVendor`, `idProduct`, `manufacturer`, `product`, `serial`) plus the
 * `/dev/serial/by-id` links; on macOS the `/dev/cu.*` nodes; on Windows the registry's
 * `HARDWARE\DEVICEMAP\SERIALCOMM`. And choosing one when the user did not say.
 *
 * @module
 */

import { FlashError } from "../errors.ts";

/** A serial port found on this machine. */
export interface PortInfo {
  /** What to pass to `--port`: `/dev/ttyUSB0`, `/dev/cu.usbserial-1410`, `COM3`. */
  path: string;
  /** Which bus the port sits on; "usb" for USB-UART adapters. */
  kind: "usb" | "pci" | "pnp" | "platform" | "other";
  /** USB vendor ID. */
  vid?: number;
  /** USB product ID. */
  pid?: number;
  /** USB manufacturer string. */
  manufacturer?: string;
  /** USB product string. */
  product?: string;
  /** USB serial-number string (tells identical adapters apart). */
  serialNumber?: string;
  /** USB interface number (multi-port adapters). */
  interface?: number;
  /** Kernel driver (`ch341-uart`, `cp210x`, `ftdi_sio`, `cdc_acm`). */
  driver?: string;
  /** The stable `/dev/serial/by-id/…` link to this port. */
  byId?: string;
}

/** Where {@link listPorts} looks; tests point these at a fake tree. */
export interface ListOptions {
  /** sysfs mount point (default `/sys`). */
  sysRoot?: string;
  /** device directory (default `/dev`). */
  devRoot?: string;
  /** Operating system whose conventions to use (default: the running one). */
  os?: typeof Deno.build.os;
}

/**
 * The serial ports present, USB adapters first.
 *
 * @example
 * ```ts
 * for (const p of await listPorts()) console.log(describePort(p));
 * // /dev/ttyUSB0  1a86:7523  QinHeng Electronics USB Serial  by-id: /dev/serial/by-id/usb-1a86_USB_Serial-if00-port0
 * ```
 */
export async function listPorts(options: ListOptions = {}): Promise<PortInfo[]> {
  const os = options.os ?? Deno.build.os;
  const devRoot = options.devRoot ?? "/dev";
  let ports: PortInfo[];
  if (os === "windows") ports = await listWindows();
  else if (os === "darwin") ports = await listDarwin(devRoot);
  else ports = await listLinux(options.sysRoot ?? "/sys", devRoot);
  return ports.sort(byKindThenPath);
}

function byKindThenPath(a: PortInfo, b: PortInfo): number {
  const ka = a.kind === "usb" ? 0 : 1;
  const kb = b.kind === "usb" ? 0 : 1;
  return ka - kb || a.path.localeCompare(b.path, "en", { numeric: true });
}

async function listLinux(sysRoot: string, devRoot: string): Promise<PortInfo[]> {
  const byId = await byIdLinks(`${devRoot}/serial/by-id`);
  const devices = (await realPath(`${sysRoot}/devices`)) ?? `${sysRoot}/devices`;
  const out: PortInfo[] = [];
  for (const name of await dirNames(`${sysRoot}/class/tty`)) {
    let device = await realPath(`${sysRoot}/class/tty/${name}/device`);
    if (!device) continue;
    let subsystem = await linkName(`${device}/subsystem`);
    // since Linux 6.5 an 8250-style tty hangs off serial-base port/controller devices
    while (subsystem === "serial-base" && device.length > devices.length) {
      device = parent(device);
      subsystem = await linkName(`${device}/subsystem`);
    }
    const driver = await linkName(`${device}/driver`);
    // the 8250 driver registers placeholder ttyS0..ttyS31 whether or not a UART is there
    if (driver === "serial8250") continue;
    const port: PortInfo = { path: `${devRoot}/${name}`, kind: kindOf(subsystem) };
    if (driver) port.driver = driver;
    const usb = await usbAncestor(device, devices);
    if (usb) {
      port.kind = "usb";
      port.vid = parseInt((await readText(`${usb.device}/idVendor`)) ?? "", 16);
      port.pid = parseInt((await readText(`${usb.device}/idProduct`)) ?? "", 16);
      const manufacturer = await readText(`${usb.device}/manufacturer`);
      const product = await readText(`${usb.device}/product`);
      const serial = await readText(`${usb.device}/serial`);
      if (manufacturer) port.manufacturer = manufacturer;
      if (product) port.product = product;
      if (serial) port.serialNumber = serial;
      const ifnum = usb.iface ? await readText(`${usb.iface}/bInterfaceNumber`) : undefined;
      if (ifnum) port.interface = parseInt(ifnum, 16);
    }
    const link = byId.get(name);
    if (link) port.byId = link;
    out.push(port);
  }
  return out;
}

function kindOf(subsystem: string | undefined): PortInfo["kind"] {
  switch (subsystem) {
    case "usb":
    case "usb-serial":
      return "usb";
    case "pci":
    case "pnp":
    case "platform":
      return subsystem;
    default:
      return "other";
  }
}

/** The USB device (the directory with `idVendor`) above `device`, and the interface below it. */
async function usbAncestor(
  device: string,
  stop: string,
): Promise<{ device: string; iface?: string } | undefined> {
  let child: string | undefined;
  for (let dir = device; dir.startsWith(stop) && dir.length > stop.length; dir = parent(dir)) {
    if (await readText(`${dir}/idVendor`)) return { device: dir, iface: child };
    child = dir;
  }
  return undefined;
}

function parent(path: string): string {
  return path.slice(0, Math.max(0, path.lastIndexOf("/"))) || "/";
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Map tty name → by-id link path. */
async function byIdLinks(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await dirNames(dir)) {
    try {
      out.set(basename(await Deno.readLink(`${dir}/${name}`)), `${dir}/${name}`);
    } catch {
      // not a link
    }
  }
  return out;
}

async function listDarwin(devRoot: string): Promise<PortInfo[]> {
  const skip = /^cu\.(Bluetooth-Incoming-Port|debug-console|wlan-debug)/;
  return (await dirNames(devRoot))
    .filter((n) => n.startsWith("cu.") && !skip.test(n))
    .map((n) => ({
      path: `${devRoot}/${n}`,
      kind: /usb|wch|slab/i.test(n) ? "usb" as const : "other" as const,
    }));
}

async function listWindows(): Promise<PortInfo[]> {
  try {
    const out = await new Deno.Command("reg", {
      args: ["query", "HKLM\\HARDWARE\\DEVICEMAP\\SERIALCOMM"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return parseSerialComm(new TextDecoder().decode(out.stdout));
  } catch {
    return [];
  }
}

/**
 * Ports from `reg query HKLM\HARDWARE\DEVICEMAP\SERIALCOMM` output: one
 * `\Device\<driver name>    REG_SZ    COMn` line per port.
 */
export function parseSerialComm(text: string): PortInfo[] {
  const out: PortInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s+(\S+)\s+REG_SZ\s+(COM\d+)\s*$/i.exec(line);
    if (!m) continue;
    const usb = /usb|vcp|silab|ch34|ch9102|wch|cp210|ftdi|prolific|ser2pl/i.test(m[1]);
    out.push({
      path: m[2].toUpperCase(),
      kind: usb ? "usb" : "other",
      driver: basename(m[1].replace(/\\/g, "/")),
    });
  }
  return out;
}

/**
 * One line for `list-ports`: path, VID:PID, manufacturer and product, serial, by-id link.
 *
 * @example
 * ```ts
 * describePort({ path: "/dev/ttyUSB0", kind: "usb", vid: 0x1a86, pid: 0x7523 }); // "/dev/ttyUSB0  1a86:7523"
 * ```
 */
export function describePort(p: PortInfo): string {
  const parts = [p.path];
  if (p.vid !== undefined && p.pid !== undefined) parts.push(`${hex4(p.vid)}:${hex4(p.pid)}`);
  const label = [p.manufacturer, p.product].filter(Boolean).join(" ");
  if (label) parts.push(label);
  if (p.serialNumber) parts.push(`serial ${p.serialNumber}`);
  if (p.kind !== "usb") parts.push(`(${p.driver ?? p.kind})`);
  if (p.byId) parts.push(`by-id: ${p.byId}`);
  return parts.join("  ");
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/**
 * The port to use when the user gave no `--port`: the one USB serial adapter present.
 *
 * @throws {FlashError} code "PORT" when there is none or more than one, listing the ports and
 * how to choose.
 */
export function choosePort(ports: readonly PortInfo[]): PortInfo {
  const usb = ports.filter((p) => p.kind === "usb");
  if (usb.length === 1) return usb[0];
  const how = "choose one with --port <path>" +
    (ports.length ? ` (e.g. --port ${(usb[0] ?? ports[0]).path})` : "") +
    "; `deno task flash list-ports` shows details. No hardware at hand? Try the emulator: " +
    "--port virtual:<chip>, e.g. --port virtual:bk7231n";
  if (usb.length > 1) {
    throw new FlashError(
      "PORT",
      `${usb.length} USB serial ports found: ${usb.map(describePort).join("; ")}`,
      how,
    );
  }
  const others = ports.length ? ` (other serial ports: ${ports.map((p) => p.path).join(", ")})` : "";
  throw new FlashError(
    "PORT",
    `no USB serial adapter found${others}`,
    `plug in the USB-UART adapter, or ${how.charAt(0).toLowerCase()}${how.slice(1)}`,
  );
}

async function dirNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch {
    // a missing directory lists nothing
  }
  return out;
}

async function realPath(path: string): Promise<string | undefined> {
  try {
    return await Deno.realPath(path);
  } catch {
    return undefined;
  }
}

async function linkName(path: string): Promise<string | undefined> {
  const target = await realPath(path);
  return target ? basename(target) : undefined;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}
