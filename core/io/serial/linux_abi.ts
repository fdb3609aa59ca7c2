/**
 * The slice of the Linux userspace ABI the serial backend and the emulator's PTY need: libc
 * symbols through Deno FFI, `struct termios2` packing, and the constants from
 * `<asm-generic/termbits.h>`, `<asm-generic/ioctls.h>` and `<asm-generic/errno-base.h>`.
 * The values hold for x86_64 and aarch64 (the asm-generic layout); other architectures
 * (mips, powerpc, sparc) use different numbers and are rejected by {@link linuxLibc}.
 *
 * @module
 */

/** `open(2)` flags. */
export const O_RDWR = 0x2;
/** Do not make the tty our controlling terminal (no SIGHUP on unplug). */
export const O_NOCTTY = 0x100;
/** Reads and writes return EAGAIN instead of blocking. */
export const O_NONBLOCK = 0x800;
/** Do not leak the descriptor into child processes. */
export const O_CLOEXEC = 0x80000;

/** `flock(2)` operations. */
export const LOCK_EX = 2;
/** Fail with EWOULDBLOCK instead of waiting for the lock. */
export const LOCK_NB = 4;

/** `eventfd(2)` flags. */
export const EFD_NONBLOCK = 0x800;
/** `eventfd(2)`: close on exec. */
export const EFD_CLOEXEC = 0x80000;

/** `poll(2)` event bits. */
export const POLLIN = 0x1;
/** Writable without blocking. */
export const POLLOUT = 0x4;
/** Error condition. */
export const POLLERR = 0x8;
/** The other end hung up (tty unplugged, PTY client gone). */
export const POLLHUP = 0x10;
/** The descriptor is not open. */
export const POLLNVAL = 0x20;

/** errno values used to classify failures. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENOTTY: 25,
} as const;

/** ioctl request numbers (`unsigned long`, hence bigint for FFI). */
export const Ioctl = {
  TCGETS2: 0x802c542an,
  TCSETS2: 0x402c542bn,
  TCSBRK: 0x5409n,
  TCFLSH: 0x540bn,
  TIOCOUTQ: 0x5411n,
  TIOCMGET: 0x5415n,
  TIOCMBIS: 0x5416n,
  TIOCMBIC: 0x5417n,
  TIOCSBRK: 0x5427n,
  TIOCCBRK: 0x5428n,
} as const;

/** `TCFLSH` argument: discard received input. */
export const TCIFLUSH = 0n;
/** `TCFLSH` argument: discard unsent output. */
export const TCOFLUSH = 1n;
/** Modem bit for DTR in `TIOCMBIS`/`TIOCMBIC`. */
export const TIOCM_DTR = 0x002;
/** Modem bit for RTS in `TIOCMBIS`/`TIOCMBIC`. */
export const TIOCM_RTS = 0x004;

/** `c_cflag` bits. */
export const Cflag = {
  CBAUD: 0x100f,
  BOTHER: 0x1000,
  CSIZE: 0x30,
  CS8: 0x30,
  CSTOPB: 0x40,
  CREAD: 0x80,
  PARENB: 0x100,
  PARODD: 0x200,
  CLOCAL: 0x800,
  CRTSCTS: 0x80000000,
  /** Shift of the input-speed field (CIBAUD) within c_cflag. */
  IBSHIFT: 16,
} as const;

/** `c_iflag` bits cleared for raw mode. */
export const RAW_IFLAG_OFF = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x1000;
/** `c_oflag` bits cleared for raw mode (OPOST). */
export const RAW_OFLAG_OFF = 0x1;
/** `c_lflag` bits cleared for raw mode (ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHONL, IEXTEN). */
export const RAW_LFLAG_OFF = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x8000;

/** Index of VTIME in c_cc. */
export const VTIME = 5;
/** Index of VMIN in c_cc. */
export const VMIN = 6;

