/**
 * Serial ports on Windows through Deno FFI on kernel32: `CreateFileW("\\\\.\\COMn")` (exclusive
 * by nature), a DCB for raw 8N1 at any rate, COMMTIMEOUTS that make `ReadFile` return as soon
 * as one byte is there or after a short slice, reads and writes on worker threads
 * (`nonblocking` FFI symbols) so the event loop never stalls, DTR/RTS through
 * `EscapeCommFunction`, `PurgeComm` and `FlushFileBuffers`.
 *
 * The handle is synchronous, so Windows serialises I/O on it: a write issued while a read
 * waits starts when that read's slice ends (at most {@link READ_SLICE_MS}).
 *
 * Written against the Win32 documentation; it cannot run on the Linux machines this project is
 * built on, so only the DCB / COMMTIMEOUTS packing is unit-tested (tests/serial_test.ts).
 *
 * Longer than 400 lines because it is one platform backend: its FFI symbol table, the DCB and
 * COMMTIMEOUTS packing and the link's operations all depend on the same kernel32 ABI, and kept
 * together they read against one set of Win32 documentation.
 *
 * @module
 */

import { type Clock, realClock } from "../../clock.ts";
import { FlashError } from "../../errors.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "../link.ts";

/** Longest a single ReadFile waits, so that writes and close() never wait longer. */
export const READ_SLICE_MS = 25;

/** Size of `DCB`. */
export const DCB_SIZE = 28;

/** The DCB fields this backend reads or sets. */
export interface Dcb {
  /** BaudRate. */
  baud: number;
  /** fBinary … fAbortOnError packed as in the C bitfield (bit 0 = fBinary). */
  flags: number;
  /** Data bits (8). */
  byteSize: number;
  /** 0 = NOPARITY. */
  parity: number;
  /** 0 = ONESTOPBIT. */
  stopBits: number;
}

/** DCB bitfield masks and values. */
export const DcbFlag = {
  fBinary: 1 << 0,
  fParity: 1 << 1,
  fOutxCtsFlow: 1 << 2,
  fOutxDsrFlow: 1 << 3,
  fDtrControlShift: 4,
  fDsrSensitivity: 1 << 6,
  fTXContinueOnXoff: 1 << 7,
  fOutX: 1 << 8,
  fInX: 1 << 9,
  fErrorChar: 1 << 10,
  fNull: 1 << 11,
  fRtsControlShift: 12,
  fAbortOnError: 1 << 14,
  DTR_CONTROL_ENABLE: 1,
  RTS_CONTROL_ENABLE: 1,
} as const;

/** Read the fields of a DCB filled in by `GetCommState`. */
export function unpackDcb(raw: Uint8Array): Dcb {
  const v = new DataView(raw.buffer, raw.byteOffset, DCB_SIZE);
  return {
    baud: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    byteSize: v.getUint8(18),
    parity: v.getUint8(19),
    stopBits: v.getUint8(20),
  };
}

/**
 * A copy of `current` (a DCB from `GetCommState`) set to raw 8N1 at `baud`: binary mode, no
 * parity check, no hardware or XON/XOFF flow control, no error replacement or NUL stripping,
 * no abort on error, DTR and RTS asserted (as a POSIX open leaves them). Reserved fields and
 * the XON/XOFF characters are kept.
 */
export function rawDcb(current: Uint8Array, baud: number): Uint8Array {
  const raw = current.slice(0, DCB_SIZE);
  const v = new DataView(raw.buffer);
  const f = DcbFlag;
  const flags = f.fBinary | (f.DTR_CONTROL_ENABLE << f.fDtrControlShift) |
    (f.RTS_CONTROL_ENABLE << f.fRtsControlShift);
  const keep = ~0x7fff;
  v.setUint32(0, DCB_SIZE, true);
  v.setUint32(4, baud, true);
  v.setUint32(8, ((v.getUint32(8, true) & keep) | flags) >>> 0, true);
  v.setUint8(18, 8);
  v.setUint8(19, 0);
  v.setUint8(20, 0);
  return raw;
}

/** A copy of `current` with only the rate changed. */
export function dcbWithBaud(current: Uint8Array, baud: number): Uint8Array {
  const raw = current.slice(0, DCB_SIZE);
  new DataView(raw.buffer).setUint32(4, baud, true);
  return raw;
}

/** `COMMTIMEOUTS` for a read that returns on the first byte or after `readMs`, and writes bounded by the rate. */
export function commTimeouts(readMs: number, baud: number): Uint8Array {
  const raw = new Uint8Array(20);
  const v = new DataView(raw.buffer);
  v.setUint32(0, 0xffffffff, true);
  v.setUint32(4, 0xffffffff, true);
  v.setUint32(8, Math.max(1, Math.ceil(readMs)), true);
  v.setUint32(12, Math.ceil(10_000 / baud) + 1, true);
  v.setUint32(16, 5000, true);
  return raw;
}

/** `"\\\\.\\COM12"` for `COM12`; paths already in device-namespace form are kept. */
export function windowsDevicePath(path: string): string {
  return path.startsWith("\\\\") ? path : `\\\\.\\${path}`;
}

