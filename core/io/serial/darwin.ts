/**
 * Serial ports on macOS through Deno FFI on libSystem: non-blocking descriptor, `flock` plus
 * TIOCEXCL, raw 8N1 through `tcsetattr` on a packed `struct termios` (64-bit `tcflag_t` and
 * `speed_t`), rates outside the termios table through the IOSSIOSPEED ioctl, and waits in
 * `select(2)` on a worker thread next to a pipe that `close()` writes to (macOS `poll` does not
 * serve tty devices reliably; `select` does).
 *
 * Written against the macOS headers' values; it cannot run on the Linux machines this project
 * is built on, so only the packing helpers are unit-tested (tests/serial_test.ts).
 *
 * Longer than 400 lines because it is one platform backend: its FFI symbol table, struct
 * packing, open/configure sequence and the link's operations all depend on the same libSystem
 * ABI, and kept together they read against one header set (as the Linux and Windows backends do).
 *
 * @module
 */

import { FlashError } from "../../errors.ts";
import { LinkClosedError } from "../link.ts";
import { type IoResult, type PosixPort, PosixSerialLink, type WaitResult } from "./posix_link.ts";

/** `open(2)` flags on macOS. */
export const DarwinOpen = { O_RDWR: 0x2, O_NONBLOCK: 0x4, O_NOCTTY: 0x20000, O_CLOEXEC: 0x1000000 } as const;

/** errno values on macOS. */
export const DarwinErrno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  EAGAIN: 35,
  ENOTSUP: 45,
  EOPNOTSUPP: 102,
} as const;

/** BSD `_IOC` encoding: direction, group letter, number and argument size. */
export function iocNumber(dir: "none" | "in" | "out", group: string, num: number, size: number): bigint {
  const d = dir === "none" ? 0x20000000 : dir === "in" ? 0x80000000 : 0x40000000;
  return BigInt((d | ((size & 0x1fff) << 16) | (group.charCodeAt(0) << 8) | num) >>> 0);
}

/** ioctl request numbers (from `<sys/ttycom.h>`, `<IOKit/serial/ioss.h>`, `<sys/filio.h>`). */
export const DarwinIoctl = {
  TIOCEXCL: iocNumber("none", "t", 13, 0),
  TIOCSBRK: iocNumber("none", "t", 123, 0),
  TIOCCBRK: iocNumber("none", "t", 122, 0),
  TIOCMGET: iocNumber("out", "t", 106, 4),
  TIOCMBIS: iocNumber("in", "t", 108, 4),
  TIOCMBIC: iocNumber("in", "t", 107, 4),
  IOSSIOSPEED: iocNumber("in", "T", 2, 8),
  FIOCLEX: iocNumber("none", "f", 1, 0),
} as const;

/** Modem bits of TIOCMBIS/TIOCMBIC. */
export const DarwinModem = { TIOCM_DTR: 0x2, TIOCM_RTS: 0x4 } as const;

/** `c_cflag` bits on macOS. */
export const DarwinCflag = {
  CSIZE: 0x300,
  CS8: 0x300,
  CSTOPB: 0x400,
  CREAD: 0x800,
  PARENB: 0x1000,
  PARODD: 0x2000,
  HUPCL: 0x4000,
  CLOCAL: 0x8000,
  CCTS_OFLOW: 0x10000,
  CRTS_IFLOW: 0x20000,
} as const;

/** IGNBRK BRKINT PARMRK ISTRIP INLCR IGNCR ICRNL IXON IXOFF IXANY INPCK. */
const RAW_IFLAG_OFF = 0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x10;
/** OPOST. */
const RAW_OFLAG_OFF = 0x1;
/** ECHOKE ECHOE ECHOK ECHO ECHONL ISIG ICANON IEXTEN. */
const RAW_LFLAG_OFF = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x80 | 0x100 | 0x400;
/** Index of VMIN in c_cc. */
export const DARWIN_VMIN = 16;
/** Index of VTIME in c_cc. */
export const DARWIN_VTIME = 17;
/** `tcflush` queue selector: input. */
const TCIFLUSH = 1;
/** `tcflush` queue selector: output. */
const TCOFLUSH = 2;
/** `tcsetattr` action: now. */
const TCSANOW = 0;

