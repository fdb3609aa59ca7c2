/**
 * A pseudo-terminal pair made through libc FFI, seen from the master side: the emulator
 * holds the master, any serial client (ours, pyserial, a C tool) opens the slave path as if
 * it were a USB-UART adapter.
 *
 * What the master can observe (docs/deno-runtime.md "Pseudo-terminals"): the client's baud
 * rate (termios, BOTHER included), read before each chunk; a client opening or closing the
 * slave (the master reports POLLHUP while no client has it open). It cannot observe DTR/RTS or
 * BREAK.
 *
 * @module
 */

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
  O_CLOEXEC,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDWR,
  packTermios2,
  pollfds,
  POLLHUP,
  POLLIN,
  POLLOUT,
  rawTermios2,
  revents,
  TERMIOS2_SIZE,
  termiosBaud,
  unpackTermios2,
} from "../core/io/serial/linux_abi.ts";

/** What {@link Pty.next} reports. */
export type PtyEvent = "connected" | "data" | "disconnected" | "closed";

/** How often the master checks whether a client has opened the slave. */
const OPEN_POLL_MS = 20;

/**
 * The master side of a PTY pair.
 *
 * @example
 * ```ts
 * const pty = Pty.open();
 * console.log(pty.path); // /dev/pts/5
 * for (let ev = await pty.next(); ev !== "closed"; ev = await pty.next()) {
 *   if (ev === "data") await pty.write(pty.read(4096)); // echo
 * }
 * ```
 */
export class Pty {
  /** The slave path a client opens. */
  readonly path: string;
  #libc: LinuxLibc;
  #fd: number;
  #efd: number;
  #connected = false;
  #lost = false;
  #closed = false;
  #pending = new Set<Promise<unknown>>();

  private constructor(libc: LinuxLibc, fd: number, efd: number, path: string) {
    this.#libc = libc;
    this.#fd = fd;
    this.#efd = efd;
    this.path = path;
  }

  /**
   * Create a pair. The slave starts in raw 8N1 mode at `baud` (a client that sets its own
   * mode overrides it) and with no client.
   */
  static open(options: { baud?: number } = {}): Pty {
    if (Deno.build.os !== "linux") throw new Error("pseudo-terminal serving is implemented for Linux only");
    const libc = linuxLibc();
    const fd = libc.posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw new Error(`posix_openpt failed: ${errnoName(errno(libc))}`);
    let efd = -1;
    try {
      const name = new Uint8Array(128);
      if (
        libc.grantpt(fd) !== 0 || libc.unlockpt(fd) !== 0 ||
        libc.ptsname_r(fd, name, BigInt(name.length)) !== 0
      ) {
        throw new Error(`cannot set up the pseudo-terminal: ${errnoName(errno(libc))}`);
      }
      const path = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
      efd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (efd < 0) throw new Error(`eventfd failed: ${errnoName(errno(libc))}`);
      primeSlave(libc, path, options.baud ?? 115200);
      return new Pty(libc, fd, efd, path);
    } catch (e) {
      libc.close(fd);
      if (efd >= 0) libc.close(efd);
      throw e;
    }
  }

  /** Whether a client has the slave open, as of the last {@link next}. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Wait for the next thing to handle: a client opening the slave, bytes from the client,
   * the client closing it, or {@link close}. After "data", call {@link read}.
   */
  async next(): Promise<PtyEvent> {
    for (;;) {
      if (this.#closed) return "closed";
      if (this.#lost) {
        this.#lost = false;
        if (this.#connected) {
          this.#connected = false;
          return "disconnected";
        }
      }
      if (!this.#connected) {
        if (!(this.#masterEvents(0) & POLLHUP)) {
          this.#connected = true;
          return "connected";
        }
        await this.#poll([[this.#efd, POLLIN]], OPEN_POLL_MS);
        continue;
      }
      const fds = pollfds([[this.#fd, POLLIN], [this.#efd, POLLIN]]);
      await this.#track(this.#libc.poll(fds, 2n, -1));
      if (this.#closed || revents(fds, 1) & POLLIN) return "closed";
      const ev = revents(fds, 0);
      if (ev & POLLIN) return "data";
      if (ev & POLLHUP) this.#lost = true;
    }
  }

  /** Bytes the client sent (at most `max`); empty when none are waiting. */
  read(max: number): Uint8Array {
    if (this.#closed) return new Uint8Array(0);
    const buf = new Uint8Array(max);
    const n = this.#libc.read(this.#fd, buf, BigInt(max));
    if (n > 0) return buf.slice(0, n);
    if (n < 0) {
      const e = errno(this.#libc);
      if (e !== Errno.EAGAIN && e !== Errno.EINTR) this.#lost = true;
    }
    return new Uint8Array(0);
  }

  /**
   * Send bytes to the client. Resolves `false` when the client is not there (the bytes are
   * lost, as on a wire nobody listens to).
   */
  async write(data: Uint8Array): Promise<boolean> {
    let at = 0;
    while (at < data.length) {
      if (this.#closed || this.#lost || !this.#connected) return false;
      const n = this.#libc.write(this.#fd, data.subarray(at), BigInt(data.length - at));
      if (n > 0) {
        at += n;
        continue;
      }
      const e = n < 0 ? errno(this.#libc) : Errno.EAGAIN;
      if (e !== Errno.EAGAIN && e !== Errno.EINTR) {
        this.#lost = true;
        return false;
      }
      await this.#poll([[this.#fd, POLLOUT], [this.#efd, POLLIN]], 1000);
    }
    return true;
  }

  /** The baud rate the client has set on the slave (read from termios now). */
  clientBaud(): number {
    const raw = new Uint8Array(TERMIOS2_SIZE);
    if (this.#libc.ioctl(this.#fd, Ioctl.TCGETS2, raw) < 0) return 0;
    return termiosBaud(unpackTermios2(raw));
  }

  /** Close the master (the client sees the device vanish). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const one = new Uint8Array(8);
    one[0] = 1;
    this.#libc.write(this.#efd, one, 8n);
    await Promise.allSettled([...this.#pending]);
    this.#libc.close(this.#fd);
    this.#libc.close(this.#efd);
  }

  #masterEvents(timeoutMs: number): number {
    const fds = pollfds([[this.#fd, POLLIN]]);
    return this.#libc.pollNow(fds, 1n, timeoutMs) > 0 ? revents(fds, 0) : 0;
  }

  #poll(entries: [number, number][], timeoutMs: number): Promise<number> {
    return this.#track(this.#libc.poll(pollfds(entries), BigInt(entries.length), timeoutMs));
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    return p.finally(() => this.#pending.delete(p));
  }
}

/**
 * Open the slave once to put it in raw mode at `baud`, then close it: a PTY nobody has opened
 * yet does not report POLLHUP, one whose last client left does, so after this the master
 * sees every client arrive.
 */
function primeSlave(libc: LinuxLibc, path: string, baud: number): void {
  const sfd = libc.open(cString(path), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (sfd < 0) throw new Error(`cannot open ${path}: ${errnoName(errno(libc))}`);
  try {
    const raw = new Uint8Array(TERMIOS2_SIZE);
    if (libc.ioctl(sfd, Ioctl.TCGETS2, raw) < 0) throw new Error(`TCGETS2 failed: ${errnoName(errno(libc))}`);
    const set = packTermios2(rawTermios2(unpackTermios2(raw), baud));
    if (libc.ioctl(sfd, Ioctl.TCSETS2, set) < 0) throw new Error(`TCSETS2 failed: ${errnoName(errno(libc))}`);
  } finally {
    libc.close(sfd);
  }
}
