/**
 * Serial ports on Linux through Deno FFI on libc: non-blocking descriptor, exclusive
 * `flock`, raw 8N1 at any rate via `termios2`/BOTHER, waits in `poll(2)` on a worker thread
 * next to an eventfd that `close()` signals. Works for USB-UART adapters (ttyUSB, ttyACM),
 * on-board UARTs and pseudo-terminals (where DTR/RTS do not exist).
 *
 * @module
 */

import { FlashError } from "../../errors.ts";
import { LinkClosedError } from "../link.ts";
import {
  cString,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  Errno,
  errno,
  errnoName,
  Ioctl,
  type LinuxLibc,
  linuxLibc,
  LOCK_EX,
  LOCK_NB,
  O_CLOEXEC,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDWR,
  packTermios2,
  POLLERR,
  pollfds,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  rawTermios2,
  revents,
  TCIFLUSH,
  TCOFLUSH,
  TERMIOS2_SIZE,
  termiosBaud,
  TIOCM_DTR,
  TIOCM_RTS,
  unpackTermios2,
  withBaud,
} from "./linux_abi.ts";
import { type IoResult, type PosixPort, PosixSerialLink, type WaitResult } from "./posix_link.ts";

/**
 * Open `path` (e.g. `/dev/ttyUSB0`) as a raw 8N1 serial link at `baud`.
 *
 * @throws {FlashError} code "PORT" when the port does not exist, is in use, is not a tty,
 * cannot run at `baud`, or the process may not use FFI.
 *
 * @example
 * ```ts
 * const link = openLinuxSerial("/dev/ttyUSB0", 115200);
 * await link.write(Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00));
 * const reply = await link.read(64, 100);
 * await link.close();
 * ```
 */
export function openLinuxSerial(path: string, baud = 115200): PosixSerialLink {
  const libc = loadLibc();
  const fd = libc.open(cString(path), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw openError(path, errno(libc));
  let efd = -1;
  try {
    if (libc.flock(fd, LOCK_EX | LOCK_NB) < 0) {
      const e = errno(libc);
      if (e === Errno.EAGAIN) throw inUse(path);
      throw portError(`cannot lock ${path}: ${errnoName(e)}`);
    }
    const tty = new LinuxTty(libc, fd, -1, path);
    const current = tty.getTermios();
    if (typeof current === "number") {
      if (current === Errno.ENOTTY || current === Errno.EINVAL) {
        throw new FlashError(
          "PORT",
          `${path} is not a serial port`,
          "pass the adapter's tty, e.g. --port /dev/ttyUSB0; `deno task flash list-ports` shows them",
        );
      }
      throw portError(`cannot read the settings of ${path}: ${errnoName(current)}`);
    }
    tty.setTermios(rawTermios2(current, baud));
    const actual = tty.baudNow();
    if (Math.abs(actual - baud) > baud * 0.03) {
      throw new FlashError(
        "PORT",
        `${path} cannot run at ${baud} baud (the driver set ${actual})`,
        "choose a rate the adapter supports with --baud",
      );
    }
    efd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) throw portError(`eventfd failed: ${errnoName(errno(libc))}`);
    const port = new LinuxTty(libc, fd, efd, path);
    port.flushInput();
    return new PosixSerialLink(path, port, baud, port.probeModem());
  } catch (e) {
    libc.close(fd);
    if (efd >= 0) libc.close(efd);
    throw e;
  }
}

function loadLibc(): LinuxLibc {
  try {
    return linuxLibc();
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new FlashError(
        "PORT",
        "serial ports need FFI access, which this process was not given",
        "run with --allow-ffi (the deno tasks already pass it)",
        { cause: e },
      );
    }
    throw new FlashError(
      "PORT",
      `serial ports are unavailable: ${(e as Error).message}`,
      "use a tcp:// bridge",
      {
        cause: e,
      },
    );
  }
}

function portError(message: string): FlashError {
  return new FlashError("PORT", message, "unplug and replug the adapter, then try again");
}

function inUse(path: string): FlashError {
  return new FlashError(
    "PORT",
    `port ${path} is in use by another program`,
    `close the other program (serial monitor, another flasher, ModemManager); \`fuser ${path}\` names it`,
  );
}

function openError(path: string, e: number): FlashError {
  switch (e) {
    case Errno.ENOENT:
    case Errno.ENXIO:
    case Errno.ENODEV:
      return new FlashError(
        "PORT",
        `no serial port at ${path}`,
        "check the cable and the name; `deno task flash list-ports` shows the ports present",
      );
    case Errno.EACCES:
    case Errno.EPERM:
      return new FlashError(
        "PORT",
        `permission denied opening ${path}`,
        "add your user to the port's group (`sudo usermod -aG dialout $USER`), then log in again",
      );
    case Errno.EBUSY:
      return inUse(path);
    default:
      return portError(`cannot open ${path}: ${errnoName(e)}`);
  }
}

/** The Linux {@link PosixPort}: one tty descriptor plus the eventfd that cancels waits. */
class LinuxTty implements PosixPort {
  #libc: LinuxLibc;
  #fd: number;
  #efd: number;
  #path: string;

  constructor(libc: LinuxLibc, fd: number, efd: number, path: string) {
    this.#libc = libc;
    this.#fd = fd;
    this.#efd = efd;
    this.#path = path;
  }