/** Size of the 64-bit macOS `struct termios`. */
export const DARWIN_TERMIOS_SIZE = 72;

/** A decoded macOS `struct termios`. */
export interface DarwinTermios {
  /** Input modes (c_iflag). */
  iflag: number;
  /** Output modes (c_oflag). */
  oflag: number;
  /** Control modes (c_cflag). */
  cflag: number;
  /** Local modes (c_lflag). */
  lflag: number;
  /** The 20 control characters. */
  cc: Uint8Array;
  /** Input rate (speed_t is the rate itself on macOS). */
  ispeed: number;
  /** Output rate. */
  ospeed: number;
}

/** Decode the bytes `tcgetattr` filled in. */
export function unpackDarwinTermios(raw: Uint8Array): DarwinTermios {
  const v = new DataView(raw.buffer, raw.byteOffset, DARWIN_TERMIOS_SIZE);
  const u64 = (at: number) => Number(v.getBigUint64(at, true));
  return {
    iflag: u64(0),
    oflag: u64(8),
    cflag: u64(16),
    lflag: u64(24),
    cc: raw.slice(32, 52),
    ispeed: u64(56),
    ospeed: u64(64),
  };
}

/** Encode a termios for `tcsetattr`. */
export function packDarwinTermios(t: DarwinTermios): Uint8Array {
  const raw = new Uint8Array(DARWIN_TERMIOS_SIZE);
  const v = new DataView(raw.buffer);
  const u64 = (at: number, x: number) => v.setBigUint64(at, BigInt(x), true);
  u64(0, t.iflag);
  u64(8, t.oflag);
  u64(16, t.cflag);
  u64(24, t.lflag);
  raw.set(t.cc.subarray(0, 20), 32);
  u64(56, t.ispeed);
  u64(64, t.ospeed);
  return raw;
}

/** Rates `struct termios` can carry directly on macOS (speed_t is the rate itself). */
export const DARWIN_TERMIOS_RATES: ReadonlySet<number> = new Set([
  50,
  75,
  110,
  134,
  150,
  200,
  300,
  600,
  1200,
  1800,
  2400,
  4800,
  7200,
  9600,
  14400,
  19200,
  28800,
  38400,
  57600,
  76800,
  115200,
  230400,
]);

/**
 * Raw 8N1 without flow control, VMIN=1/VTIME=0. The termios speed is `baud` when the table
 * has it, else 9600 as a placeholder that IOSSIOSPEED then overrides.
 */
export function darwinRawTermios(t: DarwinTermios, baud: number): DarwinTermios {
  const c = DarwinCflag;
  const cc = t.cc.slice();
  cc[DARWIN_VMIN] = 1;
  cc[DARWIN_VTIME] = 0;
  const speed = DARWIN_TERMIOS_RATES.has(baud) ? baud : 9600;
  return {
    iflag: t.iflag & ~RAW_IFLAG_OFF,
    oflag: t.oflag & ~RAW_OFLAG_OFF,
    cflag: ((t.cflag & ~(c.CSIZE | c.CSTOPB | c.PARENB | c.PARODD | c.CCTS_OFLOW | c.CRTS_IFLOW)) |
      c.CS8 | c.CREAD | c.CLOCAL) >>> 0,
    lflag: t.lflag & ~RAW_LFLAG_OFF,
    cc,
    ispeed: speed,
    ospeed: speed,
  };
}

/** An `fd_set` (1024 bits in 32-bit words) with `fds` set. */
export function darwinFdSet(fds: readonly number[]): Uint8Array {
  const raw = new Uint8Array(128);
  const v = new DataView(raw.buffer);
  for (const fd of fds) {
    if (fd < 0 || fd >= 1024) throw new RangeError(`descriptor ${fd} does not fit an fd_set`);
    const at = 4 * (fd >> 5);
    v.setUint32(at, v.getUint32(at, true) | (1 << (fd & 31)), true);
  }
  return raw;
}