/** Size of `struct termios2` in bytes. */
export const TERMIOS2_SIZE = 44;
const CC_OFFSET = 17;
const ISPEED_OFFSET = 36;
const OSPEED_OFFSET = 40;

/** Baud rates behind the legacy `Bxxx` codes of c_cflag & CBAUD. */
const LEGACY_RATES: Record<number, number> = {
  0x0: 0,
  0x1: 50,
  0x2: 75,
  0x3: 110,
  0x4: 134,
  0x5: 150,
  0x6: 200,
  0x7: 300,
  0x8: 600,
  0x9: 1200,
  0xa: 1800,
  0xb: 2400,
  0xc: 4800,
  0xd: 9600,
  0xe: 19200,
  0xf: 38400,
  0x1001: 57600,
  0x1002: 115200,
  0x1003: 230400,
  0x1004: 460800,
  0x1005: 500000,
  0x1006: 576000,
  0x1007: 921600,
  0x1008: 1000000,
  0x1009: 1152000,
  0x100a: 1500000,
  0x100b: 2000000,
  0x100c: 2500000,
  0x100d: 3000000,
  0x100e: 3500000,
  0x100f: 4000000,
};

/** A decoded `struct termios2`. */
export interface Termios2 {
  /** Input modes (c_iflag). */
  iflag: number;
  /** Output modes (c_oflag). */
  oflag: number;
  /** Control modes (c_cflag): size, parity, stop bits, CBAUD code. */
  cflag: number;
  /** Local modes (c_lflag): canonical input, echo, signals. */
  lflag: number;
  /** Line discipline number (0 = N_TTY). */
  line: number;
  /** The 19 control characters. */
  cc: Uint8Array;
  /** Input rate in baud, meaningful with BOTHER. */
  ispeed: number;
  /** Output rate in baud, meaningful with BOTHER. */
  ospeed: number;
}

/** Decode the bytes an `ioctl(TCGETS2)` filled in. */
export function unpackTermios2(raw: Uint8Array): Termios2 {
  const v = new DataView(raw.buffer, raw.byteOffset, TERMIOS2_SIZE);
  return {
    iflag: v.getUint32(0, true),
    oflag: v.getUint32(4, true),
    cflag: v.getUint32(8, true),
    lflag: v.getUint32(12, true),
    line: v.getUint8(16),
    cc: raw.slice(CC_OFFSET, CC_OFFSET + 19),
    ispeed: v.getUint32(ISPEED_OFFSET, true),
    ospeed: v.getUint32(OSPEED_OFFSET, true),
  };
}

/** Encode a termios2 for `ioctl(TCSETS2)`. */
export function packTermios2(t: Termios2): Uint8Array {
  const raw = new Uint8Array(TERMIOS2_SIZE);
  const v = new DataView(raw.buffer);
  v.setUint32(0, t.iflag >>> 0, true);
  v.setUint32(4, t.oflag >>> 0, true);
  v.setUint32(8, t.cflag >>> 0, true);
  v.setUint32(12, t.lflag >>> 0, true);
  v.setUint8(16, t.line);
  raw.set(t.cc.subarray(0, 19), CC_OFFSET);
  v.setUint32(ISPEED_OFFSET, t.ispeed >>> 0, true);
  v.setUint32(OSPEED_OFFSET, t.ospeed >>> 0, true);
  return raw;
}

/**
 * Raw 8N1 at `baud` (any rate, through BOTHER), no flow control, reads that return as soon
 * as one byte is there (VMIN=1, VTIME=0): what `cfmakeraw` plus `cfsetspeed` would do.
 */