/** A NUL-terminated UTF-16LE copy of `s` for `LPCWSTR` parameters. */
export function wideString(s: string): Uint8Array {
  const out = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return new Uint8Array(out.buffer);
}

const GENERIC_READ_WRITE = 0xc0000000;
const OPEN_EXISTING = 3;
const PURGE_TXABORT = 0x1;
const PURGE_RXABORT = 0x2;
const PURGE_TXCLEAR = 0x4;
const PURGE_RXCLEAR = 0x8;
const SETRTS = 3;
const CLRRTS = 4;
const SETDTR = 5;
const CLRDTR = 6;
const SETBREAK = 8;
const CLRBREAK = 9;

/** Win32 error codes this backend tells apart. */
export const WinError = {
  FILE_NOT_FOUND: 2,
  PATH_NOT_FOUND: 3,
  ACCESS_DENIED: 5,
  SHARING_VIOLATION: 32,
  INVALID_PARAMETER: 87,
} as const;

const SYMBOLS = {
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "pointer", "u32", "u32", "pointer"],
    result: "pointer",
  },
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  GetCommState: { parameters: ["pointer", "buffer"], result: "i32" },
  SetCommState: { parameters: ["pointer", "buffer"], result: "i32" },
  SetCommTimeouts: { parameters: ["pointer", "buffer"], result: "i32" },
  SetupComm: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  ClearCommError: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  ReadFile: { parameters: ["pointer", "buffer", "u32", "buffer", "pointer"], result: "i32" },
  ReadFileWaiting: {
    name: "ReadFile",
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  WriteFile: {
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  EscapeCommFunction: { parameters: ["pointer", "u32"], result: "i32" },
  PurgeComm: { parameters: ["pointer", "u32"], result: "i32" },
  FlushFileBuffers: { parameters: ["pointer"], result: "i32", nonblocking: true },
  GetLastError: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Kernel32 = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loaded: Kernel32 | undefined;

function kernel32(): Kernel32 {
  if (loaded) return loaded;
  try {
    loaded = Deno.dlopen("kernel32.dll", SYMBOLS).symbols;
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

/**
 * Open `COMn` as a raw 8N1 serial link at `baud`.
 *
 * @throws {FlashError} code "PORT" when the port is missing, in use, or refuses the rate.
 */
export function openWindowsSerial(path: string, baud = 115200): WindowsSerialLink {
  const k = kernel32();
  const h = k.CreateFileW(
    wideString(windowsDevicePath(path)),
    GENERIC_READ_WRITE,
    0,
    null,
    OPEN_EXISTING,
    0,
    null,
  );
  if (h === null || BigInt(Deno.UnsafePointer.value(h)) === 0xffffffffffffffffn) {
    const e = k.GetLastError();
    if (e === WinError.ACCESS_DENIED || e === WinError.SHARING_VIOLATION) {
      throw new FlashError(
        "PORT",
        `port ${path} is in use by another program`,
        "close the other program (serial monitor, another flasher) and try again",
      );
    }
    if (e === WinError.FILE_NOT_FOUND || e === WinError.PATH_NOT_FOUND) {
      throw new FlashError(
        "PORT",
        `no serial port at ${path}`,
        "check the cable; list-ports shows the COM ports present",
      );
    }
    throw new FlashError("PORT", `cannot open ${path}: Windows error ${e}`, "unplug and replug the adapter");
  }
  try {
    k.SetupComm(h, 65536, 65536);
    const dcb = new Uint8Array(DCB_SIZE);
    new DataView(dcb.buffer).setUint32(0, DCB_SIZE, true);
    if (!k.GetCommState(h, dcb)) {
      throw new FlashError("PORT", `${path} is not a serial port`, "pass a COM port; list-ports shows them");
    }
    if (!k.SetCommState(h, rawDcb(dcb, baud))) {
      throw new FlashError(
        "PORT",
        `${path} cannot run at ${baud} baud`,
        "choose a rate the adapter supports",
      );
    }
    const link = new WindowsSerialLink(path, k, h, baud);
    link.applyTimeouts(READ_SLICE_MS);
    k.PurgeComm(h, PURGE_RXCLEAR | PURGE_TXCLEAR);
    return link;
  } catch (e) {
    k.CloseHandle(h);
    throw e;
  }
}

/** A {@link ByteLink} over a Windows COM port handle. */
export class WindowsSerialLink implements ByteLink {
  readonly name: string;
  readonly clock: Clock = realClock;
  #k: Kernel32;
  #h: Deno.PointerObject;
  #baud: number;
  #hasModemLines = true;
  #readSlice = -1;
  #closed = false;
  #pending = new Set<Promise<unknown>>();

  /** Wrap an opened, configured handle. */
  constructor(name: string, k: Kernel32, h: Deno.PointerObject, baud: number) {
    this.name = name;
    this.#k = k;
    this.#h = h;
    this.#baud = baud;
  }

  get baud(): number {
    return this.#baud;
  }

  get hasModemLines(): boolean {
    return this.#hasModemLines;
  }

  /** Set COMMTIMEOUTS for reads of at most `readMs` (skipped when unchanged). */
  applyTimeouts(readMs: number): void {
    if (readMs === this.#readSlice) return;
    if (!this.#k.SetCommTimeouts(this.#h, commTimeouts(readMs, this.#baud))) this.#fail("configure");
    this.#readSlice = readMs;
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    this.#open();
    const buf = new Uint8Array(Math.max(1, max));
    const count = new Uint8Array(4);
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const queued = this.#queued();
      if (queued > 0) {
        if (!this.#k.ReadFile(this.#h, buf, Math.min(buf.length, queued), count, null)) this.#fail("read");
        return buf.slice(0, readCount(count));
      }
      const left = deadline - this.clock.now();
      if (left <= 0) return new Uint8Array(0);
      this.applyTimeouts(Math.min(READ_SLICE_MS, Math.ceil(left)));
      const ok = await this.#track(this.#k.ReadFileWaiting(this.#h, buf, buf.length, count, null));
      if (this.#closed) throw new LinkClosedError(this.name, "port closed");
      if (!ok) this.#queued();
      const n = readCount(count);
      if (n > 0) return buf.slice(0, n);
    }
  }

  async write(data: Uint8Array): Promise<void> {
    this.#open();
    let at = 0;
    const count = new Uint8Array(4);
    while (at < data.length) {
      const ok = await this.#track(
        this.#k.WriteFile(this.#h, data.subarray(at), data.length - at, count, null),
      );
      if (this.#closed) throw new LinkClosedError(this.name, "port closed");
      if (!ok) this.#queued();
      const n = readCount(count);
      if (n === 0) {
        throw new FlashError(
          "PORT",
          `writing to ${this.name} stalled: ${data.length - at} bytes not accepted`,
          "unplug and replug the adapter",
        );
      }
      at += n;
    }
  }

  async drain(): Promise<void> {
    this.#open();
    if (!(await this.#track(this.#k.FlushFileBuffers(this.#h))) && !this.#closed) this.#queued();
  }

  flushInput(): Promise<void> {
    this.#open();
    this.#k.PurgeComm(this.#h, PURGE_RXCLEAR);
    return Promise.resolve();
  }

  setBaud(baud: number): Promise<void> {
    this.#open();
    const dcb = new Uint8Array(DCB_SIZE);
    new DataView(dcb.buffer).setUint32(0, DCB_SIZE, true);
    if (!this.#k.GetCommState(this.#h, dcb)) this.#fail("configure");
    if (!this.#k.SetCommState(this.#h, dcbWithBaud(dcb, baud))) {
      return Promise.reject(
        new FlashError(
          "PORT",
          `${this.name} cannot run at ${baud} baud`,
          "choose a rate the adapter supports with --baud",
        ),
      );
    }
    this.#baud = baud;
    this.#readSlice = -1;
    this.applyTimeouts(READ_SLICE_MS);
    return Promise.resolve();
  }

  setSignals(signals: ModemSignals): Promise<void> {
    this.#open();
    const calls: number[] = [];
    if (signals.dtr !== undefined) calls.push(signals.dtr ? SETDTR : CLRDTR);
    if (signals.rts !== undefined) calls.push(signals.rts ? SETRTS : CLRRTS);
    for (const fn of calls) {
      if (this.#hasModemLines && !this.#k.EscapeCommFunction(this.#h, fn)) this.#hasModemLines = false;
    }
    return Promise.resolve();
  }

  /** Hold the line in break (TX low) for `ms` milliseconds. */
  async sendBreak(ms: number): Promise<void> {
    this.#open();
    this.#k.EscapeCommFunction(this.#h, SETBREAK);
    try {
      await this.clock.sleep(ms);
    } finally {
      if (!this.#closed) this.#k.EscapeCommFunction(this.#h, CLRBREAK);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
    this.#k.PurgeComm(this.#h, PURGE_TXABORT | PURGE_RXABORT | PURGE_TXCLEAR | PURGE_RXCLEAR);
    this.#k.CloseHandle(this.#h);
  }

  /** Bytes waiting in the driver's input queue; a failure here means the device is gone. */
  #queued(): number {
    const errors = new Uint8Array(4);
    const stat = new Uint8Array(12);
    if (!this.#k.ClearCommError(this.#h, errors, stat)) {
      throw new LinkClosedError(this.name, `Windows error ${this.#k.GetLastError()}`);
    }
    return new DataView(stat.buffer).getUint32(4, true);
  }

  #open(): void {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    return p.finally(() => this.#pending.delete(p));
  }

  #fail(what: string): never {
    const code = this.#k.GetLastError();
    this.#queued();
    throw new FlashError(
      "PORT",
      `cannot ${what} ${this.name}: Windows error ${code}`,
      "unplug and replug the adapter",
    );
  }
}

function readCount(count: Uint8Array): number {
  return new DataView(count.buffer).getUint32(0, true);
}
