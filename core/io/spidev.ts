/**
 * Linux spidev as an {@link SpiMaster} (the Banana Pi / Raspberry Pi method, docs/spi-ch341.md B.2
 * PYSPI: mode 3, 30 kHz), with CEN on a GPIO line. Frames go out as `SPI_IOC_MESSAGE(n)`
 * ioctls, one `struct spi_ioc_transfer` per frame with `cs_change` between frames, as many
 * frames per message as spidev's buffer (`bufsiz`, 4096 by default) allows. The message ioctl
 * runs on an FFI worker thread so a slow bus does not block the event loop.
 *
 * @example
 * ```ts
 * import { parseGpioSpec } from "./gpio.ts";
 * import { openSpiTarget } from "../spi/target.ts";
 * const spi = openSpidev("/dev/spidev0.0", { cen: parseGpioSpec("gpiochip0:17") });
 * const target = await openSpiTarget(spi);
 * ```
 *
 * @module
 */

import { type Clock, realClock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import { GpioLine, type GpioSpec } from "./gpio.ts";
import {
  cString,
  errno,
  errnoName,
  type LinuxLibc,
  linuxLibc,
  O_CLOEXEC,
  O_RDWR,
} from "./serial/linux_abi.ts";
import { emptySpiStats, frameMosi, type SpiMaster, type SpiStats, type SpiStep } from "./spi.ts";

/** `_IOW('k', 1, __u8)`. */
export const SPI_IOC_WR_MODE = 0x40016b01;
/** `_IOW('k', 3, __u8)`. */
export const SPI_IOC_WR_BITS_PER_WORD = 0x40016b03;
/** `_IOW('k', 4, __u32)`. */
export const SPI_IOC_WR_MAX_SPEED_HZ = 0x40046b04;
/** Size of `struct spi_ioc_transfer`. */
export const SPI_TRANSFER_SIZE = 32;

/** `SPI_IOC_MESSAGE(n)` = `_IOW('k', 0, struct spi_ioc_transfer[n])`. */
export function spiIocMessage(n: number): number {
  const size = n * SPI_TRANSFER_SIZE;
  if (n < 1 || size >= 1 << 14) throw new RangeError(`SPI_IOC_MESSAGE supports 1..511 transfers, not ${n}`);
  return ((1 << 30) | (size << 16) | (0x6b << 8)) >>> 0;
}

/** One `struct spi_ioc_transfer`. */
export interface SpiIocTransfer {
  /** Address of the TX buffer. */
  tx: bigint;
  /** Address of the RX buffer. */
  rx: bigint;
  len: number;
  /** 0 = the device's configured speed. */
  speedHz: number;
  delayUs: number;
  bitsPerWord: number;
  /** 1 between frames: deassert CS after this transfer. */
  csChange: number;
}

/** Pack an array of `struct spi_ioc_transfer` (tx_buf 0, rx_buf 8, len 16, speed 20, delay 24, bits 26, cs_change 27). */
export function packSpiTransfers(xfers: SpiIocTransfer[]): Uint8Array<ArrayBuffer> {
  const raw = new Uint8Array(xfers.length * SPI_TRANSFER_SIZE);
  const v = new DataView(raw.buffer);
  xfers.forEach((x, i) => {
    const o = i * SPI_TRANSFER_SIZE;
    v.setBigUint64(o, x.tx, true);
    v.setBigUint64(o + 8, x.rx, true);
    v.setUint32(o + 16, x.len, true);
    v.setUint32(o + 20, x.speedHz, true);
    v.setUint16(o + 24, Math.min(0xffff, x.delayUs), true);
    raw[o + 26] = x.bitsPerWord;
    raw[o + 27] = x.csChange;
  });
  return raw;
}

/** What the driver does for a list of steps. */
export type SpidevAction =
  | { kind: "message"; frames: { mosi: Uint8Array<ArrayBuffer>; delayUs: number; frameIndex: number }[] }
  | { kind: "cen"; low: boolean }
  | { kind: "sleep"; us: number };

/** Group steps into ioctl messages of at most `bufsiz` bytes. Pure. */
export function planSpidev(steps: SpiStep[], bufsiz: number): SpidevAction[] {
  const out: SpidevAction[] = [];
  let msg: Extract<SpidevAction, { kind: "message" }> | null = null;
  let bytes = 0;
  let frameIndex = 0;
  const flush = () => {
    if (msg) out.push(msg);
    msg = null;
    bytes = 0;
  };
  for (const s of steps) {
    if ("cen" in s) {
      flush();
      out.push({ kind: "cen", low: s.cen === "low" });
    } else if ("delayUs" in s) {
      const m = msg as Extract<SpidevAction, { kind: "message" }> | null;
      if (m) m.frames[m.frames.length - 1].delayUs += s.delayUs;
      else out.push({ kind: "sleep", us: s.delayUs });
    } else {
      const mosi = frameMosi(s.frame) as Uint8Array<ArrayBuffer>;
      if (mosi.length > bufsiz) {
        throw new FlashError(
          "UNSUPPORTED",
          `an SPI frame of ${mosi.length} bytes exceeds spidev's buffer of ${bufsiz}`,
          "raise it with the kernel parameter spidev.bufsiz",
        );
      }
      if (bytes + mosi.length > bufsiz) flush();
      msg ??= { kind: "message", frames: [] };
      msg.frames.push({ mosi, delayUs: 0, frameIndex: frameIndex++ });
      bytes += mosi.length;
    }
  }
  flush();
  return out;
}

/** Options of {@link openSpidev}. */
export interface SpidevOptions {
  /** SPI mode 0–3. Default 3 (PYSPI). */
  mode?: number;
  /** SCK in Hz. Default 30 000 ("faster ones did not work for me", PYSPI). */
  speedHz?: number;
  /** GPIO line wired to CEN; without it, entry (which needs a reset) fails with a clear error. */
  cen?: GpioSpec;
  clock?: Clock;
}

const ASYNC_SYMBOLS = {
  ioctl: { parameters: ["i32", "usize", "buffer"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** spidev's per-message buffer size (module parameter `bufsiz`), 4096 when unreadable. */
export function spidevBufsiz(): number {
  try {
    const n = Number(Deno.readTextFileSync("/sys/module/spidev/parameters/bufsiz").trim());
    return Number.isInteger(n) && n > 0 ? n : 4096;
  } catch {
    return 4096;
  }
}

/** An spidev SPI master. */
export class SpidevMaster implements SpiMaster {
  readonly name: string;
  readonly clock: Clock;
  readonly stats: SpiStats = emptySpiStats();
  /** Largest frame one message can carry. */
  readonly maxFrame: number;
  readonly #libc: LinuxLibc;
  readonly #async: Deno.DynamicLibrary<typeof ASYNC_SYMBOLS>;
  readonly #cen: GpioLine | null;
  #fd: number;

  constructor(name: string, fd: number, libc: LinuxLibc, cen: GpioLine | null, clock: Clock, bufsiz: number) {
    this.name = name;
    this.#fd = fd;
    this.#libc = libc;
    this.#cen = cen;
    this.clock = clock;
    this.maxFrame = bufsiz;
    this.#async = Deno.dlopen("libc.so.6", ASYNC_SYMBOLS);
  }

  async transfer(steps: SpiStep[]): Promise<Uint8Array[]> {
    if (this.#fd < 0) throw new FlashError("PORT", `${this.name} is closed`, "reopen the adapter");
    this.stats.transactions++;
    const results: Uint8Array[] = [];
    for (const action of planSpidev(steps, this.maxFrame)) {
      if (action.kind === "cen") {
        if (!this.#cen) {
          throw new FlashError(
            "USAGE",
            "this step needs the chip's CEN line, and no GPIO line was given",
            "pass --cen gpiochip0:<line> wired to the chip's CEN",
          );
        }
        this.#cen.set(!action.low);
      } else if (action.kind === "sleep") {
        await this.clock.sleep(action.us / 1000);
      } else {
        const rx = action.frames.map((f) => new Uint8Array(f.mosi.length));
        const packed = packSpiTransfers(action.frames.map((f, i) => ({
          tx: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(f.mosi))),
          rx: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(rx[i]))),
          len: f.mosi.length,
          speedHz: 0,
          delayUs: f.delayUs,
          bitsPerWord: 8,
          csChange: i < action.frames.length - 1 ? 1 : 0,
        })));
        const rc = await this.#async.symbols.ioctl(
          this.#fd,
          BigInt(spiIocMessage(action.frames.length)),
          packed,
        );
        if (rc < 0) {
          throw new FlashError(
            "PORT",
            `SPI transfer on ${this.name} failed`,
            "check the device and its permissions",
          );
        }
        const n = action.frames.reduce((s, f) => s + f.mosi.length, 0);
        this.stats.outTransfers++;
        this.stats.inTransfers++;
        this.stats.bytesOut += n;
        this.stats.bytesIn += n;
        this.stats.spiBytes += n;
        action.frames.forEach((f, i) => (results[f.frameIndex] = rx[i]));
      }
    }
    return results;
  }

  close(): Promise<void> {
    if (this.#fd >= 0) {
      this.#libc.close(this.#fd);
      this.#fd = -1;
      this.#cen?.set(true);
      this.#cen?.close();
      this.#async.close();
    }
    return Promise.resolve();
  }
}