export function rawTermios2(t: Termios2, baud: number): Termios2 {
  const { CBAUD, BOTHER, CSIZE, CS8, CSTOPB, CREAD, PARENB, PARODD, CLOCAL, CRTSCTS, IBSHIFT } = Cflag;
  const cc = t.cc.slice();
  cc[VMIN] = 1;
  cc[VTIME] = 0;
  let cflag = t.cflag & ~(CSIZE | CSTOPB | PARENB | PARODD | CRTSCTS | CBAUD | (CBAUD << IBSHIFT));
  cflag |= CS8 | CREAD | CLOCAL | BOTHER;
  return {
    iflag: t.iflag & ~RAW_IFLAG_OFF,
    oflag: t.oflag & ~RAW_OFLAG_OFF,
    cflag: cflag >>> 0,
    lflag: t.lflag & ~RAW_LFLAG_OFF,
    line: 0,
    cc,
    ispeed: baud,
    ospeed: baud,
  };
}

/** Change only the rate of `t` (output and input) to `baud`, through BOTHER. */
export function withBaud(t: Termios2, baud: number): Termios2 {
  const { CBAUD, BOTHER, IBSHIFT } = Cflag;
  const cflag = ((t.cflag & ~(CBAUD | (CBAUD << IBSHIFT))) | BOTHER) >>> 0;
  return { ...t, cflag, ispeed: baud, ospeed: baud };
}

/** The output baud rate a termios2 describes, whether set by BOTHER or a legacy code. */
export function termiosBaud(t: Termios2): number {
  const code = t.cflag & Cflag.CBAUD;
  if (code === Cflag.BOTHER) return t.ospeed;
  return LEGACY_RATES[code] ?? t.ospeed;
}

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** ioctl whose argument is a pointer. */
  ioctl: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  /** ioctl whose argument is an integer. */
  ioctlInt: { name: "ioctl", parameters: ["i32", "usize", "usize"], result: "i32" },
  /** ioctl(fd, TCSBRK, 1) = tcdrain, which may block for as long as the output takes. */
  ioctlIntBlocking: {
    name: "ioctl",
    parameters: ["i32", "usize", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** poll on a worker thread: returns a Promise. */
  poll: { parameters: ["buffer", "usize", "i32"], result: "i32", nonblocking: true },
  pollNow: { name: "poll", parameters: ["buffer", "usize", "i32"], result: "i32" },
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The libc functions the Linux backends call. */
export type LinuxLibc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loaded: LinuxLibc | undefined;

/**
 * Load libc once per process. Throws when the process lacks `--allow-ffi`, when the CPU
 * architecture is not one whose constants this module carries, or when no libc is found.
 */
export function linuxLibc(): LinuxLibc {
  if (loaded) return loaded;
  if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
    throw new Error(`serial access is implemented for x86_64 and aarch64 Linux, not ${Deno.build.arch}`);
  }
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      loaded = Deno.dlopen(name, SYMBOLS).symbols;
      return loaded;
    } catch (e) {
      if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) throw e;
      lastError = e;
    }
  }
  throw new Error("cannot load the C library (libc.so.6)", { cause: lastError });
}

/**
 * errno of the calling thread, to be read straight after the failing call returned -1 (on
 * the main thread, nothing runs in between).
 */
export function errno(libc: LinuxLibc): number {
  const p = libc.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Errno).map(([name, n]) => [n, name]),
);

/** `"EIO (5)"`: a name for messages. */
export function errnoName(n: number): string {
  return ERRNO_NAMES[n] ? `${ERRNO_NAMES[n]} (${n})` : `errno ${n}`;
}

/** A NUL-terminated copy of `s` for `const char *` parameters. */
export function cString(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

/** An array of `struct pollfd` (fd, events) ready for poll(2). */
export function pollfds(entries: readonly [fd: number, events: number][]): Uint8Array {
  const raw = new Uint8Array(8 * entries.length);
  const v = new DataView(raw.buffer);
  entries.forEach(([fd, events], i) => {
    v.setInt32(8 * i, fd, true);
    v.setInt16(8 * i + 4, events, true);
  });
  return raw;
}

/** The revents poll(2) wrote for entry `i`. */
export function revents(raw: Uint8Array, i: number): number {
  return new DataView(raw.buffer, raw.byteOffset).getInt16(8 * i + 6, true);
}