  /** The current termios2, or the errno of a failed TCGETS2. */
  getTermios() {
    const raw = new Uint8Array(TERMIOS2_SIZE);
    if (this.#libc.ioctl(this.#fd, Ioctl.TCGETS2, raw) < 0) return errno(this.#libc);
    return unpackTermios2(raw);
  }

  setTermios(t: ReturnType<typeof unpackTermios2>): void {
    if (this.#libc.ioctl(this.#fd, Ioctl.TCSETS2, packTermios2(t)) < 0) {
      const e = errno(this.#libc);
      if (isGone(e)) throw new LinkClosedError(this.#path);
      throw portError(`cannot configure ${this.#path}: ${errnoName(e)}`);
    }
  }

  baudNow(): number {
    const t = this.getTermios();
    if (typeof t === "number") throw portError(`cannot read the settings of ${this.#path}: ${errnoName(t)}`);
    return termiosBaud(t);
  }

  /** Whether the tty has modem-control lines (a PTY answers ENOTTY). */
  probeModem(): boolean {
    if (this.#libc.ioctl(this.#fd, Ioctl.TIOCMGET, new Uint8Array(4)) === 0) return true;
    const e = errno(this.#libc);
    return !(e === Errno.ENOTTY || e === Errno.EINVAL);
  }

  read(buf: Uint8Array): IoResult {
    const n = this.#libc.read(this.#fd, buf, BigInt(buf.length));
    if (n > 0) return n;
    if (n === 0) return "gone";
    return this.#classify(errno(this.#libc));
  }

  write(buf: Uint8Array): IoResult {
    const n = this.#libc.write(this.#fd, buf, BigInt(buf.length));
    if (n >= 0) return n === 0 ? "again" : n;
    return this.#classify(errno(this.#libc));
  }

  #classify(e: number): IoResult {
    if (e === Errno.EAGAIN || e === Errno.EINTR) return "again";
    if (isGone(e)) return "gone";
    return { errno: errnoName(e) };
  }

  async wait(dir: "in" | "out", timeoutMs: number): Promise<WaitResult> {
    const want = dir === "in" ? POLLIN : POLLOUT;
    const fds = pollfds([[this.#fd, want], [this.#efd, POLLIN]]);
    const n = await this.#libc.poll(fds, 2n, timeoutMs);
    if (n < 0) return "ready";
    if (n === 0) return "timeout";
    if (revents(fds, 1) & POLLIN) return "woken";
    const ev = revents(fds, 0);
    if (ev & (POLLHUP | POLLERR | POLLNVAL)) return "hangup";
    return "ready";
  }

  wake(): void {
    const one = new Uint8Array(8);
    one[0] = 1;
    this.#libc.write(this.#efd, one, 8n);
  }

  setBaud(baud: number): number {
    const t = this.getTermios();
    if (typeof t === "number") {
      if (isGone(t)) throw new LinkClosedError(this.#path);
      throw portError(`cannot read the settings of ${this.#path}: ${errnoName(t)}`);
    }
    this.setTermios(withBaud(t, baud));
    return this.baudNow();
  }

  setModem(lines: { dtr?: boolean; rts?: boolean }): boolean {
    let set = 0;
    let clear = 0;
    if (lines.dtr !== undefined) lines.dtr ? (set |= TIOCM_DTR) : (clear |= TIOCM_DTR);
    if (lines.rts !== undefined) lines.rts ? (set |= TIOCM_RTS) : (clear |= TIOCM_RTS);
    for (const [req, bits] of [[Ioctl.TIOCMBIS, set], [Ioctl.TIOCMBIC, clear]] as const) {
      if (bits === 0) continue;
      const arg = new Uint8Array(4);
      new DataView(arg.buffer).setInt32(0, bits, true);
      if (this.#libc.ioctl(this.#fd, req, arg) < 0) {
        const e = errno(this.#libc);
        if (e === Errno.ENOTTY || e === Errno.EINVAL) return false;
        if (isGone(e)) throw new LinkClosedError(this.#path);
        throw portError(`cannot drive DTR/RTS on ${this.#path}: ${errnoName(e)}`);
      }
    }
    return true;
  }

  setBreak(on: boolean): void {
    if (this.#libc.ioctlInt(this.#fd, on ? Ioctl.TIOCSBRK : Ioctl.TIOCCBRK, 0n) < 0) {
      const e = errno(this.#libc);
      if (isGone(e)) throw new LinkClosedError(this.#path);
      if (e !== Errno.ENOTTY && e !== Errno.EINVAL) throw portError(`cannot send a break: ${errnoName(e)}`);
    }
  }

  async drain(): Promise<void> {
    if (await this.#libc.ioctlIntBlocking(this.#fd, Ioctl.TCSBRK, 1n) === 0) return;
    if (this.#libc.ioctl(this.#fd, Ioctl.TIOCOUTQ, new Uint8Array(4)) < 0) {
      const e = errno(this.#libc);
      if (isGone(e)) throw new LinkClosedError(this.#path);
      throw portError(`cannot wait for ${this.#path} to send: ${errnoName(e)}`);
    }
  }

  flushInput(): void {
    this.#libc.ioctlInt(this.#fd, Ioctl.TCFLSH, TCIFLUSH);
  }

  flushOutput(): void {
    this.#libc.ioctlInt(this.#fd, Ioctl.TCFLSH, TCOFLUSH);
  }

  close(): void {
    this.#libc.close(this.#fd);
    if (this.#efd >= 0) this.#libc.close(this.#efd);
  }
}

function isGone(e: number): boolean {
  return e === Errno.EIO || e === Errno.ENXIO || e === Errno.ENODEV || e === Errno.EBADF;
}