/**
 * Open `/dev/spidevB.C` with a mode and speed, and the CEN line. Throws FlashError "PORT".
 */
export function openSpidev(path: string, opts: SpidevOptions = {}): SpidevMaster {
  const mode = opts.mode ?? 3;
  const speed = opts.speedHz ?? 30_000;
  const fail = (what: string, err: number) =>
    new FlashError(
      "PORT",
      `${path}: ${what} failed (${errnoName(err)})`,
      "enable SPI (e.g. dtparam=spi=on / armbian overlay), check the device path and access (group spi or root)",
    );
  let libc: LinuxLibc;
  try {
    libc = linuxLibc();
  } catch (e) {
    throw new FlashError("PORT", `spidev needs FFI: ${(e as Error).message}`, "run with --allow-ffi", {
      cause: e,
    });
  }
  const fd = libc.open(cString(path), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw fail("open", errno(libc));
  const set = (req: number, value: Uint8Array, what: string) => {
    if (libc.ioctl(fd, BigInt(req), value) < 0) {
      const e = errno(libc);
      libc.close(fd);
      throw fail(what, e);
    }
  };
  set(SPI_IOC_WR_MODE, Uint8Array.of(mode & 3), `setting SPI mode ${mode}`);
  set(SPI_IOC_WR_BITS_PER_WORD, Uint8Array.of(8), "setting 8 bits per word");
  const hz = new Uint8Array(4);
  new DataView(hz.buffer).setUint32(0, speed, true);
  set(SPI_IOC_WR_MAX_SPEED_HZ, hz, `setting ${speed} Hz`);
  let cen: GpioLine | null = null;
  try {
    if (opts.cen) cen = GpioLine.open(opts.cen, { initialHigh: true });
  } catch (e) {
    libc.close(fd);
    throw e;
  }
  return new SpidevMaster(`spidev:${path}`, fd, libc, cen, opts.clock ?? realClock, spidevBufsiz());
}