/** Whether select(2) left `fd` set in `set`. */
export function darwinFdIsSet(set: Uint8Array, fd: number): boolean {
  return (new DataView(set.buffer, set.byteOffset).getUint32(4 * (fd >> 5), true) & (1 << (fd & 31))) !== 0;
}

/** A `struct timeval` (64-bit seconds, 32-bit microseconds, padded to 16 bytes). */
export function darwinTimeval(ms: number): Uint8Array {
  const raw = new Uint8Array(16);
  const v = new DataView(raw.buffer);
  const whole = Math.max(0, Math.floor(ms));
  v.setBigInt64(0, BigInt(Math.floor(whole / 1000)), true);
  v.setInt32(8, (whole % 1000) * 1000, true);
  return raw;
}

/**
 * Parameters for `ioctl(int, unsigned long, ...)` with one pointer argument. On Apple arm64
 * variadic arguments go on the stack, after the eight integer registers: six dummy integers
 * fill x2–x7 so the pointer lands where the callee looks. On x86_64 they travel in registers
 * like named arguments.
 */
export function darwinIoctlParameters(arch: string): Deno.NativeType[] {
  return arch === "aarch64"
    ? ["i32", "usize", "usize", "usize", "usize", "usize", "usize", "usize", "buffer"]
    : ["i32", "usize", "buffer"];
}

function darwinSymbols(arch: string) {
  return {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
    write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
    flock: { parameters: ["i32", "i32"], result: "i32" },
    pipe: { parameters: ["buffer"], result: "i32" },
    select: { parameters: ["i32", "buffer", "buffer", "buffer", "buffer"], result: "i32", nonblocking: true },
    tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
    tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
    tcflush: { parameters: ["i32", "i32"], result: "i32" },
    tcdrain: { parameters: ["i32"], result: "i32", nonblocking: true },
    ioctlVoid: { name: "ioctl", parameters: ["i32", "usize"], result: "i32" },
    ioctlPtr: { name: "ioctl", parameters: darwinIoctlParameters(arch), result: "i32" },
    __error: { parameters: [], result: "pointer" },
  } as const;
}

type DarwinLibc = Deno.DynamicLibrary<ReturnType<typeof darwinSymbols>>["symbols"];

let loaded: DarwinLibc | undefined;

function libSystem(): DarwinLibc {
  if (loaded) return loaded;
  try {
    const symbols = darwinSymbols(Deno.build.arch) as unknown as Deno.ForeignLibraryInterface;
    loaded = Deno.dlopen("/usr/lib/libSystem.B.dylib", symbols).symbols as unknown as DarwinLibc;
    return loaded;
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new FlashError(
        "PORT",
        "serial ports need FFI access, which this process was not given",
        "run with --allow-ffi",
        {
          cause: e,
        },
      );
    }
    throw e;
  }
}

