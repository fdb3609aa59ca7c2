/**
 * One output line through the Linux GPIO character device, uAPI v2 (`GPIO_V2_GET_LINE_IOCTL`,
 * `GPIO_V2_LINE_SET_VALUES_IOCTL`), via Deno FFI on libc. Used to drive a Beken chip's CEN
 * from a single-board computer next to spidev. The struct packing is pure and unit-tested;
 * layouts follow `<linux/gpio.h>` (request 592 bytes: offsets[64] at 0, consumer[32] at 256,
 * config at 288 with attrs[10] of 24 bytes from 320, num_lines at 560, fd at 588).
 *
 * @example
 * ```ts
 * const cen = GpioLine.open(parseGpioSpec("gpiochip0:17"), { initialHigh: true });
 * cen.set(false); // hold the chip in reset
 * cen.set(true);
 * cen.close();
 * ```
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import {
  cString,
  errno,
  errnoName,
  type LinuxLibc,
  linuxLibc,
  O_CLOEXEC,
  O_RDWR,
} from "./serial/linux_abi.ts";

/** `_IOWR(0xB4, 0x07, struct gpio_v2_line_request)`. */
export const GPIO_V2_GET_LINE_IOCTL = 0xc250b407;
/** `_IOWR(0xB4, 0x0F, struct gpio_v2_line_values)`. */
export const GPIO_V2_LINE_SET_VALUES_IOCTL = 0xc010b40f;
/** Size of `struct gpio_v2_line_request`. */
export const LINE_REQUEST_SIZE = 592;
/** Line flags (`enum gpio_v2_line_flag`). */
export const GpioFlag = Object.freeze({
  ACTIVE_LOW: 1n << 1n,
  INPUT: 1n << 2n,
  OUTPUT: 1n << 3n,
  OPEN_DRAIN: 1n << 6n,
  BIAS_PULL_UP: 1n << 8n,
});
/** `GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES`. */
export const ATTR_OUTPUT_VALUES = 2;

const OFF_CONSUMER = 256;
const OFF_CONFIG = 288;
const OFF_ATTRS = OFF_CONFIG + 32;
const OFF_NUM_LINES = 560;
const OFF_FD = 588;

/** What to request. */
export interface LineRequest {
  /** Line offsets on the chip (at most 64). */
  offsets: number[];
  /** Consumer label (at most 31 bytes). */
  consumer: string;
  /** Line flags. */
  flags: bigint;
  /** Initial output values as a bitmap over `offsets` indexes, with the mask of lines it sets. */
  output?: { bits: bigint; mask: bigint };
}

/** Pack a `struct gpio_v2_line_request`. */
export function packLineRequest(req: LineRequest): Uint8Array<ArrayBuffer> {
  if (req.offsets.length === 0 || req.offsets.length > 64) throw new RangeError("1..64 lines per request");
  const raw = new Uint8Array(LINE_REQUEST_SIZE);
  const v = new DataView(raw.buffer);
  req.offsets.forEach((o, i) => v.setUint32(4 * i, o, true));
  raw.set(new TextEncoder().encode(req.consumer).subarray(0, 31), OFF_CONSUMER);
  v.setBigUint64(OFF_CONFIG, req.flags, true);
  if (req.output) {
    v.setUint32(OFF_CONFIG + 8, 1, true);
    v.setUint32(OFF_ATTRS, ATTR_OUTPUT_VALUES, true);
    v.setBigUint64(OFF_ATTRS + 8, req.output.bits, true);
    v.setBigUint64(OFF_ATTRS + 16, req.output.mask, true);
  }
  v.setUint32(OFF_NUM_LINES, req.offsets.length, true);
  v.setInt32(OFF_FD, -1, true);
  return raw;
}

/** The line-handle fd the kernel wrote into a request. */
export function requestFd(raw: Uint8Array): number {
  return new DataView(raw.buffer, raw.byteOffset).getInt32(OFF_FD, true);
}