function errnoOf(libc: DarwinLibc): number {
  const p = libc.__error();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** Call the pointer-argument ioctl with the platform's calling convention. */
function ioctlPtr(libc: DarwinLibc, fd: number, request: bigint, arg: Uint8Array): number {
  const call = libc.ioctlPtr as unknown as (...a: unknown[]) => number;
  return Deno.build.arch === "aarch64"
    ? call(fd, request, 0n, 0n, 0n, 0n, 0n, 0n, arg)
    : call(fd, request, arg);
}

/**
 * Open `path` (use the `/dev/cu.*` node, not `/dev/tty.*`, which waits for carrier) as a raw
 * 8N1 serial link at `baud`.
 *
 * @throws {FlashError} code "PORT" when the port is missing, busy or not a tty.
 */
export function openDarwinSerial(path: string, baud = 115200): PosixSerialLink {
  const libc = libSystem();
  const { O_RDWR, O_NONBLOCK, O_NOCTTY, O_CLOEXEC } = DarwinOpen;
  const fd = libc.open(new TextEncoder().encode(`${path}\0`), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw openError(path, errnoOf(libc));
  const pipe = new Int32Array(2).fill(-1);
  try {
    if (libc.flock(fd, 2 | 4) < 0) {
      const e = errnoOf(libc);
      if (e === DarwinErrno.EAGAIN) throw inUse(path);
      if (e !== DarwinErrno.ENOTSUP && e !== DarwinErrno.EOPNOTSUPP) {
        throw new FlashError("PORT", `cannot lock ${path}: errno ${e}`, "unplug and replug the adapter");
      }
    }
    libc.ioctlVoid(fd, DarwinIoctl.TIOCEXCL);
    const raw = new Uint8Array(DARWIN_TERMIOS_SIZE);
    if (libc.tcgetattr(fd, raw) < 0) {
      throw new FlashError(
        "PORT",
        `${path} is not a serial port`,
        "pass a /dev/cu.* device; list-ports shows them",
      );
    }
    if (libc.pipe(new Uint8Array(pipe.buffer)) < 0) throw new Error(`pipe failed: errno ${errnoOf(libc)}`);
    for (const p of pipe) libc.ioctlVoid(p, DarwinIoctl.FIOCLEX);
    const port = new DarwinTty(libc, fd, pipe[0], pipe[1], path, unpackDarwinTermios(raw));
    port.configure(baud);
    port.flushInput();
    return new PosixSerialLink(path, port, baud, port.probeModem());
  } catch (e) {
    libc.close(fd);
    for (const p of pipe) if (p >= 0) libc.close(p);
    throw e;
  }
}

function inUse(path: string): FlashError {
  return new FlashError(
    "PORT",
    `port ${path} is in use by another program`,
    "close the other program (serial monitor, another flasher); `lsof " + path + "` names it",
  );
}

function openError(path: string, e: number): FlashError {
  if (e === DarwinErrno.ENOENT || e === DarwinErrno.ENXIO || e === DarwinErrno.ENODEV) {
    return new FlashError(
      "PORT",
      `no serial port at ${path}`,
      "check the cable; list-ports shows the ports present",
    );
  }
  if (e === DarwinErrno.EBUSY) return inUse(path);
  if (e === DarwinErrno.EACCES || e === DarwinErrno.EPERM) {
    return new FlashError("PORT", `permission denied opening ${path}`, "check the device node's permissions");
  }
  return new FlashError("PORT", `cannot open ${path}: errno ${e}`, "unplug and replug the adapter");
}

function isGone(e: number): boolean {
  return e === DarwinErrno.EIO || e === DarwinErrno.ENXIO || e === DarwinErrno.ENODEV ||
    e === DarwinErrno.EBADF;
}

/** The macOS {@link PosixPort}: a tty descriptor and a wake-up pipe. */
class DarwinTty implements PosixPort {
  #libc: DarwinLibc;
  #fd: number;
  #wakeRead: number;
  #wakeWrite: number;
  #path: string;
  /** The settings last applied. */
  termios: DarwinTermios;

  constructor(
    libc: DarwinLibc,
    fd: number,
    wakeRead: number,
    wakeWrite: number,
    path: string,
    t: DarwinTermios,
  ) {
    this.#libc = libc;
    this.#fd = fd;
    this.#wakeRead = wakeRead;
    this.#wakeWrite = wakeWrite;
    this.#path = path;
    this.termios = t;
  }

  configure(baud: number): void {
    const t = darwinRawTermios(this.termios, baud);
    if (this.#libc.tcsetattr(this.#fd, TCSANOW, packDarwinTermios(t)) < 0) this.#fail("configure");
    this.termios = t;
    if (!DARWIN_TERMIOS_RATES.has(baud)) {
      const speed = new Uint8Array(8);
      new DataView(speed.buffer).setBigUint64(0, BigInt(baud), true);
      if (ioctlPtr(this.#libc, this.#fd, DarwinIoctl.IOSSIOSPEED, speed) < 0) {
        throw new FlashError(
          "PORT",
          `${this.#path} cannot run at ${baud} baud`,
          "choose a rate the adapter supports with --baud",
        );
      }
    }
  }

  probeModem(): boolean {
    if (ioctlPtr(this.#libc, this.#fd, DarwinIoctl.TIOCMGET, new Uint8Array(4)) === 0) return true;
    const e = errnoOf(this.#libc);
    return !(e === DarwinErrno.ENOTTY || e === DarwinErrno.EINVAL);
  }

  read(buf: Uint8Array): IoResult {
    const n = this.#libc.read(this.#fd, buf, BigInt(buf.length));
    if (n > 0) return n;
    if (n === 0) return "gone";
    return this.#classify(errnoOf(this.#libc));
  }

  write(buf: Uint8Array): IoResult {
    const n = this.#libc.write(this.#fd, buf, BigInt(buf.length));
    if (n > 0) return n;
    if (n === 0) return "again";
    return this.#classify(errnoOf(this.#libc));
  }

  #classify(e: number): IoResult {
    if (e === DarwinErrno.EAGAIN || e === DarwinErrno.EINTR) return "again";
    if (isGone(e)) return "gone";
    return { errno: `errno ${e}` };
  }

  async wait(dir: "in" | "out", timeoutMs: number): Promise<WaitResult> {
    const reads = darwinFdSet(dir === "in" ? [this.#fd, this.#wakeRead] : [this.#wakeRead]);
    const writes = darwinFdSet(dir === "out" ? [this.#fd] : []);
    const errors = darwinFdSet([]);
    const nfds = Math.max(this.#fd, this.#wakeRead) + 1;
    const n = await this.#libc.select(nfds, reads, writes, errors, darwinTimeval(timeoutMs));
    if (n < 0) return "ready";
    if (n === 0) return "timeout";
    if (darwinFdIsSet(reads, this.#wakeRead)) return "woken";
    return "ready";
  }

  wake(): void {
    this.#libc.write(this.#wakeWrite, Uint8Array.of(1), 1n);
  }

  setBaud(baud: number): number {
    this.configure(baud);
    return baud;
  }

  setModem(lines: { dtr?: boolean; rts?: boolean }): boolean {
    const { TIOCM_DTR, TIOCM_RTS } = DarwinModem;
    let set = 0;
    let clear = 0;
    if (lines.dtr !== undefined) lines.dtr ? (set |= TIOCM_DTR) : (clear |= TIOCM_DTR);
    if (lines.rts !== undefined) lines.rts ? (set |= TIOCM_RTS) : (clear |= TIOCM_RTS);
    for (const [req, bits] of [[DarwinIoctl.TIOCMBIS, set], [DarwinIoctl.TIOCMBIC, clear]] as const) {
      if (bits === 0) continue;
      const arg = new Uint8Array(4);
      new DataView(arg.buffer).setInt32(0, bits, true);
      if (ioctlPtr(this.#libc, this.#fd, req, arg) < 0) {
        const e = errnoOf(this.#libc);
        if (e === DarwinErrno.ENOTTY || e === DarwinErrno.EINVAL) return false;
        this.#fail("drive DTR/RTS on", e);
      }
    }
    return true;
  }

  setBreak(on: boolean): void {
    if (this.#libc.ioctlVoid(this.#fd, on ? DarwinIoctl.TIOCSBRK : DarwinIoctl.TIOCCBRK) < 0) {
      const e = errnoOf(this.#libc);
      if (e !== DarwinErrno.ENOTTY && e !== DarwinErrno.EINVAL) this.#fail("send a break on", e);
    }
  }

  async drain(): Promise<void> {
    if (await this.#libc.tcdrain(this.#fd) === 0) return;
    if (this.#libc.tcgetattr(this.#fd, new Uint8Array(DARWIN_TERMIOS_SIZE)) < 0) this.#fail("drain");
  }

  flushInput(): void {
    this.#libc.tcflush(this.#fd, TCIFLUSH);
  }

  flushOutput(): void {
    this.#libc.tcflush(this.#fd, TCOFLUSH);
  }

  close(): void {
    this.#libc.close(this.#fd);
    this.#libc.close(this.#wakeRead);
    this.#libc.close(this.#wakeWrite);
  }

  #fail(what: string, e = errnoOf(this.#libc)): never {
    if (isGone(e)) throw new LinkClosedError(this.#path);
    throw new FlashError("PORT", `cannot ${what} ${this.#path}: errno ${e}`, "unplug and replug the adapter");
  }
}