/** Pack a `struct gpio_v2_line_values` (bits, mask). */
export function packLineValues(bits: bigint, mask: bigint): Uint8Array<ArrayBuffer> {
  const raw = new Uint8Array(16);
  const v = new DataView(raw.buffer);
  v.setBigUint64(0, bits, true);
  v.setBigUint64(8, mask, true);
  return raw;
}

/** A GPIO line named on the command line. */
export interface GpioSpec {
  /** Character device path, e.g. /dev/gpiochip0. */
  chip: string;
  line: number;
  /** The line drives CEN through an inverter. */
  invert: boolean;
}

/**
 * Parse `gpiochip0:17`, `/dev/gpiochip1:4` or `gpiochip0:17:inverted`.
 *
 * @example
 * ```ts
 * parseGpioSpec("gpiochip0:17"); // { chip: "/dev/gpiochip0", line: 17, invert: false }
 * ```
 */
export function parseGpioSpec(spec: string): GpioSpec {
  const m = /^(.+?):(\d+)(:inverted)?$/.exec(spec);
  if (!m) {
    throw new FlashError(
      "USAGE",
      `bad GPIO line "${spec}"`,
      "write it as gpiochip0:17 (chip and line offset)",
    );
  }
  const chip = m[1].startsWith("/") ? m[1] : `/dev/${m[1]}`;
  return { chip, line: Number(m[2]), invert: m[3] !== undefined };
}

/** An output line held by this process. */
export class GpioLine {
  readonly spec: GpioSpec;
  readonly #libc: LinuxLibc;
  #fd: number;

  private constructor(spec: GpioSpec, libc: LinuxLibc, fd: number) {
    this.spec = spec;
    this.#libc = libc;
    this.#fd = fd;
  }

  /** Request the line as an output, initially high (or low). Throws FlashError "PORT". */
  static open(spec: GpioSpec, opts: { initialHigh?: boolean; consumer?: string } = {}): GpioLine {
    const fail = (what: string) =>
      new FlashError(
        "PORT",
        `cannot ${what} GPIO ${spec.chip} line ${spec.line}`,
        "check the chip and line numbers (gpioinfo), that no other program holds the line, and access to " +
          "the gpiochip device (group gpio or root)",
      );
    let libc: LinuxLibc;
    try {
      libc = linuxLibc();
    } catch (e) {
      throw new FlashError("PORT", `GPIO needs FFI: ${(e as Error).message}`, "run with --allow-ffi", {
        cause: e,
      });
    }
    const chipFd = libc.open(cString(spec.chip), O_RDWR | O_CLOEXEC);
    if (chipFd < 0) throw fail(`open (${errnoName(errno(libc))})`);
    const high = opts.initialHigh ?? true;
    const req = packLineRequest({
      offsets: [spec.line],
      consumer: opts.consumer ?? "bekenlab-cen",
      flags: GpioFlag.OUTPUT | (spec.invert ? GpioFlag.ACTIVE_LOW : 0n),
      output: { bits: high ? 1n : 0n, mask: 1n },
    });
    const rc = libc.ioctl(chipFd, BigInt(GPIO_V2_GET_LINE_IOCTL), req);
    const err = errno(libc);
    libc.close(chipFd);
    if (rc < 0) throw fail(`request (${errnoName(err)})`);
    return new GpioLine(spec, libc, requestFd(req));
  }

  /** Drive the line: true = logical high. */
  set(high: boolean): void {
    if (this.#fd < 0) throw new FlashError("PORT", "GPIO line already released", "reopen the adapter");
    const rc = this.#libc.ioctl(
      this.#fd,
      BigInt(GPIO_V2_LINE_SET_VALUES_IOCTL),
      packLineValues(high ? 1n : 0n, 1n),
    );
    if (rc < 0) {
      throw new FlashError(
        "PORT",
        `setting GPIO ${this.spec.chip}:${this.spec.line} failed (${errnoName(errno(this.#libc))})`,
        "check that the line is still available",
      );
    }
  }

  /** Release the line (the kernel keeps or floats its level per driver). */
  close(): void {
    if (this.#fd < 0) return;
    this.#libc.close(this.#fd);
    this.#fd = -1;
  }
}
